"""The Ray executor passes ``ExecutorContract`` on a local Ray cluster this module starts
(127.0.0.1, two worker CPUs; stopped by its process ids), and its rollouts run in workers."""

import asyncio
import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray extra (pip install '.[ray]')")
pytest.importorskip("psutil")

from gepa_graph.integrations.ray import LocalCluster, RayExecutor  # noqa: E402
from tests.contracts import echo  # noqa: E402
from tests.contracts.executor_contract import ExecutorContract  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    # The workers import this checkout's gepa_graph and tests.contracts.echo.
    with LocalCluster(
        num_cpus=2, pythonpath=[ROOT], env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    ) as local:
        ray.init(address=local.address, logging_level="WARNING", log_to_driver=False)
        try:
            yield local
        finally:
            ray.shutdown()


class TestRayExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self, cluster):
        executor = RayExecutor(check_timeout_s=60)
        yield executor
        executor.close()

    def test_rollouts_run_in_worker_processes(self, executor, system):
        rollout = asyncio.run(executor.run(system, echo.SEEDS, {"question": "where"}))
        [record] = rollout.trace.records
        assert record.meta["pid"] != os.getpid()
