"""rorem-data: paired object-removal training data with a human in the loop.

The loop as flat, documented functions (each loads what it needs on first use, so
``import rorem_data`` stays light: none of torch, diffusers, open_clip, scikit-learn or FiftyOne)::

    import rorem_data

    project = rorem_data.init_project("my-project")
    rorem_data.import_seeds(project, ["RORD/meta.json"], license="CC-BY-4.0")
    rorem_data.import_pool(project, "openimages/", license="CC-BY-2.0")
    rorem_data.run_round(project, 1, remover="classical:telea", budget=500, reviewer="app")
    rorem_data.export(project, 1, "exports/round-1")

or step by step: ``generate``, ``featurize``, ``estimate_sample``, ``select``, ``review``,
``train_discriminator``, ``score``, ``auto_label``, ``audit``, ``estimates``, ``export``,
``finetune``, ``report``. Plug-ins: ``list_discriminators``, ``get_discriminator``,
``list_strategies``, ``list_featurizers``, ``list_removers``, ``list_families`` (the diffusers
inpainting families a remover can be).
"""

from __future__ import annotations

import importlib

import logging

from rorem_data.core.errors import (  # noqa: F401 - public names (see __all__)
    ConfigError,
    DependencyError,
    EnvironmentProblem,
    ExportError,
    PlanChanged,
    ProjectError,
    RoremError,
    RoundBusy,
    RoundInterrupted,
    ValidationError,
)
from rorem_data.core.version import __version__  # noqa: F401

# public name -> "module:attribute", imported on first use (PEP 562)
_API = {
    "Project": "rorem_data.rounds.project:Project",
    "init_project": "rorem_data.rounds.project:init_project",
    "open_project": "rorem_data.rounds.project:open_project",
    "import_seeds": "rorem_data.dataset.seeds:import_seeds",
    "import_pool": "rorem_data.dataset.pool:import_pool",
    "generate": "rorem_data.rounds.generate:generate",
    "featurize": "rorem_data.rounds.discriminator:featurize",
    "train_discriminator": "rorem_data.rounds.discriminator:train",
    "score": "rorem_data.rounds.discriminator:score",
    "evaluate_discriminator": "rorem_data.rounds.discriminator:evaluate",
    "select": "rorem_data.rounds.review.queue:select",
    "estimate_sample": "rorem_data.rounds.review.queue:build_estimate_sample",
    "active_sample": "rorem_data.rounds.review.queue:build_active_sample",
    "review": "rorem_data.rounds.review.reviewers:review",
    "auto_label": "rorem_data.rounds.automation:auto_label",
    "audit": "rorem_data.rounds.automation:audit",
    "estimates": "rorem_data.rounds.estimates:estimates",
    "export": "rorem_data.dataset.export:export_round",
    "finetune": "rorem_data.rounds.finetune:finetune",
    "report": "rorem_data.rounds.report:write_report",
    "status": "rorem_data.rounds.status:status",
    "run_round": "rorem_data.rounds.driver:run_round",
    "load_round": "rorem_data.rounds.record:load_round",
    "RoundPlan": "rorem_data.rounds.plan:RoundPlan",
    "candidates": "rorem_data.rounds.browse:candidates",
    "list_discriminators": "rorem_data.discriminators.specs:list_discriminators",
    "get_discriminator": "rorem_data.discriminators.specs:get_discriminator",
    "list_strategies": "rorem_data.selection.strategies:list_strategies",
    "list_featurizers": "rorem_data.features.base:list_featurizers",
    "list_removers": "rorem_data.removers.kinds:list_removers",
    "list_families": "rorem_data.models.families:list_families",
}

# front-door names handed out as they are (listing plug-ins touches no project or database)
_PLAIN = {"list_discriminators", "get_discriminator", "list_strategies", "list_featurizers",
          "list_removers", "list_families"}

__all__ = sorted([*_API, "__version__", "ConfigError", "DependencyError", "EnvironmentProblem",
                  "ExportError", "PlanChanged", "ProjectError", "RoremError", "RoundBusy",
                  "RoundInterrupted", "ValidationError"])

# a library logs, the application decides what to show (the CLI prints INFO step lines)
logging.getLogger("rorem_data").addHandler(logging.NullHandler())


def __getattr__(name: str):
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'rorem_data' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    if callable(value) and not isinstance(value, type) and name not in _PLAIN:
        from rorem_data.rounds.project import front_door

        value = front_door(value)  # a path for project; environment failures named
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return __all__
