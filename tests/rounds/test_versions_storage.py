"""Discriminator version storage: names checked on every read, corrupt records named, skipped."""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import pytest

from rorem_data.core.errors import ConfigError
from rorem_data.rounds.versions import (
    latest_version,
    list_versions,
    load_version_meta,
    version_dir,
    versions_dir,
    write_version_meta,
)


@pytest.fixture
def project(tmp_path):
    return SimpleNamespace(root=str(tmp_path / "proj"))


@pytest.mark.parametrize("bad", ["../x", "..", "/etc/passwd", "a/b", "a\\b", "", "v.1", "v-1",
                                 "é", None, 3])
def test_bad_names_are_refused_on_read_and_write(project, bad):
    for call in (lambda: version_dir(project, bad), lambda: load_version_meta(project, bad),
                 lambda: write_version_meta(project, bad, {})):
        with pytest.raises(ConfigError, match="letters, digits and '_'"):
            call()
    assert not os.path.exists(versions_dir(project))


def test_round_trip_and_latest(project):
    write_version_meta(project, "a_r1", {"trained_at": "2026-01-01T00:00:00", "round": 1})
    write_version_meta(project, "b_r2", {"trained_at": "2026-02-01T00:00:00", "round": 2})
    assert load_version_meta(project, "a_r1") == {"trained_at": "2026-01-01T00:00:00", "round": 1,
                                                  "version": "a_r1"}
    assert latest_version(project) == "b_r2" and list_versions(project) == ["a_r1", "b_r2"]
    # the version fixed before a round began: trained on earlier rounds only
    assert latest_version(project, before_round=3) == "b_r2"
    assert latest_version(project, before_round=2) == "a_r1"
    assert latest_version(project, before_round=1) is None
    with pytest.raises(ConfigError, match="before_round must be an integer"):
        latest_version(project, before_round="2")
    assert not [f for f in os.listdir(version_dir(project, "a_r1")) if "tmp" in f]
    with pytest.raises(ConfigError, match="'c' is not in this project; known: a_r1, b_r2"):
        load_version_meta(project, "c")


@pytest.mark.parametrize("text", ['{"trained_at": "2026-03', "", "[1, 2]", "\xff\xfe", "[" * 500])
def test_a_corrupt_record_is_one_clear_error_and_is_skipped_by_latest(project, text, caplog):
    write_version_meta(project, "good", {"trained_at": "2026-01-01T00:00:00"})
    write_version_meta(project, "broken", {"trained_at": "2026-09-01T00:00:00"})
    path = os.path.join(version_dir(project, "broken"), "meta.json")
    with open(path, "wb") as fh:
        fh.write(text.encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_version_meta(project, "broken")
    msg = str(err.value)
    assert path in msg and "discriminator version 'broken'" in msg and "retrain it" in msg
    with caplog.at_level(logging.WARNING, logger="rorem_data"):
        assert latest_version(project) == "good"
    assert "skipping discriminator version 'broken'" in caplog.text


def test_stray_folders_are_ignored(project):
    os.makedirs(os.path.join(versions_dir(project), "..hidden"))
    os.makedirs(os.path.join(versions_dir(project), "no_meta_yet"))
    assert latest_version(project) is None
    assert list_versions(project) == ["no_meta_yet"]
