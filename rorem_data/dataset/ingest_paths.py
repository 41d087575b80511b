"""Where an importer's input files really are: inside their root, symlinks followed, cheaply.

Every file an import takes must lie inside its root folder (the meta.json folder, the pool
folder, the COCO image folder) once every symlink is followed; a symlink that stays inside keeps
working. The files' *real* paths are what the dataset stores, so an export can tell later whether
a stored file has been replaced by a link (:mod:`rorem_data.dataset.export_sources`).

Resolving every path with ``os.path.realpath`` costs ~25 us per file (an ``lstat`` per path
component); for 600K files that is most of a minute. So folders are resolved once each in the
importing process (:class:`RootGuard`), and a worker only looks at a file's last component
(:func:`resolve_file`, one ``lstat``).

>>> guard = RootGuard("/data/RORD")                      # doctest: +SKIP
>>> guard.place("/data/RORD/source/x.png")               # doctest: +SKIP
('/mnt/disk/RORD/source/x.png', None)
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from rorem_data.core import schema
from rorem_data.core.validate import Problem

FIX_LINK = "copy the file into the folder instead of linking it, or import from where it really is"


def inside_real(real: str, real_root: str) -> bool:
    """True if the real path ``real`` is ``real_root`` or below it (both already resolved)."""
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def text_problem(name: str) -> str | None:
    """Why a file name cannot be stored (not valid UTF-8, a NUL byte), or None."""
    if "\x00" in name:
        return "file name holds a NUL character"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8, which the database cannot store"
    return None


class RootGuard:
    """Resolves the folders of paths under one root, once per folder, and refuses escapes.

    Parameters
    ----------
    root : str
        The folder the input's paths are relative to.
    """

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.real_root = os.path.realpath(root)
        self._dirs: dict[str, str] = {}

    def real_dir(self, folder: str) -> str:
        real = self._dirs.get(folder)
        if real is None:
            real = self._dirs[folder] = os.path.realpath(folder)
        return real

    def place(self, path: str) -> tuple[str, str | None]:
        """``path`` with its folder resolved, and the problem if that folder leads outside.

        Returns
        -------
        placed : str
            ``real folder / file name`` (the file itself may still be a symlink: workers check
            it with :func:`resolve_file`).
        problem : str or None
        """
        folder, name = os.path.split(path)
        real = self.real_dir(folder)
        if not inside_real(real, self.real_root):
            rel = os.path.relpath(folder, self.root)
            return path, (f"folder {rel}/ leads outside {self.root} through a symlink (to {real})")
        return os.path.join(real, name), None


def resolve_file(path: str, real_root: str | None) -> tuple[str, str | None]:
    """Worker side: follow ``path`` if the file itself is a symlink, refusing an escape.

    Returns
    -------
    real : str
        Where to read the file (``path`` unless it is a symlink).
    problem : str or None
        Set when the link leads outside ``real_root``.
    """
    if real_root is None:
        return path, None
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return path, None  # missing or unreadable: the image check names it
    if not stat.S_ISLNK(st.st_mode):
        return path, None
    target = os.path.realpath(path)
    if not inside_real(target, real_root):
        return path, f"file is a symlink to {target}, outside {real_root}"
    return target, None


# ---------------------------------------------------------------------------------------------
# keys and the items the dataset already holds

#: version tag inside every import key's hash input: keys of this scheme hash the origin and
#: paths relative to the input's folder; older keys hashed absolute paths
KEY_SCHEME = "v2"


def item_key(kind: str, form: str, origin: str, *names: str) -> str:
    """Key of an imported item: its origin and names that do not depend on where the data sits.

    Parameters
    ----------
    kind : str
        ``"seed"`` or ``"pool"``.
    form : str
        The input's form (``"folder"``, ``"coco"``, ``"meta"``), so two forms never share a key.
    origin : str
        The resolved origin name.
    *names : str
        Relative paths (see :func:`rel_name`) and ids that name the item inside its input.

    Returns
    -------
    str
        24 hex-like characters (:func:`rorem_data.core.schema.make_key`).

    Examples
    --------
    >>> item_key("pool", "folder", "pool", "images/0.png", "masks/0_0.png")[:1]
    'p'
    """
    return schema.make_key(kind, f"{KEY_SCHEME}/{form}", origin, *names)


def rel_name(path: str, root: str) -> str:
    """``path`` relative to ``root``, ``/``-separated (the same on every system).

    ``path`` is absolute and normalized, as :func:`rorem_data.core.paths.safe_join` returns it;
    a path below ``root`` is cut, not resolved (``os.path.relpath`` costs ~10 us a call).

    >>> rel_name("/data/RORD/source/x.png", "/data/RORD")
    'source/x.png'
    """
    prefix = root.rstrip(os.sep) + os.sep
    rel = path[len(prefix):] if path.startswith(prefix) else os.path.relpath(path, root)
    return rel if os.sep == "/" else rel.replace(os.sep, "/")


@dataclass(slots=True)
class ItemFiles:
    """The files one item stores: ``image`` (``filepath``), ``mask`` (``mask.mask_path``) and,
    for seed pairs, ``target`` (``target_path``); ``ref`` is its ``import_ref`` (None when the
    ref does not name the mask file, as for seeds: ``meta.json#<position>``)."""

    image: str
    mask: str | None
    target: str | None = None
    ref: str | None = None


def stored_files(check, image: str, mask: str | None, masks_folder: str,
                 target: str | None = None, ref: str | None = None) -> ItemFiles:
    """What the import will store for an item whose files passed ``check`` (an
    :class:`~rorem_data.dataset.pairs.ItemCheck`): real paths, and the canonical mask's path
    (the original file, or its content-addressed copy under ``masks_folder``)."""
    from rorem_data.core import images as media

    if check.mask_png is not None:
        stored_mask = os.path.join(masks_folder, media.canonical_mask_name(check.mask_png))
    else:
        stored_mask = check.real(mask)
    return ItemFiles(check.real(image), stored_mask,
                     check.real(target) if target is not None else None, ref)


_STORED_FIELDS = {"_id": 0, "key": 1, "filepath": 1, "mask.mask_path": 1, "target_path": 1,
                  "import_ref": 1, "original_path": 1, "original_target_path": 1}
_CHUNK = 50_000


class StoredItems:
    """The samples an import's items may already be: by key, and by image file (items
    imported under keys of an older scheme), read in bulk; every decision is then a lookup.

    An item is *already present* when a stored sample of the same kind holds the same files
    (image, mask and target; the mask is recognised by its stored path or its ``import_ref``).
    A stored sample with the item's key but other files is a *collision*: two inputs share the
    origin name and the relative names.

    Parameters
    ----------
    ds : fiftyone.Dataset
    kind : str
        ``"seed"`` or ``"pool"``: only samples of this kind are matched by file.

    Examples
    --------
    >>> stored = StoredItems(ds, "pool")                               # doctest: +SKIP
    >>> stored.read(keys, files)                                       # doctest: +SKIP
    >>> stored.holds(key, ItemFiles(image, mask, ref=ref))             # doctest: +SKIP
    True
    """

    def __init__(self, ds, kind: str):
        self._coll = ds._sample_collection
        self.kind = kind
        self.by_key: dict[str, dict] = {}
        self.by_image: dict[str, list[dict]] = {}
        self._images_read: set[str] = set()

    def read(self, keys, files) -> None:
        """Read the samples with these keys, then the samples of this kind stored with the
        image of each item not found under its key (one indexed query per 50,000 keys or
        paths).

        Parameters
        ----------
        keys : iterable of str
        files : iterable of ItemFiles
            The items' files, in the order of ``keys``.
        """
        keys, files = list(keys), list(files)
        for i in range(0, len(keys), _CHUNK):
            for d in self._coll.find({"key": {"$in": keys[i : i + _CHUNK]}}, _STORED_FIELDS):
                self.by_key[d["key"]] = d
        self.read_images(f.image for k, f in zip(keys, files)
                         if not self.same(self.by_key.get(k), f))

    def read_images(self, images) -> None:
        """Read the samples of this kind stored with these image files (each path once), as
        given or as the original of a decoded copy (:mod:`rorem_data.dataset.decoded`)."""
        todo = list(dict.fromkeys(p for p in images if p not in self._images_read))
        self._images_read.update(todo)
        if todo:
            self._coll.create_index("original_path", sparse=True)  # idempotent
        for i in range(0, len(todo), _CHUNK):
            chunk = todo[i : i + _CHUNK]
            query = {"$or": [{"filepath": {"$in": chunk}}, {"original_path": {"$in": chunk}}],
                     "kind": self.kind}
            for d in self._coll.find(query, _STORED_FIELDS):
                self.by_image.setdefault(d.get("original_path") or d["filepath"], []).append(d)

    @staticmethod
    def same(doc: dict | None, files: ItemFiles) -> bool:
        """True if the stored sample ``doc`` holds ``files`` (the originals of decoded copies
        count as the files)."""
        if doc is None or (doc.get("original_path") or doc.get("filepath")) != files.image:
            return False
        if files.target is not None and \
                (doc.get("original_target_path") or doc.get("target_path")) != files.target:
            return False
        if files.mask is not None and (doc.get("mask") or {}).get("mask_path") == files.mask:
            return True
        return files.ref is not None and doc.get("import_ref") == files.ref

    def holds(self, key: str, files: ItemFiles) -> bool:
        """True if the item is already stored, under ``key`` or any other key."""
        return self.same(self.by_key.get(key), files) or any(
            self.same(d, files) for d in self.by_image.get(files.image, ()))

    def collision(self, key: str, files: ItemFiles) -> dict | None:
        """The stored sample that has ``key`` but not these files (None if there is none, or
        the item is stored). Call :meth:`read_images` with ``files.image`` first."""
        doc = self.by_key.get(key)
        if doc is None or self.holds(key, files):
            return None
        return doc

    @staticmethod
    def collision_problem(item: str, file: str, doc: dict, origin: str) -> Problem:
        """A :class:`Problem` naming the stored item that has the same key as ``item``."""
        ref = doc.get("import_ref") or doc.get("filepath")
        return Problem(
            item, file,
            f"origin {origin!r} and its relative names give the key of the stored item {ref} "
            f"(key {doc['key']}), whose files are other files ({doc.get('filepath')}): two "
            "sources share the origin name",
            f"import this source under another origin, e.g. --origin {origin}-2 (origin= in "
            "Python); if it is the stored source moved here, leave it out: it is imported")
