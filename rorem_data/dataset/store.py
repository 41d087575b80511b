"""The dataset layer: everything that talks to FiftyOne / MongoDB lives here.

Writes are bulk. New samples are inserted as raw documents straight into the dataset's own
sample collection after the schema has been declared through FiftyOne's API, which is an order
of magnitude faster than ``Dataset.add_samples`` while leaving a dataset that FiftyOne reads
like any other (``tests/test_store.py`` checks every field). Because this writes beneath
FiftyOne's public API, ``pyproject.toml`` pins FiftyOne's version range.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

from rorem_data.core import schema
from rorem_data.core.errors import ProjectError

ROUNDS_COLLECTION = "rorem_data_rounds"


def _fo():
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")  # no MongoDB-6 nag per command
    import fiftyone as fo

    return fo


def dataset_exists(name: str) -> bool:
    fo = _fo()
    return fo.dataset_exists(name)


def create_dataset(name: str):
    """Create a persistent dataset with the rorem_data schema, indexes and App settings."""
    fo = _fo()
    if fo.dataset_exists(name):
        raise ProjectError(
            f"FiftyOne dataset {name!r} already exists; choose another name with --dataset "
            f"or delete it with `fiftyone datasets delete {name}`"
        )
    ds = fo.Dataset(name, persistent=True)
    ensure_schema(ds)
    return ds


def ensure_schema(ds) -> None:
    """Declare every rorem_data field, the indexes and the App settings (idempotent)."""
    fo = _fo()
    if ds.media_type is None:
        ds.media_type = "image"
    existing = ds.get_field_schema(flat=True)

    def add(path, ftype, **kw):
        if path not in existing:
            ds.add_sample_field(path, ftype, **kw)

    add("metadata", fo.EmbeddedDocumentField, embedded_doc_type=fo.ImageMetadata)
    for name, tname in schema.SCALAR_FIELDS.items():
        add(name, getattr(fo, tname))
    for name in schema.DICT_FIELDS:
        add(name, fo.DictField)
    for name in schema.LIST_FIELDS:
        add(name, fo.ListField, subfield=fo.StringField)
    add(schema.MASK_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Segmentation)
    add("scores", fo.EmbeddedDocumentField, embedded_doc_type=fo.DynamicEmbeddedDocument)
    add("decision", fo.EmbeddedDocumentField, embedded_doc_type=fo.DynamicEmbeddedDocument)
    add("decisions", fo.ListField, subfield=fo.EmbeddedDocumentField,
        embedded_doc_type=fo.DynamicEmbeddedDocument)
    for sub, tname in schema.DECISION_FIELDS.items():
        add(f"decision.{sub}", getattr(fo, tname))
        add(f"decisions.{sub}", getattr(fo, tname))
    add("reviews", fo.ListField, subfield=fo.EmbeddedDocumentField,
        embedded_doc_type=fo.DynamicEmbeddedDocument)
    for sub, tname in schema.REVIEW_FIELDS.items():
        add(f"reviews.{sub}", getattr(fo, tname))

    indexes = ds.list_indexes()
    if "key" not in indexes:
        ds.create_index("key", unique=True)
    for spec in (
        [("kind", 1), ("round", 1), ("status", 1)],
        [("pool_item_id", 1)],
        [("queue_round", 1), ("queue_rank", 1)],
    ):
        name = "_".join(f"{f}_{d}" for f, d in spec)
        if name not in indexes:
            ds.create_index(spec)

    changed = False
    media_fields = ["filepath", schema.TARGET_FIELD, "preview_path"]
    if list(ds.app_config.media_fields or []) != media_fields:
        ds.app_config.media_fields = media_fields
        ds.app_config.grid_media_field = "filepath"
        ds.app_config.modal_media_field = "filepath"
        changed = True
    if ds.mask_targets.get(schema.MASK_FIELD) != {255: schema.MASK_LABEL}:
        ds.mask_targets = {**ds.mask_targets, schema.MASK_FIELD: {255: schema.MASK_LABEL}}
        changed = True
    if changed:
        ds.save()


def load_dataset(name: str):
    fo = _fo()
    if not fo.dataset_exists(name):
        raise ProjectError(
            f"The project's FiftyOne dataset {name!r} does not exist in the database at "
            f"{_database_where()}; check FIFTYONE_DATABASE_URI / FIFTYONE_DATABASE_DIR, or create it "
            "again with rorem_data.init_project(project_folder, force=True) (rorem-data init --force)"
        )
    return fo.load_dataset(name)


def _database_where() -> str:
    ident = database_identity()
    return f"{ident['db_path'] or '?'} ({ident['uri'] or 'embedded, ' + ident['address']})"


PROJECTS_COLLECTION = "rorem_data_projects"


def database_identity() -> dict:
    """Where this process's data really lives: the connected server's data folder
    (``dbPath``), its address, and the URI asked for (empty for FiftyOne's embedded database).

    FiftyOne's embedded database is one service per machine: a process started while another
    FiftyOne process runs attaches to that one, whatever its own ``FIFTYONE_DATABASE_DIR`` says.
    The server's own answer is the only reliable one.
    """
    import fiftyone.core.odm as foo

    fo = _fo()
    conn = foo.get_db_conn()
    client = conn.client
    try:
        host, port = client.address or ("?", 0)
        address = f"{host}:{port}"
    except Exception:  # noqa: BLE001 - a replica set or a proxy: no single address
        address = "?"
    try:
        opts = client.admin.command("getCmdLineOpts")
        db_path = ((opts.get("parsed") or {}).get("storage") or {}).get("dbPath") or ""
    except Exception:  # noqa: BLE001 - no admin rights on a shared server: fall back to the address
        db_path = ""
    return {"uri": fo.config.database_uri or "", "address": address, "db_path": db_path,
            "database": conn.name}


def register_project(project_id: str, dataset_name: str, root: str) -> None:
    """Leave the project's mark in the database that holds it (checked on every open)."""
    import fiftyone.core.odm as foo

    foo.get_db_conn()[PROJECTS_COLLECTION].update_one(
        {"_id": project_id}, {"$set": {"dataset": dataset_name, "root": root,
                                       "updated_at": schema.utcnow()},
                              "$setOnInsert": {"created_at": schema.utcnow()}}, upsert=True)


def find_project(project_id: str) -> dict | None:
    import fiftyone.core.odm as foo

    return foo.get_db_conn()[PROJECTS_COLLECTION].find_one({"_id": project_id})


def existing_keys(ds, keys: Iterable[str]) -> set[str]:
    """The subset of ``keys`` already in the dataset (one indexed query per 50,000 keys)."""
    keys = list(keys)
    found: set[str] = set()
    coll = ds._sample_collection
    for i in range(0, len(keys), 50_000):
        chunk = keys[i : i + 50_000]
        for d in coll.find({"key": {"$in": chunk}}, {"key": 1, "_id": 0}):
            found.add(d["key"])
    return found


def _writers() -> int:
    """Concurrent write streams: the server maintains the indexes of concurrent batches in
    parallel, which on 2 cores brings index-heavy inserts from ~3x to ~1.1x raw ``insert_many``
    (``benchmarks/ingest.py``)."""
    return max(2, min(4, os.cpu_count() or 2))


def insert_documents(ds, docs: Sequence[dict], *, batch_size: int = 5_000, progress_desc=None) -> int:
    """Insert raw sample documents (see :func:`rorem_data.dataset.documents.sample_doc`) in bulk.

    Batches go to the server from a few threads at once. Documents whose ``key`` already exists
    are skipped (unique index), so concurrent or repeated writers never duplicate a record.
    Returns the number inserted.
    """
    from concurrent.futures import ThreadPoolExecutor

    from pymongo.errors import BulkWriteError

    from rorem_data.core.progress import progress

    coll = ds._sample_collection
    dataset_id = ds._doc.id

    def write(batch) -> int:
        for d in batch:
            d["_dataset_id"] = dataset_id
        try:
            return len(coll.insert_many(batch, ordered=False).inserted_ids)
        except BulkWriteError as exc:
            errs = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errs):
                raise
            return exc.details.get("nInserted", 0)

    batches = [docs[i : i + batch_size] for i in range(0, len(docs), batch_size)]
    inserted = 0
    with progress(total=len(docs), desc=progress_desc or "writing", unit="doc",
                  disable=None if progress_desc else True) as bar, \
            ThreadPoolExecutor(max_workers=_writers()) as pool:
        for batch, n in zip(batches, pool.map(write, batches)):
            inserted += n
            bar.update(len(batch))
    return inserted


