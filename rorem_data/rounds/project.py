"""A rorem-data project: a folder with ``rorem.toml``, a FiftyOne dataset and a media folder.

Commands run inside a project like git: the config is found in the current folder or a parent;
``--project`` overrides.

>>> import rorem_data
>>> project = rorem_data.init_project("my-project")        # doctest: +SKIP
>>> project = rorem_data.open_project("my-project")        # doctest: +SKIP
>>> project.dataset                                         # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from rorem_data.core.errors import ProjectError

CONFIG_NAME = "rorem.toml"


@dataclass
class ProjectConfig:
    """Contents of ``rorem.toml``.

    Attributes
    ----------
    name : str
        Human name of the project.
    dataset : str
        Name of its FiftyOne dataset.
    media_dir : str
        Folder for files the project writes (canonical masks, generated results), relative to
        the project folder unless absolute.
    settings : dict
        Free-form defaults for later commands (``[settings]`` table).
    """

    name: str
    dataset: str
    media_dir: str = "media"
    created: str = ""
    settings: dict = field(default_factory=dict)
    project_id: str = ""
    db_uri: str = ""
    db_path: str = ""

    def to_toml(self) -> str:
        lines = ["# rorem-data project (https://github.com/rorem-data)", "[project]"]
        for k in ("name", "dataset", "media_dir", "created"):
            lines.append(f"{k} = {_toml_value(getattr(self, k))}")
        lines += ["", "# where the data lives: checked against the connected database on every open",
                  "[database]", f"project_id = {_toml_value(self.project_id)}",
                  f"uri = {_toml_value(self.db_uri)}", f"db_path = {_toml_value(self.db_path)}"]
        lines += ["", "[settings]"]
        for k, v in sorted(self.settings.items()):
            lines.append(f"{k} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str, where: str) -> "ProjectConfig":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ProjectError(f"{where} is not valid TOML ({exc}); fix or re-create it with "
                               "rorem_data.init_project(path, force=True) (rorem-data init --force)") from None
        proj = data.get("project")
        if not isinstance(proj, dict) or not isinstance(proj.get("dataset"), str):
            raise ProjectError(f"{where} has no [project] table with a 'dataset' name; "
                               "re-create it with rorem_data.init_project(path, force=True) "
                               "(rorem-data init --force)")
        db = data.get("database") if isinstance(data.get("database"), dict) else {}
        return cls(
            name=str(proj.get("name", "")),
            dataset=proj["dataset"],
            media_dir=str(proj.get("media_dir", "media")),
            created=str(proj.get("created", "")),
            settings=dict(data.get("settings", {})),
            project_id=str(db.get("project_id", "")),
            db_uri=str(db.get("uri", "")),
            db_path=str(db.get("db_path", "")),
        )


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


class Project:
    """An opened project. Use :func:`open_project` or :func:`init_project` to get one."""

    def __init__(self, root: str, config: ProjectConfig):
        self.root = os.path.abspath(root)
        self.config = config
        self._dataset = None

    def __repr__(self) -> str:
        return f"Project(root={self.root!r}, dataset={self.config.dataset!r})"

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def dataset_name(self) -> str:
        return self.config.dataset

    @property
    def media_dir(self) -> str:
        d = self.config.media_dir
        return d if os.path.isabs(d) else os.path.join(self.root, d)

    def media_path(self, *parts: str) -> str:
        return os.path.join(self.media_dir, *parts)

    @property
    def dataset(self):
        """The project's ``fiftyone.Dataset`` (loaded on first use, after checking that the
        connected database is the one that holds the project).

        Raises
        ------
        ProjectError
            This process is connected to another database (FiftyOne's embedded database is one
            per machine: a process started while another runs joins that one), or the dataset
            is missing.
        """
        if self._dataset is None:
            from rorem_data.dataset import store

            self.check_database()
            self._dataset = store.load_dataset(self.config.dataset)
        return self._dataset

    def check_database(self) -> None:
        """Raise :class:`ProjectError` unless the connected database holds this project."""
        from rorem_data.dataset import store

        if not self.config.project_id:
            return  # a project from before identities were recorded: the dataset check remains
        if store.find_project(self.config.project_id) is not None:
            return
        now = store.database_identity()
        made = self.config.db_path or "?"
        made_how = self.config.db_uri or "FiftyOne's embedded database"
        conn_how = now["uri"] or f"FiftyOne's embedded database at {now['address']}"
        fix = (f"set FIFTYONE_DATABASE_URI={self.config.db_uri}" if self.config.db_uri else
               "stop the other FiftyOne processes on this machine (an App, a notebook, another "
               "command: the embedded database is one service per machine, and it was started "
               "from another folder), then run the command again")
        raise ProjectError(
            f"project {self.root} lives in the database at {made} ({made_how}), but this process "
            f"is connected to the database at {now['db_path'] or '?'} ({conn_how}), which does "
            f"not hold it. Fix: {fix}. If you moved the database on purpose, adopt the "
            "connected one with rorem_data.init_project(project_folder, force=True) (rorem-data "
            "init --force)")

    # Thin conveniences over the library functions ------------------------------------------

    def import_seeds(self, meta_paths, **kwargs):
        """See :func:`rorem_data.dataset.seeds.import_seeds`."""
        from rorem_data.dataset.seeds import import_seeds

        return import_seeds(self, meta_paths, **kwargs)

    def import_pool(self, source, **kwargs):
        """See :func:`rorem_data.dataset.pool.import_pool`."""
        from rorem_data.dataset.pool import import_pool

        return import_pool(self, source, **kwargs)

    def export(self, round: int, out: str, **kwargs):
        """See :func:`rorem_data.dataset.export.export_round`."""
        from rorem_data.dataset.export import export_round

        return export_round(self, round, out, **kwargs)

    def status(self):
        """See :func:`rorem_data.rounds.status.round_table`."""
        from rorem_data.rounds.status import round_table

        return round_table(self)


def find_project_root(start: str = ".") -> str | None:
    """The nearest folder at or above ``start`` holding ``rorem.toml``."""
    d = os.path.abspath(start)
    while True:
        if os.path.isfile(os.path.join(d, CONFIG_NAME)):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def open_project(path: str = ".") -> Project:
    """Open the project at ``path`` or the nearest parent folder holding ``rorem.toml``.

    Raises
    ------
    ProjectError
        If no project is found, or its config is broken.
    """
    root = find_project_root(path)
    if root is None:
        raise ProjectError(
            f"No rorem-data project at {os.path.abspath(path)} or any parent folder "
            f"(no {CONFIG_NAME}); make one with rorem_data.init_project(path) (rorem-data init), "
            "or open the right folder (--project DIR)"
        )
    cfg_path = os.path.join(root, CONFIG_NAME)
    with open(cfg_path, encoding="utf-8") as fh:
        config = ProjectConfig.from_toml(fh.read(), cfg_path)
    return Project(root, config)


def as_project(project, name: str = "project") -> Project:
    """``project`` as a :class:`Project`: a Project is returned as is, a path (``str`` or
    ``os.PathLike``) is opened with :func:`open_project`.

    Raises
    ------
    ConfigError
        Anything else (the message names the parameter and what came).
    ProjectError
        A path that holds no project.
    """
    if isinstance(project, Project):
        return project
    if isinstance(project, (str, os.PathLike)):
        return open_project(os.fspath(project))
    from rorem_data.core.errors import ConfigError

    raise ConfigError(f"{name} must be a Project (rorem_data.open_project(path)) or the path of a "
                      f"project folder; got {type(project).__name__} {project!r:.80}")


def front_door(fn):
    """Wrap a library function for the front door (``rorem_data.<name>``): its ``project``
    may be a Project or a project folder's path, and a full disk, a read-only folder or a
    database that does not answer comes out as one named
    :class:`~rorem_data.core.errors.EnvironmentProblem`."""
    import functools
    import inspect

    from rorem_data.core.environment import environment_problem

    takes_project = next(iter(inspect.signature(fn).parameters), None) == "project"

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if takes_project:
            if args:
                args = (as_project(args[0]), *args[1:])
            elif "project" in kwargs:
                kwargs["project"] = as_project(kwargs["project"])
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - only environment failures are translated
            named = environment_problem(exc)
            if named is None or named is exc:
                raise
            raise named from exc

    return wrapper


_NAME_RE = re.compile(r"[^A-Za-z0-9_-]+")


def init_project(path: str = ".", *, name: str | None = None, dataset: str | None = None,
                 media_dir: str = "media", force: bool = False) -> Project:
    """Make ``path`` a project: write ``rorem.toml``, create the dataset and the media folder.

    Parameters
    ----------
    path : str
        Project folder (created if missing).
    name : str, optional
        Project name (default: the folder name).
    dataset : str, optional
        FiftyOne dataset name (default: ``rorem-<name>-<random suffix>``, unique per project).
    media_dir : str
        Media folder, relative to the project.
    force : bool
        Re-create the config (and the dataset if it does not exist) over an existing project.

    Raises
    ------
    ProjectError
        If ``path`` already holds a project (without ``force``) or the dataset name is taken.
    """
    from rorem_data.dataset import store

    root = os.path.abspath(path)
    cfg_path = os.path.join(root, CONFIG_NAME)
    old = None
    if os.path.exists(cfg_path):
        if not force:
            raise ProjectError(f"{root} is already a rorem-data project ({CONFIG_NAME} exists); "
                               "open it with rorem_data.open_project, or pass force=True (--force)")
        try:
            with open(cfg_path, encoding="utf-8") as fh:
                old = ProjectConfig.from_toml(fh.read(), cfg_path)
        except ProjectError:
            old = None
    name = name or (old.name if old else None) or os.path.basename(root) or "project"
    if dataset is None:
        dataset = old.dataset if old else f"rorem-{_NAME_RE.sub('-', name).strip('-')[:40]}-{secrets.token_hex(3)}"
    config = ProjectConfig(
        name=name,
        dataset=dataset,
        media_dir=media_dir,
        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        settings=old.settings if old else {},
    )
    os.makedirs(root, exist_ok=True)
    if store.dataset_exists(dataset):
        if not force:
            raise ProjectError(f"FiftyOne dataset {dataset!r} already exists; pass another "
                               "dataset name, or force=True (--force) to adopt it")
        store.ensure_schema(store.load_dataset(dataset))
    else:
        store.create_dataset(dataset)
    ident = store.database_identity()
    config.project_id = (old.project_id if old and old.project_id else secrets.token_hex(8))
    config.db_uri, config.db_path = ident["uri"], ident["db_path"]
    store.register_project(config.project_id, dataset, root)
    project = Project(root, config)
    os.makedirs(project.media_dir, exist_ok=True)
    tmp = cfg_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(config.to_toml())
    os.replace(tmp, cfg_path)
    return project
