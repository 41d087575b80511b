"""The architecture rules, checked: layers point down, MongoDB only in dataset/, a light import,
and a front door whose every name resolves to a documented function."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(REPO, "rorem_data")
HEAVY = ("torch", "diffusers", "open_clip", "fiftyone", "transformers", "sklearn", "typer",
         "pymongo", "scipy", "cv2", "matplotlib", "pandas")


def _modules():
    for dp, _dn, fns in os.walk(PKG):
        for fn in fns:
            if fn.endswith(".py"):
                yield os.path.join(dp, fn)


def test_import_rorem_data_is_light():
    """`import rorem_data` pulls in no heavy dependency and no layer above core."""
    code = ("import sys, rorem_data; "
            f"heavy=[m for m in {HEAVY!r} if m in sys.modules]; "
            "ours=sorted(m for m in sys.modules if m.startswith('rorem_data.') "
            "and not m.startswith('rorem_data.core')); print(heavy, ours)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"


def test_every_front_door_name_resolves_to_a_documented_function():
    code = ("import rorem_data, inspect, json; bad=[]\n"
            "for n in rorem_data.__all__:\n"
            "    v=getattr(rorem_data, n)\n"
            "    if n.startswith('__'): continue\n"
            "    if not (inspect.getdoc(v) or '').strip(): bad.append(n)\n"
            "print(json.dumps(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"
    import rorem_data

    wanted = {"init_project", "open_project", "import_seeds", "import_pool", "generate", "featurize",
              "train_discriminator", "score", "select", "estimate_sample", "review", "auto_label",
              "audit", "estimates", "export", "finetune", "report", "run_round",
              "list_discriminators", "get_discriminator", "list_strategies", "list_featurizers",
              "list_removers", "list_families"}
    assert wanted <= set(rorem_data.__all__)


def test_mongodb_is_touched_only_in_dataset():
    """No module outside rorem_data/dataset uses pymongo, bson or a collection handle."""
    offenders = []
    for path in _modules():
        rel = os.path.relpath(path, PKG)
        if rel.startswith("dataset" + os.sep):
            continue
        tree = ast.parse(open(path, encoding="utf-8").read(), filename=path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("_sample_collection", "_frame_collection"):
                offenders.append(f"{rel}:{node.lineno} .{node.attr}")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for n in names:
                    if n.split(".")[0] in ("pymongo", "bson", "motor"):
                        offenders.append(f"{rel}:{node.lineno} import {n}")
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "get_db_conn":
                offenders.append(f"{rel}:{node.lineno} get_db_conn()")
    assert offenders == []


@pytest.mark.skipif(shutil.which("lint-imports", path=os.path.dirname(sys.executable)) is None,
                    reason="import-linter is not installed")
def test_layer_contracts_hold():
    """import-linter's contracts in pyproject.toml: layers, MongoDB only in dataset/, no cycles
    between sibling modules (function-level imports included)."""
    exe = shutil.which("lint-imports", path=os.path.dirname(sys.executable))
    out = subprocess.run([exe, "--no-cache"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout[-4000:]