def set_field_values(ds, field: str, sample_ids: Sequence[str], values: Sequence, *, batch_size: int = 10_000) -> None:
    """Set ``field`` on many samples by id in bulk (unordered ``bulk_write`` of ``$set`` from a
    few threads; ``last_modified_at`` is updated too, as FiftyOne does)."""
    from concurrent.futures import ThreadPoolExecutor

    from bson import ObjectId
    from pymongo import UpdateOne

    if len(sample_ids) != len(values):
        raise ValueError(f"{len(sample_ids)} sample ids but {len(values)} values")
    coll = ds._sample_collection
    now = schema.utcnow()

    def write(i: int) -> None:
        ops = [UpdateOne({"_id": ObjectId(sid)}, {"$set": {field: v, "last_modified_at": now}})
               for sid, v in zip(sample_ids[i : i + batch_size], values[i : i + batch_size])]
        if ops:
            coll.bulk_write(ops, ordered=False)

    with ThreadPoolExecutor(max_workers=_writers()) as pool:
        list(pool.map(write, range(0, len(sample_ids), batch_size)))


def rounds_collection():
    """The collection holding round records (one document per dataset and round)."""
    import fiftyone.core.odm as foo

    return foo.get_db_conn()[ROUNDS_COLLECTION]


def get_round_records(dataset_name: str) -> list[dict]:
    coll = rounds_collection()
    return list(coll.find({"dataset": dataset_name}, {"_id": 0}).sort("round", 1))


