"""``rorem-data report``: a static HTML (and markdown) report of the project's rounds.

The round table (the paper's Table 1 for your data) with success-rate intervals; plots of the
success rate per round, accepted pairs per round, score histograms by decision, the reliability
diagram of the latest discriminator, reviewer agreement; and grids of accepted, rejected and
uncertain examples. Everything is written into one folder (``index.html``, ``report.md``, PNGs)
that opens from disk in any browser.
"""

from __future__ import annotations

import html
import json
import os
import shutil

import numpy as np

from rorem_data.core import outputs, schema
from rorem_data.core.display import markdown_text
from rorem_data.core.progress import takes_progress
from rorem_data.dataset import queries, store


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def collect(project) -> dict:
    """Everything the report shows, as plain data (also written to ``report.json``)."""
    from rorem_data.rounds.estimates import per_remover_agreement, round_estimates, round_yield
    from rorem_data.rounds.review import reviewer_agreement
    from rorem_data.rounds.review.quality import reviewer_quality
    from rorem_data.rounds.status import licenses_by_origin, pool_size, round_table
    from rorem_data.rounds.versions import latest_version, load_version_meta

    rows = round_table(project)
    rounds = sorted({r.round for r in rows if r.round > 0})
    records = {r["round"]: r for r in store.get_round_records(project.dataset_name)}
    version = latest_version(project)
    data = {"project": project.name, "dataset": project.dataset_name, "pool_items": pool_size(project),
            "rows": [r.as_dict() for r in rows], "estimates": {}, "agreement": {}, "audit": {},
            "yield": {}, "automation": {}, "per_remover": {}, "version": version,
            "reviewers": reviewer_quality(project), "licenses": licenses_by_origin(project)}
    for r in rounds:
        data["estimates"][r] = round_estimates(project, r)
        for row in data["rows"]:
            if row["round"] == r and row["phase"] == "human":
                row["success_rate"] = data["estimates"][r].get("best")
        data["agreement"][r] = reviewer_agreement(project, r)
        phases = (records.get(r) or {}).get("phases") or {}
        if phases.get("audit"):
            data["audit"][r] = phases["audit"]
        if phases.get("auto"):
            auto = phases["auto"]
            data["yield"][r] = round_yield(project, r)
            data["automation"][r] = {k: auto.get(k) for k in ("version", "method", "method_reason",
                                                               "target_precision", "confidence",
                                                               "allow_unseen_remover",
                                                               "overridden_removers")}
            if auto.get("version"):
                data["per_remover"][r] = per_remover_agreement(project, r, auto["version"])
    if version:
        meta = load_version_meta(project, version)
        data["version_meta"] = {k: meta.get(k) for k in ("version", "round", "spec", "agreement", "trained_at")}
        hold = meta.get("holdout") or {}
        if hold.get("scores"):
            from rorem_data.stats.calibration import reliability_curve

            data["reliability"] = reliability_curve(np.asarray(hold["scores"]), np.asarray(hold["labels"]),
                                                    n_bins=10)
    return data


