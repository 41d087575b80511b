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