def update_round_record(dataset_name: str, round: int, *, set: dict | None = None,
                        inc: dict | None = None, push: dict | None = None) -> None:
    """Atomically create or update the record of one round."""
    coll = rounds_collection()
    update: dict = {"$setOnInsert": {"dataset": dataset_name, "round": int(round),
                                     "created_at": schema.utcnow()}}
    if set:
        update["$set"] = {**set, "updated_at": schema.utcnow()}
    else:
        update["$set"] = {"updated_at": schema.utcnow()}
    if inc:
        update["$inc"] = inc
    if push:
        update["$push"] = push
    coll.update_one({"_id": f"{dataset_name}:{int(round)}"}, update, upsert=True)


def round_field_once(dataset_name: str, round: int, field: str, value):
    """Set a field of a round's record only if it is not set yet; returns the stored value
    (the first writer's, when two race)."""
    update_round_record(dataset_name, round)
    rounds_collection().update_one({"_id": f"{dataset_name}:{int(round)}", field: {"$exists": False}},
                                   {"$set": {field: value}})
    rec = rounds_collection().find_one({"_id": f"{dataset_name}:{int(round)}"}, {field: 1})
    return rec.get(field, value) if rec else value


def unset_round_fields(dataset_name: str, round: int, fields: Sequence[str]) -> None:
    """Remove fields (dotted paths) from one round's record."""
    if fields:
        rounds_collection().update_one({"_id": f"{dataset_name}:{int(round)}"},
                                       {"$unset": {f: "" for f in fields},
                                        "$set": {"updated_at": schema.utcnow()}})


def withdraw_selections(dataset_name: str, round: int, purposes: Sequence[str]) -> int:
    """Mark the round's selections of these purposes ``withdrawn`` (a redo draws again);
    returns how many selections the record holds in all."""
    coll = rounds_collection()
    coll.update_one({"_id": f"{dataset_name}:{int(round)}"},
                    {"$set": {"selections.$[s].status": "withdrawn", "updated_at": schema.utcnow()}},
                    array_filters=[{"s.purpose": {"$in": list(purposes)}}])
    return len(round_record(dataset_name, round).get("selections") or [])


def round_record(dataset_name: str, round: int) -> dict:
    """The record of one round (an empty dict before anything was recorded)."""
    rec = rounds_collection().find_one({"_id": f"{dataset_name}:{int(round)}"}, {"_id": 0})
    return rec or {}


def find_selection(dataset_name: str, round: int, selection_id: str) -> dict | None:
    """A selection recorded in a round record (queue, estimation sample), by its id."""
    for s in round_record(dataset_name, round).get("selections") or []:
        if s.get("id") == selection_id and s.get("status") != "withdrawn":
            return s
    return None


def mark_selection_done(dataset_name: str, round: int, selection_id: str) -> None:
    rounds_collection().update_one(
        {"_id": f"{dataset_name}:{int(round)}"}, {"$set": {"selections.$[s].status": "done"}},
        array_filters=[{"s.id": selection_id, "s.status": {"$ne": "withdrawn"}}])


def delete_round_records(dataset_name: str) -> None:
    rounds_collection().delete_many({"dataset": dataset_name})
