"""``rorem-data status``: the project's per-round table (the paper's Table 1, for your data)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rorem_data.core import schema
from rorem_data.core.display import Displayable
from rorem_data.dataset import queries, store


@dataclass
class RoundRow:
    """One row of the round table.

    ``phase`` is ``seed`` for round 0, else ``human`` or ``auto``. ``selected`` counts the
    candidates queued for humans (active + estimation sample in the human row, the audit sample
    in the auto row). Counts are current decisions; ``cumulative_train`` is the accepted
    training set after this row.
    """

    round: int
    phase: str
    pool_items: int
    candidates: int
    selected: int
    human_reviewed: int
    accepted_by_human: int
    auto_decided: int
    accepted_by_discriminator: int
    pending: int
    accepted: int
    cumulative_train: int
    success_rate: dict | None = None  # Estimate as dict (human rows; see rounds.estimates)
    automation_yield: dict | None = None  # auto rows: share decided automatically, audited precision

    def as_dict(self) -> dict:
        return asdict(self)


def round_table(project, *, estimates: bool = False) -> list[RoundRow]:
    """Per-round counts, one row per round and phase.

    With ``estimates``, human rows carry the round's success rate with an interval: from the
    uniform estimation sample (prediction-powered when a discriminator scored the round, else
    human labels alone).

    Returns
    -------
    list of RoundRow
        Round 0 (``seed``) first, then ``human`` and ``auto`` rows per round that has candidates.
    """
    tallies, pools, queued = queries.round_tallies(project.dataset)

    def count(round=None, kind=None, status=None, by=None):
        return sum(n for (r, k, s, b), n in tallies.items()
                   if (round is None or r == round) and (kind is None or k == kind)
                   and (status is None or s == status) and (by is None or b == by))

    seeds_acc = count(round=0, kind=schema.KIND_SEED, status=schema.ACCEPTED)
    seeds_all = count(round=0, kind=schema.KIND_SEED)
    rows = [RoundRow(0, schema.PHASE_SEED, 0, 0, 0, 0, 0, 0, 0, 0, seeds_acc, seeds_acc)]
    rows[0].candidates = seeds_all
    cumulative = seeds_acc
    rounds = sorted({r for (r, k, _s, _b) in tallies if k == schema.KIND_CANDIDATE and r is not None})
    for r in rounds:
        cand = count(round=r, kind=schema.KIND_CANDIDATE)
        pending = cand - count(round=r, kind=schema.KIND_CANDIDATE, status=schema.ACCEPTED) \
            - count(round=r, kind=schema.KIND_CANDIDATE, status=schema.REJECTED)
        hum = count(round=r, kind=schema.KIND_CANDIDATE, by=schema.BY_HUMAN)
        hum_acc = count(round=r, kind=schema.KIND_CANDIDATE, by=schema.BY_HUMAN, status=schema.ACCEPTED)
        auto = count(round=r, kind=schema.KIND_CANDIDATE, by=schema.BY_DISCRIMINATOR)
        auto_acc = count(round=r, kind=schema.KIND_CANDIDATE, by=schema.BY_DISCRIMINATOR,
                         status=schema.ACCEPTED)
        cumulative += hum_acc
        rate = None
        if estimates:
            from rorem_data.rounds.estimates import round_estimates

            rate = round_estimates(project, r).get("best")
        sel_h = sum(n for (rr, pu), n in queued.items()
                    if rr == r and pu not in (schema.QUEUE_AUDIT, schema.QUEUE_GOLD))
        sel_a = queued.get((r, schema.QUEUE_AUDIT), 0)
        rows.append(RoundRow(r, schema.PHASE_HUMAN, pools.get(r, 0), cand, sel_h, hum, hum_acc, 0, 0,
                             pending, hum_acc, cumulative, rate))
        cumulative += auto_acc
        auto_rec = (store.round_record(project.dataset_name, r).get("phases") or {}).get("auto") or {}
        rows.append(RoundRow(r, schema.PHASE_AUTO, pools.get(r, 0), cand, sel_a, 0, 0, auto, auto_acc,
                             pending, auto_acc, cumulative, automation_yield=auto_rec.get("yield")))
    return rows


#: Columns of :meth:`StatusTable.to_pandas`, in order.
COLUMNS = ("round", "phase", "pool_items", "candidates", "selected", "human_reviewed",
           "accepted_by_human", "auto_decided", "accepted_by_discriminator", "pending", "accepted",
           "cumulative_train", "success_rate", "success_lo", "success_hi", "success_source",
           "auto_accept_share", "auto_reject_share", "audited_precision")


def _flat(row: RoundRow) -> dict:
    sr = row.success_rate or {}
    y = row.automation_yield or {}
    ap = y.get("audited_precision") or {}
    out = {k: v for k, v in row.as_dict().items() if k not in ("success_rate", "automation_yield")}
    out.update(success_rate=sr.get("value"), success_lo=sr.get("lo"), success_hi=sr.get("hi"),
               success_source=sr.get("source"),
               auto_accept_share=y.get("accept_share") if row.phase == schema.PHASE_AUTO else None,
               auto_reject_share=y.get("reject_share") if row.phase == schema.PHASE_AUTO else None,
               audited_precision=ap.get("value"))
    return {c: out.get(c) for c in COLUMNS}


class StatusTable(Displayable):
    """The project's round table: one :class:`RoundRow` per round and phase.

    A sequence of rows (``table[0]``, ``len(table)``, ``for row in table``), shown as a table
    in Jupyter; :meth:`to_pandas` gives a DataFrame with the success rate, its interval and the
    automation yield as columns (:data:`COLUMNS`).
    """

    def __init__(self, project_name: str, rows: list[RoundRow]):
        self.project = project_name
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def to_records(self) -> list[dict]:
        """One flat dict per row (the DataFrame's rows)."""
        return [_flat(r) for r in self.rows]

    def to_dict(self) -> dict:
        return {"project": self.project, "rounds": [r.as_dict() for r in self.rows]}

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (columns: :data:`COLUMNS`; shares in [0, 1])."""
        import pandas as pd

        return pd.DataFrame(self.to_records(), columns=list(COLUMNS))

    def _short(self) -> str:
        rounds = sorted({r.round for r in self.rows if r.round})
        last = self.rows[-1].cumulative_train if self.rows else 0
        return f"{self.project}: {len(rounds)} rounds, training set {last} pairs"

    def __repr__(self) -> str:
        head = ["round", "phase", "cand.", "human", "auto", "pending", "train", "success"]
        lines = [f"StatusTable({self._short()})", "  " + "  ".join(f"{h:>8}" for h in head)]
        for r in self.to_records():
            rate = "" if r["success_rate"] is None else f"{100 * r['success_rate']:.1f}%"
            vals = [r["round"], r["phase"], r["candidates"], r["human_reviewed"], r["auto_decided"],
                    r["pending"], r["cumulative_train"], rate]
            lines.append("  " + "  ".join(f"{str(v):>8}" for v in vals))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from rorem_data.core.display import html_table

        recs = self.to_records()
        return html_table(self._short(), [[r[c] for c in COLUMNS] for r in recs], header=COLUMNS)


def status(project, *, estimates: bool = True) -> StatusTable:
    """The project's per-round table (the paper's Table 1, for your data).

    Parameters
    ----------
    project : Project (``rorem_data.status`` also takes a project folder's path)
    estimates : bool
        Give human rows the round's success rate with an interval (default).

    Returns
    -------
    StatusTable
        Rows per round and phase; ``to_pandas()`` for a DataFrame.

    Examples
    --------
    >>> rorem_data.status(project).to_pandas()[["round", "phase", "success_rate"]]  # doctest: +SKIP
    """
    return StatusTable(project.name, round_table(project, estimates=estimates))


def licenses_by_origin(project) -> dict:
    """``{origin: {license: pairs}}`` over seed pairs and candidates (pool items in ``pool``)."""
    out: dict = {}
    for (kind, origin, lic), n in sorted(queries.license_tallies(project.dataset).items(),
                                         key=lambda kv: tuple(str(x) for x in kv[0])):
        key = origin or "(none)"
        if kind == schema.KIND_POOL:
            key = f"{key} (pool)"
        out.setdefault(key, {})
        out[key][lic] = out[key].get(lic, 0) + n
    return out


def status_dict(project) -> dict:
    """What ``rorem-data status --json`` prints."""
    from rorem_data.rounds.review.quality import reviewer_quality

    rows = round_table(project, estimates=True)
    return {"project": project.name, "dataset": project.dataset_name, "pool_items": pool_size(project),
            "rounds": [r.as_dict() for r in rows], "licenses": licenses_by_origin(project),
            "reviewers": reviewer_quality(project)}


def reviewer_lines(quality: dict) -> list[str]:
    """One line per reviewer: gold accuracy with its interval, flag, agreement, speed."""
    lines = []
    for who, q in quality.items():
        if who.startswith("_"):
            continue
        acc = (q["gold"] or {}).get("accuracy")
        gold = (f"gold {q['gold']['correct']}/{q['gold']['n']} = {_pct(acc)}" if acc else "no gold yet")
        ag = f"agreement {_pct(q['agreement'])}" if q.get("agreement") else "agreement -"
        sp = q["seconds_per_decision"]
        speed = f"{sp['median']:.1f} s/decision" if sp.get("median") is not None else "- s/decision"
        jph = f"{q['judgments_per_hour']:.0f}/h" if q.get("judgments_per_hour") else "-/h"
        flag = q["flag"].upper() if q["flag"] in ("flagged", "watched") else q["flag"]
        excl = " EXCLUDED" if q.get("excluded") else ""
        lines.append(f"{who}: {q['judgments']} judgments, {gold} [{flag}]{excl}, {ag}, {speed}, {jph}")
    return lines


def _pct(e) -> str:
    if not e or e.get("value") is None:
        return ""
    if e.get("lo") is None:
        return f"{100 * e['value']:.1f}%"
    return f"{100 * e['value']:.1f}% [{100 * e['lo']:.1f}, {100 * e['hi']:.1f}]"


def print_status(project) -> None:
    """The round table, licenses per origin, on the terminal (rich)."""
    from rich.console import Console
    from rich.table import Table

    data = status_dict(project)
    t = Table(title=f"{data['project']}: {data['pool_items']} pool items")
    cols = ["round", "phase", "pool", "cand.", "selected", "human", "acc. human", "auto", "acc. auto",
            "pending", "train set", "success rate (95% CI)", "automation yield (audited precision)"]
    for c in cols:
        t.add_column(c, justify="left" if c == "phase" else "right")
    for r in data["rounds"]:
        sr = r.get("success_rate")
        rate = f"{_pct(sr)} {sr.get('source', '')}" if sr else ""
        y = r.get("automation_yield") or {}
        yld = ""
        if y.get("accept_share") is not None:
            yld = f"{100 * y['accept_share']:.1f}% acc"
            if y.get("reject_share"):
                yld += f" + {100 * y['reject_share']:.1f}% rej"
            if y.get("audited_precision"):
                yld += f" ({_pct(y['audited_precision'])})"
        t.add_row(str(r["round"]), r["phase"], str(r["pool_items"]), str(r["candidates"]),
                  str(r["selected"]), str(r["human_reviewed"]), str(r["accepted_by_human"]),
                  str(r["auto_decided"]), str(r["accepted_by_discriminator"]), str(r["pending"]),
                  str(r["cumulative_train"]), rate, yld)
    console = Console(width=None if Console().is_terminal else 200)
    console.print(t)
    lic = Table(title="licenses per origin (pairs and pool items)")
    lic.add_column("origin")
    lic.add_column("licenses")
    for origin, counts in data["licenses"].items():
        lic.add_row(origin, ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    console.print(lic)
    lines = reviewer_lines(data["reviewers"])
    if lines:
        console.print("reviewers:\n  " + "\n  ".join(lines))


def pool_size(project) -> int:
    return queries.count(project.dataset, kind=schema.KIND_POOL)
