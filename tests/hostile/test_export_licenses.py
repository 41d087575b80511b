"""Licenses through the CLI: ``import seeds|pool --license ID [--license-url URL]`` and
``export --license-allow A,B --license-deny C``: what a user relies on is that the license
given at import is what the export counts and filters on, and that unknown is reported.
"""

import json

import pytest

from rorem_data.testing import synthetic

from helpers import run_cli


def test_licenses_travel_from_import_to_export(project, tmp_path, capsys):
    by = synthetic.write_seed_set(str(tmp_path / "by"), 3, size=32, seed=1)
    nc = synthetic.write_seed_set(str(tmp_path / "nc"), 2, size=32, seed=2)
    anon = synthetic.write_seed_set(str(tmp_path / "anon"), 2, size=32, seed=3)
    p = ("-p", project.root)
    assert run_cli(capsys, *p, "import", "seeds", by, "--license", "CC-BY-4.0", "--license-url",
               "https://creativecommons.org/licenses/by/4.0/")[0] == 0
    assert run_cli(capsys, *p, "import", "seeds", nc, "--license", "CC-BY-NC-4.0")[0] == 0
    code, out, _err = run_cli(capsys, *p, "import", "seeds", anon)
    assert code == 0 and "license unknown" in out
    pool = synthetic.write_pool_folder(str(tmp_path / "pool"), 2, size=32, seed=4)
    assert run_cli(capsys, *p, "import", "pool", pool, "--license", "CC0-1.0")[0] == 0
    assert set(project.dataset.match({"kind": "pool"}).values("license")) == {"CC0-1.0"}

    code, out, _err = run_cli(capsys, *p, "export", "--round", "0", "--out", str(tmp_path / "by-only"),
                          "--license-allow", "CC-BY-4.0")
    assert code == 0 and "left out 4 pair(s) by license" in out
    m = json.load(open(tmp_path / "by-only" / "manifest.json"))
    assert m["counts"]["by_license"] == {"CC-BY-4.0": 3}
    assert m["left_out"]["by_license"] == {
        "CC-BY-NC-4.0": {"pairs": 2, "reason": "not in --license-allow"},
        "unknown": {"pairs": 2, "reason": "not in --license-allow"}}
    assert len(json.load(open(tmp_path / "by-only" / "meta.json"))) == 3

    code, out, _err = run_cli(capsys, *p, "export", "--round", "0", "--out", str(tmp_path / "no-nc"),
                          "--license-deny", "CC-BY-NC-4.0")
    assert code == 0 and "2 pair(s) have an unknown license" in out
    assert len(json.load(open(tmp_path / "no-nc" / "meta.json"))) == 5


@pytest.mark.parametrize("argv,needle", [
    (["import", "seeds", "META", "--license", "line one\nline two"], "--license must be"),
    (["import", "seeds", "META", "--license", "CC-BY-4.0", "--license-url", "not a url"], "--license-url must be"),
    (["export", "--round", "0", "--out", "OUT", "--license-allow", "A", "--license-deny", "A"], "both name A"),
])
def test_bad_license_flags_exit_non_zero(project, seed_meta, tmp_path, capsys, argv, needle):
    argv = [a.replace("META", seed_meta).replace("OUT", str(tmp_path / "o")) for a in argv]
    code, _out, err = run_cli(capsys, "-p", project.root, *argv)
    assert code == 1 and needle in err
    assert project.dataset.count() == 0 and not (tmp_path / "o").exists()