def _success_plot(data, path):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=110)
    for key, colour, label in (("human", "#1f77b4", "human labels (uniform sample)"),
                               ("ppi", "#d62728", "prediction-powered"),
                               ("active", "#2ca02c", "active inference (inverse-probability weighted)")):
        xs, ys, lo, hi = [], [], [], []
        for r, est in sorted(data["estimates"].items()):
            e = est.get(key)
            if e and e.get("value") is not None and e.get("lo") is not None:
                xs.append(int(r) + {"human": 0.0, "ppi": 0.08, "active": -0.08}[key])
                ys.append(e["value"])
                lo.append(e["value"] - e["lo"])
                hi.append(e["hi"] - e["value"])
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o-", color=colour, capsize=4, label=label)
    rounds = sorted(int(r) for r in data["estimates"])
    ax.set_xticks(rounds)
    ax.set_xlim(min(rounds) - 0.5, max(rounds) + 0.5)
    ax.set_xlabel("round")
    ax.set_ylabel("remover success rate")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Success rate of the round's remover (95% intervals)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _accepted_plot(data, path):
    plt = _plt()
    rows = data["rows"]
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=110)
    labels = [f"{r['round']} {r['phase']}" for r in rows]
    ax.bar(range(len(rows)), [r["accepted"] for r in rows], color="#2ca02c", label="accepted in phase")
    ax.plot(range(len(rows)), [r["cumulative_train"] for r in rows], "k.-", label="cumulative train set")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, rotation=30, fontsize=8)
    ax.set_ylabel("pairs")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title("Accepted pairs per round and phase", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _score_hist(project, version, path):
    plt = _plt()
    groups: dict[str, list] = {}
    for d in queries.candidates(project.dataset, has_score=version,
                                fields=["scores", "status", "decided_by"]):
        s = (d.get("scores") or {}).get(version)
        if s is None:
            continue
        k = f"{d.get('decided_by') or 'nobody'}: {d.get('status') or 'pending'}"
        groups.setdefault(k, []).append(s)
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=110)
    bins = np.linspace(0, 1, 26)
    for k in sorted(groups):
        ax.hist(groups[k], bins=bins, alpha=0.55, label=f"{k} ({len(groups[k])})")
    ax.set_xlabel(f"calibrated score ({version})")
    ax.set_ylabel("candidates")
    ax.legend(fontsize=7)
    ax.set_title("Discriminator scores by decision", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _agreement_plot(data, path) -> bool:
    """Percent agreement (with interval) and Cohen's kappa of double-reviewed items per round."""
    rounds = [r for r, a in sorted(data["agreement"].items()) if a.get("items")]
    if not rounds:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.4), dpi=110)
    a = [data["agreement"][r] for r in rounds]
    pa = [x["percent_agreement"] for x in a]
    lo = [p - x["percent_agreement_ci"][0] for p, x in zip(pa, a)]
    hi = [x["percent_agreement_ci"][1] - p for p, x in zip(pa, a)]
    ax.bar([r - 0.15 for r in rounds], pa, width=0.3, yerr=[lo, hi], capsize=4, color="#17becf",
           label="percent agreement")
    ax.bar([r + 0.15 for r in rounds], [x["cohen_kappa"] for x in a], width=0.3, color="#bcbd22",
           label="Cohen's kappa")
    for r, x in zip(rounds, a):
        ax.text(r, 1.02, f"n={x['items']}", ha="center", fontsize=7)
    ax.set_xticks(rounds)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("round")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Reviewer agreement (double-judged items)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _reliability_plot(rel, path):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 3.4), dpi=110)
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    mp = [m for m, c in zip(rel["mean_predicted"], rel["counts"]) if c]
    fp = [f for f, c in zip(rel["fraction_positive"], rel["counts"]) if c]
    ax.plot(mp, fp, "o-", color="#9467bd")
    ax.set_xlabel("predicted P(success)")
    ax.set_ylabel("observed success rate")
    ax.set_title(f"Reliability (held-out), ECE {rel.get('ece', float('nan')):.3f}", fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _examples(project, out_dir, version, per_group=6):
    """Thumbnail grids of accepted, rejected and uncertain candidates."""
    from PIL import Image

    from rorem_data.core.images import ImageProblem, read_mask, read_rgb
    from rorem_data.dataset.previews import compose

    groups = {"accepted": schema.ACCEPTED, "rejected": schema.REJECTED, "uncertain": schema.PENDING}
    out = {}
    for name, status in groups.items():
        docs = queries.candidates(project.dataset, status=status, limit=400,
                                  fields=["filepath", "target_path", "mask.mask_path", "scores",
                                          "key", "decision"])
        if name == "uncertain" and version:
            docs.sort(key=lambda d: abs(((d.get("scores") or {}).get(version, 0.5)) - 0.5))
        items = []
        for d in docs[:per_group]:
            try:
                src = read_rgb(d["filepath"])
                res = np.asarray(Image.fromarray(read_rgb(d["target_path"])).resize(src.shape[1::-1]))
                mask = read_mask(d["mask"]["mask_path"])
                if mask.shape != src.shape[:2]:
                    continue
                img = compose(src, mask, res, panel=160)
            except (ImageProblem, KeyError, TypeError):
                continue  # a missing or unreadable file: the example is left out
            fn = f"ex-{name}-{d['key']}.jpg"
            img.save(os.path.join(out_dir, fn), quality=85)
            dec = d.get("decision") or {}
            score = (d.get("scores") or {}).get(version) if version else None
            items.append({"file": fn, "key": d["key"], "by": dec.get("by"), "reason": dec.get("reason"),
                          "score": score})
        out[name] = items
    return out


def _fmt_num(e) -> str:
    if not e or e.get("value") is None:
        return "-"
    if e.get("lo") is None:
        return f"{e['value']:.3f}"
    return f"{e['value']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"


def _fmt_est(e) -> str:
    """``12.3% [8.0, 17.1]``; ``-`` for a missing estimate or one with no data yet (an audit
    sample nobody has judged gives an estimate without a value)."""
    if not e or e.get("value") is None or e.get("lo") is None or e.get("hi") is None:
        return "-"
    return f"{100 * e['value']:.1f}% [{100 * e['lo']:.1f}, {100 * e['hi']:.1f}]"


class _Name(str):
    """A user-provided name inside a report note (reviewer, origin, license, remover, ...)."""


def _note(*parts) -> tuple[str, str]:
    """One report note as ``(markdown, HTML)``.

    ``str`` parts are the report's own words (markdown; ``**`` marks bold); :class:`_Name`
    parts come from users and show literally in both (escaped for markdown and for HTML), so a
    reviewer named ``<script>...`` or ``**x**|y`` is text, not markup.
    """
    md = "".join(markdown_text(p) if isinstance(p, _Name) else p for p in parts)
    page = "".join(html.escape(p if isinstance(p, _Name) else p.replace("**", "")) for p in parts)
    return md, page


@takes_progress
def write_report(project, out: str) -> str:
    """Write the report folder; returns the path of ``index.html``.

    The report is built in a per-run sibling folder and swapped in atomically. An existing
    ``out`` is replaced only if it is a report this tool wrote (it holds the output marker of
    :mod:`rorem_data.core.outputs`); any other folder - the project, its media, the current
    folder - is refused and left untouched.

    Raises
    ------
    rorem_data.core.outputs.OutputError
        ``out`` exists and is not a rorem-data report, or is (or contains) the project or its media.
    """
    out = os.path.abspath(out)
    protected = (project.root, project.media_dir)
    outputs.recover(out, "report")
    if os.path.lexists(out):
        outputs.check_replaceable(out, "report", protected=protected)
    data = collect(project)
    tmp = outputs.staging_folder(out, "report", project=project.name)
    try:
        _write_into(project, data, tmp)
        outputs.publish(tmp, out, "report", overwrite=True, protected=protected)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return os.path.join(out, "index.html")


def _write_into(project, data: dict, tmp: str) -> None:
    figs = []
    if data["estimates"]:
        _success_plot(data, os.path.join(tmp, "success_rate.png"))
        figs.append(("success_rate.png", "Success rate per round"))
    _accepted_plot(data, os.path.join(tmp, "accepted.png"))
    figs.append(("accepted.png", "Accepted pairs per round"))
    if data["version"]:
        _score_hist(project, data["version"], os.path.join(tmp, "scores.png"))
        figs.append(("scores.png", "Scores by decision"))
    if data.get("reliability"):
        _reliability_plot(data["reliability"], os.path.join(tmp, "reliability.png"))
        figs.append(("reliability.png", "Reliability diagram"))
    if _agreement_plot(data, os.path.join(tmp, "agreement.png")):
        figs.append(("agreement.png", "Reviewer agreement"))
    examples = _examples(project, tmp, data["version"])
    data["examples"] = examples

    header = ["round", "phase", "pool items", "candidates", "selected", "human reviewed", "accepted (human)",
              "auto decided", "accepted (discr.)", "pending", "cumulative train",
              "success rate (best)", "automation yield"]
    table = []
    for r in data["rows"]:
        est = data["estimates"].get(r["round"], {}) if r["phase"] == "human" else {}
        best = est.get("best")
        rate = f"{_fmt_est(best)} {best.get('source', '')}" if best else "-"
        y = data["yield"].get(r["round"]) if r["phase"] == "auto" else None
        yld = "-"
        if y and y.get("accept_share") is not None:
            yld = f"{100 * y['accept_share']:.1f}% accepted, {100 * (y.get('reject_share') or 0):.1f}% rejected"
            if y.get("audited_precision"):
                yld += f" (audited {_fmt_est(y['audited_precision'])})"
        table.append([r["round"], r["phase"], r["pool_items"], r["candidates"], r["selected"], r["human_reviewed"],
                      r["accepted_by_human"], r["auto_decided"], r["accepted_by_discriminator"],
                      r["pending"], r["cumulative_train"], rate, yld])

    md = [f"# rorem-data report: {markdown_text(data['project'])}", "",
          f"Dataset {markdown_text(data['dataset'])}, {data['pool_items']} pool items. Latest "
          f"discriminator: `{data['version'] or 'none'}`.", "",
          "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(str(c) for c in row) + " |" for row in table]
    md += ["", "Success rates (95% intervals) come from labels drawn with known probabilities: the "
           "active-inference sample (inverse-probability weighted, with the previous discriminator as "
           "predictor), or a uniform estimation sample (human labels alone, or prediction-powered); a "
           "queue chosen by a strategy is never used for them, because it is chosen, not random. The "
           "automation yield is the share of the round decided automatically, with the precision its "
           "audit measured.", ""]
    notes = []
    for r, a in sorted(data["automation"].items()):
        notes.append(_note(f"Round {r} automatic decisions by `{a.get('version')}` with the ",
                           _Name(a.get("method")), " method (", _Name(a.get("method_reason") or ""), ")",
                           *(("; removers decided despite thin labels (override): ",
                              _Name(", ".join(map(str, a["overridden_removers"]))))
                             if a.get("overridden_removers") else ())))
    for r, per in sorted(data["per_remover"].items()):
        for rem, v in sorted((per.get("removers") or {}).items()):
            auc = v.get("auc") or {}
            notes.append(_note(f"Round {r} discriminator vs humans on remover ", _Name(rem),
                               f": n={v.get('n')}, AUC {_fmt_num(auc)}, precision at the threshold "
                               f"{_fmt_est(v.get('precision'))}"))
    for who, q in sorted(data["reviewers"].items()):
        if who.startswith("_"):
            continue
        acc = (q.get("gold") or {}).get("accuracy")
        notes.append(_note("Reviewer ", _Name(who), f": {q['judgments']} judgments, gold accuracy "
                           f"{_fmt_est(acc)} [{q['flag']}]{' EXCLUDED' if q.get('excluded') else ''}"))
    for origin, counts in sorted(data["licenses"].items()):
        parts = []
        for k, v in sorted(counts.items(), key=lambda kv: str(kv[0])):
            parts += [", " if parts else "", _Name(k), f" {v}"]
        notes.append(_note("Licenses of ", _Name(origin), ": ", *parts))
    for r, a in sorted(data["agreement"].items()):
        if a.get("items"):
            notes.append(_note(f"Round {r} reviewer agreement: {a['agree']}/{a['items']} "
                               f"({100 * a['percent_agreement']:.0f}%), Cohen's kappa {a['cohen_kappa']:.2f}"))
    from rorem_data.rounds.automation import audit_text

    for r, a in sorted(data["audit"].items()):
        notes.append(_note(f"Round {r} audit: {audit_text(a)}"))
    md += [f"- {n[0]}" for n in notes]
    md += [""] + [f"![{t}]({f})" for f, t in figs]
    with open(os.path.join(tmp, "report.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(md) + "\n")
    with open(os.path.join(tmp, "report.json"), "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, default=str)

    e = html.escape
    rows_html = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in table)
    notes_html = "".join(f"<li>{n[1]}</li>" for n in notes)
    figs_html = "".join(f'<figure><img src="{f}" alt="{e(t)}"><figcaption>{e(t)}</figcaption></figure>'
                        for f, t in figs)
    ex_html = ""
    for name, items in examples.items():
        cells = "".join(
            f'<figure><img src="{e(it["file"])}" alt="{e(name)} example"><figcaption>{e(it["key"])}'
            f'{" - " + e(str(it["by"])) if it.get("by") else ""}'
            f'{" (" + e(str(it["reason"])) + ")" if it.get("reason") else ""}'
            f'{" score %.2f" % it["score"] if isinstance(it.get("score"), float) else ""}</figcaption></figure>'
            for it in items) or "<p>none</p>"
        ex_html += f"<h3>{e(name.capitalize())}</h3><div class=grid>{cells}</div>"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rorem-data report: {e(data['project'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1400px; }}
table {{ border-collapse: collapse; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f3f3f3; }} td:nth-child(2) {{ text-align: left; }}
.figs, .grid {{ display: flex; flex-wrap: wrap; gap: 1rem; }}
figure {{ margin: 0; }} figcaption {{ font-size: 0.8rem; color: #555; }}
.grid img {{ max-width: 420px; }}
</style></head><body>
<h1>rorem-data report: {e(data['project'])}</h1>
<p>Dataset <code>{e(data['dataset'])}</code>, {data['pool_items']} pool items. Latest discriminator:
<code>{e(str(data['version'] or 'none'))}</code>.</p>
<h2>Rounds</h2>
<table><thead><tr>{''.join(f'<th>{e(h)}</th>' for h in header)}</tr></thead><tbody>{rows_html}</tbody></table>
<p>Success rates: human labels of the uniform estimation sample, and prediction-powered inference
over every candidate (95% intervals). The active-learning queue is never used for them.</p>
<ul>{notes_html}</ul>
<h2>Plots</h2><div class=figs>{figs_html}</div>
<h2>Examples</h2>{ex_html}
</body></html>
"""
    with open(os.path.join(tmp, "index.html"), "w", encoding="utf-8") as fh:
        fh.write(page)
