"""One writer per round: a lease held in MongoDB.

The steps that change a round's design or its decisions (generate, the sample or queue, gold
items, auto-label, audit) run under the round's lease: one document per (dataset, round) in the
``rorem_data_leases`` collection, taken with one atomic ``find_one_and_update`` and holding the
holder's host, pid, a random token, the step, when it was taken, the last heartbeat and when it
expires. Times come from the server's clock (``$$NOW``), so hosts with skewed clocks agree.

* **A second process is refused** (or waits up to ``wait`` seconds) with :class:`RoundBusy`,
  which names the holder: host, pid, step, since when, last heartbeat.
* **A dead holder's lease expires**: a thread renews it every ``ttl / 3`` seconds; a process
  killed with SIGKILL stops renewing and its lease lapses ``ttl`` seconds after its last
  heartbeat. A holder on this same host whose pid no longer runs is taken over at once.
* **Re-entrant in a process**: ``run_round`` holds the round for its whole run and the step
  functions it calls take the same lease again (a depth count), so a step called alone and a
  step called by the driver are protected alike.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

from rorem_data.core.errors import RoundBusy
from rorem_data.core.processes import pid_alive

LEASES_COLLECTION = "rorem_data_leases"
DEFAULT_TTL = 60.0

_held: dict[str, "Lease"] = {}  # lease id -> the lease this process holds
_lock = threading.Lock()


def _coll():
    import fiftyone.core.odm as foo

    return foo.get_db_conn()[LEASES_COLLECTION]


def lease_id(dataset_name: str, round: int) -> str:
    return f"{dataset_name}:{int(round)}"


@dataclass
class Lease:
    """A round's lease held by this process (see the module docstring)."""

    id: str
    token: str
    step: str
    ttl: float
    depth: int = 1
    lost: bool = False
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3.0):
            try:
                res = _coll().update_one({"_id": self.id, "token": self.token},
                                         [{"$set": _times(self.ttl, taken=False)}])
            except Exception:  # noqa: BLE001 - a missed beat is retried; expiry is the safety net
                continue
            if res.matched_count == 0:
                self.lost = True
                return


def _times(ttl: float, *, taken: bool) -> dict:
    out = {"heartbeat_at": "$$NOW", "expires_at": {"$add": ["$$NOW", int(ttl * 1000)]}}
    if taken:
        out["acquired_at"] = "$$NOW"
    return out


def _alive_here(holder: dict) -> bool:
    """Whether a holder on this host is still running (True when it is on another host)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        return pid_alive(int(holder.get("pid")))
    except (TypeError, ValueError):
        return True


def describe(holder: dict) -> str:
    """``host H pid P (step S, since T, last heartbeat N s ago)`` for messages."""
    since = holder.get("acquired_at")
    beat = holder.get("heartbeat_at")
    parts = [f"step {holder.get('step')!r}"]
    if since is not None:
        parts.append(f"since {since:%Y-%m-%d %H:%M:%S} UTC")
    if beat is not None and holder.get("now") is not None:
        parts.append(f"last heartbeat {max(0.0, (holder['now'] - beat).total_seconds()):.0f} s ago")
    return f"host {holder.get('host')} pid {holder.get('pid')} ({', '.join(parts)})"


def holder_of(dataset_name: str, round: int) -> dict | None:
    """The live holder of a round's lease (None when free or expired)."""
    coll = _coll()
    doc = coll.find_one({"_id": lease_id(dataset_name, round)})
    if doc is None:
        return None
    now = _server_now(coll)
    if doc.get("expires_at") is not None and doc["expires_at"] < now:
        return None
    return {**doc, "now": now}


def _server_now(coll):
    from datetime import datetime, timezone

    try:
        doc = next(coll.aggregate([{"$limit": 1}, {"$project": {"now": "$$NOW"}}]), None)
        if doc is not None:
            return doc["now"]
        return coll.database.command("hello")["localTime"].replace(tzinfo=None)
    except Exception:  # noqa: BLE001 - only for messages
        return datetime.now(timezone.utc).replace(tzinfo=None)


