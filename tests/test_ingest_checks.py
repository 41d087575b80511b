"""The parallel file checker every importer uses: order, bounded work in flight, dead workers."""

import math
import os

import pytest

from rorem_data import ValidationError
from rorem_data.core.validate import map_checks


def test_parallel_results_keep_the_order_of_the_tasks():
    tasks = list(range(5000))
    assert map_checks(math.sqrt, tasks, desc="t", workers=2, chunk_size=16) == [math.sqrt(t) for t in tasks]


def test_a_worker_that_dies_is_one_clear_error_naming_the_items():
    # os._exit ends the worker process at once, as a decoder crash or the OOM killer would
    with pytest.raises(ValidationError, match=r"a worker process died while checking items \d+-\d+"):
        map_checks(os._exit, [3] * 400, desc="checking crashers", workers=2, chunk_size=8)


def test_worker_processes_never_run_the_callers_script_again(tmp_path):
    """A notebook-style script without an ``if __name__ == "__main__":`` guard that imports many
    files must run once: spawn/forkserver workers would otherwise execute it again, each."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    marker = tmp_path / "runs"
    script.write_text(
        "import os\n"
        f"open({str(marker)!r}, 'a').write(str(os.getpid()) + '\\n')\n"
        "from rorem_data.core.validate import map_checks\n"
        "print(sum(map_checks(abs, list(range(-3000, 0)), desc='x', workers=2)))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "4501500"
    assert len(marker.read_text().split()) == 1
