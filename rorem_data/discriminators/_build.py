"""Build hook (setuptools ``cmdclass``): ship the repository's ``discriminators/*.toml`` specs.

The shipped discriminator specs live once, in the repository's top-level ``discriminators/``
folder - the place users copy and edit them. A checkout (and an editable install) reads that
folder directly; a wheel carries a copy made here, at build time, as package data in
``rorem_data/discriminators/shipped/`` (see :func:`rorem_data.discriminators.specs.shipped_folder`).
The sdist carries the folder itself, so a wheel built from the sdist gets the same files.

Used only by ``pip wheel`` / ``python -m build`` (``[tool.setuptools.cmdclass]`` in
pyproject.toml); rorem-data never imports it at run time.
"""

from __future__ import annotations

import glob
import os

from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = "discriminators"  # relative to ROOT: the one copy
TARGET = os.path.join("rorem_data", "discriminators", "shipped")  # inside the wheel


def spec_files() -> list[str]:
    """The spec files of the top-level folder, relative to the repository root."""
    found = sorted(glob.glob(os.path.join(ROOT, SPECS, "*.toml"))
                   + glob.glob(os.path.join(ROOT, SPECS, "*.json")))
    if not found:
        raise RuntimeError(f"no discriminator specs in {os.path.join(ROOT, SPECS)}; the wheel "
                           "would ship none (is the discriminators/ folder in this source tree?)")
    return [os.path.relpath(p, ROOT) for p in found]


class BuildPyWithSpecs(build_py):
    """``build_py`` that also copies the shipped specs into ``rorem_data/discriminators/shipped``."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's discriminators/ folder
        target = os.path.join(self.build_lib, TARGET)
        self.mkpath(target)
        for rel in spec_files():
            self.copy_file(os.path.join(ROOT, rel), os.path.join(target, os.path.basename(rel)))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode=include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return outputs + [os.path.join(self.build_lib, TARGET, os.path.basename(rel))
                          for rel in spec_files()]


class SdistWithSpecs(sdist):
    """``sdist`` that includes the top-level ``discriminators/`` spec files."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        for rel in spec_files():
            self.mkpath(os.path.join(base_dir, os.path.dirname(rel)))
            self.copy_file(os.path.join(ROOT, rel), os.path.join(base_dir, rel))