def _take(coll, lid: str, me: dict, ttl: float, *, victim: str | None = None) -> dict:
    """One atomic upsert: the fields become ours where the lease is absent, expired (server
    clock) or held by ``victim``; returns the document after the update."""
    from datetime import datetime

    from pymongo import ReturnDocument

    free = {"$lt": [{"$ifNull": ["$expires_at", datetime(1970, 1, 1)]}, "$$NOW"]}
    if victim is not None:
        free = {"$or": [free, {"$eq": ["$token", victim]}]}
    from pymongo.errors import DuplicateKeyError

    new = {**{k: {"$literal": v} for k, v in me.items()}, **_times(ttl, taken=True)}
    update = [{"$set": {k: {"$cond": [free, v, f"${k}"]} for k, v in new.items()}}]
    for _ in range(3):
        try:
            return coll.find_one_and_update({"_id": lid}, update, upsert=True,
                                            return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:  # two first upserts at once: the other inserted; look again
            continue
    return coll.find_one({"_id": lid}) or {}


def _try_take(coll, lid: str, token: str, step: str, ttl: float, dataset_name: str, round: int):
    me = {"token": token, "host": socket.gethostname(), "pid": os.getpid(), "step": step,
          "dataset": dataset_name, "round": int(round)}
    doc = _take(coll, lid, me, ttl)
    if doc.get("token") == token:
        return True, None
    if not _alive_here(doc):  # killed on this machine: no need to wait for the expiry
        doc = _take(coll, lid, me, ttl, victim=doc.get("token"))
        if doc.get("token") == token:
            return True, None
    return False, doc


def acquire(dataset_name: str, round: int, *, step: str, ttl: float = DEFAULT_TTL,
            wait: float = 0.0, what: str = "") -> Lease:
    """Take the round's lease for ``step`` (re-entrant in this process).

    Parameters
    ----------
    dataset_name : str
    round : int
    step : str
        What the holder is doing (shown to a refused process).
    ttl : float
        Seconds without a heartbeat after which the lease lapses.
    wait : float
        Seconds to wait for a busy round before giving up (0: refuse at once).
    what : str
        How to name the round in messages (default ``round N``).

    Raises
    ------
    RoundBusy
        Another live process holds the round.
    """
    lid = lease_id(dataset_name, round)
    with _lock:
        mine = _held.get(lid)
        if mine is not None and not mine.lost:
            mine.depth += 1
            return mine
    coll = _coll()
    token = secrets.token_hex(8)
    deadline = time.monotonic() + max(0.0, float(wait))
    while True:
        ok, other = _try_take(coll, lid, token, step, ttl, dataset_name, round)
        if ok:
            lease = Lease(id=lid, token=token, step=step, ttl=float(ttl))
            lease._thread = threading.Thread(target=lease._beat, name=f"rorem-lease-{lid}", daemon=True)
            lease._thread.start()
            with _lock:
                _held[lid] = lease
            return lease
        if time.monotonic() >= deadline:
            holder = {**(other or {}), "now": _server_now(coll)}
            name = what or f"round {int(round)}"
            raise RoundBusy(
                f"{name} is being changed by another process: {describe(holder)}. Wait for it to "
                f"finish (or pass a longer wait), or stop that process; a holder that died releases "
                f"the round {ttl:.0f} s after its last heartbeat", holder=holder)
        time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))


def release(lease: Lease) -> None:
    """Give the lease back (the outermost release in this process frees the round)."""
    with _lock:
        lease.depth -= 1
        if lease.depth > 0:
            return
        _held.pop(lease.id, None)
    lease._stop.set()
    try:
        _coll().delete_one({"_id": lease.id, "token": lease.token})
    except Exception:  # noqa: BLE001 - the lease lapses on its own
        pass


@contextlib.contextmanager
def round_lease(dataset_name: str, round: int, *, step: str, ttl: float = DEFAULT_TTL,
                wait: float = 0.0, what: str = ""):
    """``with round_lease(name, 2, step="queue"):`` - hold the round while the block runs."""
    lease = acquire(dataset_name, round, step=step, ttl=ttl, wait=wait, what=what)
    try:
        yield lease
    finally:
        release(lease)


def lease_wait() -> float:
    """Seconds a step waits for a busy round: ``ROREM_LEASE_WAIT`` (default 0: refuse at once)."""
    try:
        return max(0.0, float(os.environ.get("ROREM_LEASE_WAIT", "0")))
    except ValueError:
        return 0.0
