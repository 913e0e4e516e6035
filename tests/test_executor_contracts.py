"""The local executor passes ``ExecutorContract`` (the Ray executor: test_ray_executor_contract)."""

import pytest

from gepa_graph.executor import LocalExecutor
from tests.contracts.executor_contract import ExecutorContract


class TestLocalExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self):
        executor = LocalExecutor()
        yield executor
        executor.close()
