"""Licenses given at import are stored on every sample; bad ones are refused before anything."""

import json
import os

import pytest

from rorem_data import ConfigError
from rorem_data.dataset.ingest_license import license_list, license_name, license_url
from rorem_data.testing import synthetic


def test_seed_license_is_stored_on_every_pair(project, seed_meta):
    res = project.import_seeds(seed_meta, license="CC-BY-4.0",
                               license_url="https://creativecommons.org/licenses/by/4.0/")
    assert res.license == "CC-BY-4.0" and "license CC-BY-4.0" in res.summary()
    ds = project.dataset
    assert set(ds.values("license")) == {"CC-BY-4.0"}
    assert set(ds.values("license_url")) == {"https://creativecommons.org/licenses/by/4.0/"}


def test_pool_license_is_stored_and_unset_is_unknown(project, pool_dir, tmp_path):
    first = project.import_pool(pool_dir, license="OpenImages: CC BY 2.0 (see image URLs)")
    coco = synthetic.write_coco(str(tmp_path / "coco"), 2, size=32, seed=1)
    res = project.import_pool(coco)
    assert "license unknown" in res.summary()
    assert project.dataset.count_values("license") == {
        "OpenImages: CC BY 2.0 (see image URLs)": first.inserted, "unknown": res.inserted}


def test_reimport_keeps_the_first_license(project, seed_meta):
    project.import_seeds(seed_meta, license="CC0-1.0")
    res = project.import_seeds(seed_meta, license="CC-BY-4.0")
    assert res.inserted == 0 and res.already_present == 12
    assert set(project.dataset.values("license")) == {"CC0-1.0"}


@pytest.mark.parametrize("value", ["two\nlines", "", "   ", "x" * 201, 42, ["CC-BY-4.0"], "tab\there"])
def test_bad_license_is_refused_before_anything_is_written(project, seed_meta, value):
    with pytest.raises(ConfigError, match="--license must be"):
        project.import_seeds(seed_meta, license=value)
    assert project.dataset.count() == 0


@pytest.mark.parametrize("value", ["CC-BY-4.0", "https://a b", "ftp", "https://x\nhttps://y", 3])
def test_bad_license_url_is_refused(project, pool_dir, value):
    with pytest.raises(ConfigError, match="--license-url must be"):
        project.import_pool(pool_dir, license="CC-BY-4.0", license_url=value)
    assert project.dataset.count() == 0


def test_license_helpers():
    assert license_name(None) == "unknown"
    assert license_name("  CC-BY-4.0 ") == "CC-BY-4.0"
    assert license_url(None) is None
    assert license_url("https://x.org/l") == "https://x.org/l"
    assert license_list("CC-BY-4.0, CC0-1.0,", "--license-allow") == ["CC-BY-4.0", "CC0-1.0"]
    assert license_list(("b", "a", "b"), "--license-deny") == ["a", "b"]
    assert license_list(None, "--license-allow") is None
    with pytest.raises(ConfigError, match="at least one license"):
        license_list(" , ", "--license-allow")
    with pytest.raises(ConfigError, match="--license-deny must be"):
        license_list(5, "--license-deny")


def test_import_record_names_the_license(project, seed_meta):
    from rorem_data.dataset import store

    project.import_seeds(seed_meta, license="CC-BY-4.0")
    rec = [r for r in store.get_round_records(project.dataset_name) if r["round"] == 0][0]
    assert rec["imports"][-1]["license"] == "CC-BY-4.0"
    assert rec["phases"]["seed"]["imported"] == 12
    meta = json.load(open(seed_meta))
    assert len(meta) == 12 and os.path.exists(seed_meta)
