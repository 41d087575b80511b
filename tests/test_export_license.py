"""Export: pairs counted per license, filtered by allow/deny lists, what was left out reported."""

import json

import pytest

from rorem_data import ConfigError
from rorem_data.testing import synthetic

from helpers import add_candidates, judge_by_mode


@pytest.fixture
def licensed(project, tmp_path):
    """4 CC-BY-4.0 seeds, 3 CC-BY-NC-4.0 seeds, 2 without a license, 1 written before licenses
    existed (no field at all), and 2 accepted candidates that carry CC0-1.0."""
    project.import_seeds(synthetic.write_seed_set(str(tmp_path / "by"), 4, size=32, seed=1),
                         license="CC-BY-4.0", license_url="https://creativecommons.org/licenses/by/4.0/")
    project.import_seeds(synthetic.write_seed_set(str(tmp_path / "nc"), 3, size=32, seed=2),
                         license="CC-BY-NC-4.0")
    project.import_seeds(synthetic.write_seed_set(str(tmp_path / "none"), 3, size=32, seed=3))
    coll = project.dataset._sample_collection
    legacy = coll.find_one({"license": "unknown"}, {"_id": 1})["_id"]
    coll.update_one({"_id": legacy}, {"$unset": {"license": "", "license_url": ""}})
    ids, modes = add_candidates(project, 1, ["clean", "clean", "residue"], seed=4)
    from bson import ObjectId

    coll.update_many({"_id": {"$in": [ObjectId(i) for i in ids]}}, {"$set": {"license": "CC0-1.0"}})
    judge_by_mode(project, 1, ids, modes)
    return project


def _manifest(out):
    return json.load(open(out / "manifest.json"))


def test_manifest_counts_pairs_per_license(licensed, tmp_path):
    res = licensed.export(1, str(tmp_path / "all"))
    expect = {"CC-BY-4.0": 4, "CC-BY-NC-4.0": 3, "CC0-1.0": 2, "unknown": 3}
    assert res.by_license == expect and res.left_out == {}
    m = _manifest(tmp_path / "all")
    assert m["counts"]["by_license"] == expect
    assert m["license_urls"] == {"CC-BY-4.0": ["https://creativecommons.org/licenses/by/4.0/"]}
    assert m["left_out"] == {"pairs": 0, "by_license": {}}
    assert "3 pair(s) have an unknown license" in res.summary()


def test_allow_list_keeps_only_listed_licenses_and_reports_the_rest(licensed, tmp_path):
    out = tmp_path / "allowed"
    res = licensed.export(1, str(out), license_allow=["CC-BY-4.0", "CC0-1.0"])
    assert res.accepted == 6
    assert len(json.load(open(out / "meta.json"))) == 6
    left = {"CC-BY-NC-4.0": {"pairs": 3, "reason": "not in --license-allow"},
            "unknown": {"pairs": 3, "reason": "not in --license-allow"}}
    assert res.left_out == left
    m = _manifest(out)
    assert m["left_out"] == {"pairs": 6, "by_license": left}
    assert m["license_filter"] == {"allow": ["CC-BY-4.0", "CC0-1.0"], "deny": None}
    assert m["counts"]["by_license"] == {"CC-BY-4.0": 4, "CC0-1.0": 2}
    assert "left out 6 pair(s) by license" in res.summary()
    assert "3 unknown (not in --license-allow)" in res.summary()


def test_unknown_passes_an_allow_list_only_when_listed(licensed, tmp_path):
    res = licensed.export(0, str(tmp_path / "u"), license_allow="CC-BY-4.0,unknown")
    assert res.by_license == {"CC-BY-4.0": 4, "unknown": 3}  # the legacy pair counts as unknown
    assert res.left_out == {"CC-BY-NC-4.0": {"pairs": 3, "reason": "not in --license-allow"}}


def test_deny_list_and_formats_carry_the_license(licensed, tmp_path):
    out = tmp_path / "if"
    res = licensed.export(1, str(out), format="imagefolder", license_deny=["CC-BY-NC-4.0"])
    assert res.left_out == {"CC-BY-NC-4.0": {"pairs": 3, "reason": "denied by --license-deny"}}
    rows = [json.loads(line) for line in open(out / "metadata.jsonl")]
    assert sorted(r["license"] for r in rows) == ["CC-BY-4.0"] * 4 + ["CC0-1.0"] * 2 + ["unknown"] * 3
    assert {r["license_url"] for r in rows if r["license"] == "CC-BY-4.0"} == {
        "https://creativecommons.org/licenses/by/4.0/"}
    import pyarrow.parquet as pq

    licensed.export(1, str(tmp_path / "pq"), format="parquet", license_deny="unknown")
    table = pq.read_table(tmp_path / "pq" / "pairs.parquet").to_pylist()
    assert sorted({r["license"] for r in table}) == ["CC-BY-4.0", "CC-BY-NC-4.0", "CC0-1.0"]


def test_filtered_exports_are_deterministic(licensed, tmp_path):
    import os

    def tree(root):
        return {os.path.relpath(os.path.join(d, f), root): open(os.path.join(d, f), "rb").read()
                for d, _s, fs in os.walk(root) for f in fs}

    licensed.export(1, str(tmp_path / "a"), license_allow=["CC0-1.0", "CC-BY-4.0"])
    licensed.export(1, str(tmp_path / "b"), license_allow="CC-BY-4.0,CC0-1.0")
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


@pytest.mark.parametrize("kw,needle", [
    ({"license_allow": ["CC-BY-4.0"], "license_deny": "CC-BY-4.0"}, "both name CC-BY-4.0"),
    ({"license_allow": []}, "at least one license"),
    ({"license_deny": ["two\nlines"]}, "license_deny must be"),
    ({"license_allow": 7}, "license_allow must be"),
])
def test_bad_license_filters(licensed, tmp_path, kw, needle):
    with pytest.raises(ConfigError, match=needle):
        licensed.export(1, str(tmp_path / "x"), **kw)
    assert not (tmp_path / "x").exists()


def test_license_of_the_remover_weights_is_recorded_and_filtered(project, tmp_path):
    """A remover spec's license travels with each candidate it made; the export's filters
    apply it next to the pool item's license, and the manifest counts it."""
    from rorem_data.removers import load_remover

    remover = load_remover({"kind": "classical", "license": "FLUX.1-dev-non-commercial"})
    prov = remover.provenance(seed=0)
    assert prov["license"] == "FLUX.1-dev-non-commercial"
    assert load_remover("classical:telea").key == remover.key  # the license is not in the key
    ids, modes = add_candidates(project, 1, ["clean", "clean", "clean"], seed=5)
    from bson import ObjectId

    coll = project.dataset._sample_collection
    coll.update_many({"_id": {"$in": [ObjectId(i) for i in ids[:2]]}},
                     {"$set": {"generator": prov, "license": "CC0-1.0"}})
    coll.update_one({"_id": ObjectId(ids[2])}, {"$set": {"license": "CC0-1.0"}})
    judge_by_mode(project, 1, ids, modes)
    res = project.export(1, str(tmp_path / "all"))
    m = _manifest(tmp_path / "all")
    assert m["counts"]["by_model_license"] == {"FLUX.1-dev-non-commercial": 2, "not recorded": 1}
    rows = json.load(open(tmp_path / "all" / "meta.json"))
    assert len(rows) == res.accepted == 3
    denied = project.export(1, str(tmp_path / "deny"),
                            license_deny=["FLUX.1-dev-non-commercial"])
    assert denied.accepted == 1
    assert denied.left_out == {"FLUX.1-dev-non-commercial": {
        "pairs": 2, "reason": "denied by --license-deny (license of the remover weights)"}}
    allowed = project.export(1, str(tmp_path / "allow"), license_allow=["CC0-1.0"])
    assert allowed.accepted == 1 and allowed.left_out["FLUX.1-dev-non-commercial"]["pairs"] == 2
