"""The Ray executor against a real local Ray cluster this module starts (127.0.0.1, two worker
CPUs, no dashboard; stopped by its process ids): rollouts run in worker processes, the ledger
is exact, results equal the local executor's, a killed worker's rollout is retried, a hung one
is cancelled on its worker, and a system that does not pickle is named in one line."""

import os
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray extra (pip install '.[ray]')")
psutil = pytest.importorskip("psutil")

import gepa_graph as gg  # noqa: E402
from gepa_graph.integrations.ray import LocalCluster, RayExecutor, RayExecutorError  # noqa: E402
from gepa_graph.journal import Journal  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # ray_agent: the systems the workers import too
    sys.path.insert(0, str(TESTS))
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not installed
    sys.path.append(str(ROOT))

import ray_agent  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    # The workers import this checkout's gepa_graph and tests/ray_agent.py.
    with LocalCluster(
        num_cpus=2, pythonpath=[ROOT, TESTS], env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    ) as local:
        ray.init(address=local.address, logging_level="WARNING", log_to_driver=False)
        try:
            yield local
        finally:
            ray.shutdown()


def _optimize(system, tmp_path, name, executor, concurrency=1, examples=None, **options):
    examples = examples or ray_agent.TASK.examples(10, seed=3)
    config = gg.OptimizeConfig(concurrency=concurrency, seed=0, lm_backoff_s=0.05, **options)
    return gg.optimize(
        system,
        examples[:5],
        examples[5:],
        metric=ray_agent.metric,
        reflection_lm=ray_agent.reflection_lm(),
        max_rollouts=40,
        config=config,
        run_dir=tmp_path / name,
        progress=False,
        executor=executor,
    )


def _journal(result):
    rollouts, _ = Journal(Path(result.run_dir) / "journal.jsonl").load()
    return rollouts


def test_results_and_ledger_equal_the_local_executors_and_rollouts_ran_on_workers(
    cluster, tmp_path
):
    local = _optimize(ray_agent.system, tmp_path, "local", "local")
    remote = _optimize(ray_agent.system, tmp_path, "ray", RayExecutor(address=cluster.address))
    assert remote.best_candidate == local.best_candidate
    assert remote.best_score == local.best_score > local.seed_score
    assert [(c.id, c.val_scores) for c in remote.candidates] == [
        (c.id, c.val_scores) for c in local.candidates
    ]
    assert remote.rollouts_used == local.rollouts_used
    assert remote.ledger.failed_rollouts == remote.ledger.rollout_retries == 0
    # Exact ledger: one rollout per distinct (candidate, example) pair that ran.
    local_pids = {entry["output"]["pid"] for entry in _journal(local).values()}
    remote_pids = {entry["output"]["pid"] for entry in _journal(remote).values()}
    assert len(_journal(remote)) == remote.rollouts_used == len(_journal(local))
    assert local_pids == {os.getpid()}
    assert os.getpid() not in remote_pids


def test_two_workers_share_the_rollouts_at_concurrency_two(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    result = _optimize(ray_agent.system, tmp_path, "ray2", "ray", concurrency=2)
    journal = _journal(result)
    pids = [entry["output"]["pid"] for entry in journal.values()]
    assert len(journal) == result.rollouts_used
    assert len(set(pids)) >= 2 and os.getpid() not in pids
    assert all(psutil.Process(pid).parent() is not None for pid in set(pids))


def test_a_killed_workers_rollout_is_retried_and_scored(cluster, tmp_path):
    examples = ray_agent.TASK.examples(10, seed=3)
    markers = tmp_path / "markers"
    markers.mkdir()
    examples[5] = {**examples[5], "die_once": str(markers)}  # a validation example
    result = _optimize(
        ray_agent.system, tmp_path, "die", RayExecutor(address=cluster.address), examples=examples
    )
    died = int((markers / f"{examples[5]['id']}.died").read_text())
    assert died != os.getpid() and not psutil.pid_exists(died)
    assert result.ledger.rollout_retries == 1
    assert result.ledger.failed_rollouts == 0
    journal = _journal(result)
    assert len(journal) == result.rollouts_used
    seed = next(c for c in result.candidates if not c.parent_ids)
    assert journal[(seed.id, examples[5]["id"])]["error"] is None
    local = _optimize(ray_agent.system, tmp_path, "local", "local")
    assert result.best_candidate == local.best_candidate
    assert result.rollouts_used == local.rollouts_used


def test_a_rollout_past_its_time_limit_is_cancelled_on_its_worker(cluster, tmp_path):
    examples = ray_agent.TASK.examples(10, seed=3)
    pid_file = tmp_path / "hung.pid"
    examples[6] = {**examples[6], "hang": str(pid_file)}
    started = time.monotonic()
    result = _optimize(
        ray_agent.system,
        tmp_path,
        "hang",
        RayExecutor(address=cluster.address),
        examples=examples,
        rollout_timeout_s=3.0,
    )
    assert time.monotonic() - started < 300  # the 600 s sleep was not waited for
    hung = int(pid_file.read_text())
    seed = next(c for c in result.candidates if not c.parent_ids)
    assert "RolloutTimeout" in _journal(result)[(seed.id, examples[6]["id"])]["error"]
    deadline = time.monotonic() + 60
    while psutil.pid_exists(hung) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not psutil.pid_exists(hung)  # ray.cancel(force=True) ended the worker


def test_an_unpicklable_system_is_named_in_one_line_before_any_paid_call(cluster, tmp_path):
    calls = []

    def reflection(prompt):
        calls.append(prompt)
        return "```\nx\n```"

    with pytest.raises(RayExecutorError) as caught:
        gg.optimize(
            ray_agent.locked_system(),
            ray_agent.TASK.examples(6),
            metric=ray_agent.metric,
            reflection_lm=reflection,
            max_rollouts=20,
            run_dir=tmp_path / "run",
            progress=False,
            executor=RayExecutor(address=cluster.address),
        )
    message = str(caught.value)
    assert "\n" not in message
    assert "system._fn.<closure variable lock>" in message and "lock" in message
    assert "'my_pkg.agent:graph'" in message and "factory" in message
    assert calls == [] and not (tmp_path / "run").exists()


def test_import_path_systems_are_imported_by_the_workers(cluster, tmp_path):
    remote = _optimize("ray_agent:system", tmp_path, "path", RayExecutor(address=cluster.address))
    local = _optimize(ray_agent.system, tmp_path, "local", "local")
    assert remote.best_candidate == local.best_candidate
    assert remote.rollouts_used == local.rollouts_used
    assert os.getpid() not in {e["output"]["pid"] for e in _journal(remote).values()}


def test_a_module_the_workers_cannot_import_fails_in_one_line(cluster, tmp_path, monkeypatch):
    only_here = tmp_path / "pkg"
    only_here.mkdir()
    (only_here / "driver_only_agent.py").write_text(
        "from ray_agent import system\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(only_here))
    with pytest.raises(RayExecutorError, match=r"No module named 'driver_only_agent'.*importable"):
        _optimize("driver_only_agent:system", tmp_path, "x", RayExecutor(address=cluster.address))


def _capital(system, tmp_path, name, executor):
    examples = ray_agent.capital_examples()
    return gg.optimize(
        system,
        examples[:3],
        examples[3:],
        metric=ray_agent.capital_metric,
        reflection_lm=ray_agent.capital_reflection_lm(),
        max_rollouts=24,
        config=gg.OptimizeConfig(concurrency=1, seed=0),
        run_dir=tmp_path / name,
        progress=False,
        executor=executor,
    )


def test_a_langgraph_system_pickles_and_substitutes_prompts_in_the_workers(cluster, tmp_path):
    graph = ray_agent.make_graph()
    driver_model = graph.nodes["capital"].bound.steps[1]
    remote = _capital(graph, tmp_path, "graph", RayExecutor(address=cluster.address))
    # The candidate prompt reached the worker's model: the score could only rise that way.
    assert remote.seed_score == 0.0 and remote.best_score == 1.0
    assert "UPPERCASE" in remote.best_candidate["capital"]
    # Every rollout's model call happened in a worker: the driver made only the probe's, one
    # per training example (the probe runs here, before the search).
    assert len(driver_model.calls) == remote.ledger.probe_rollouts == 3
    local = _capital(ray_agent.make_graph(), tmp_path, "local", "local")
    assert remote.best_candidate == local.best_candidate
    assert remote.rollouts_used == local.rollouts_used
    factory = _capital(
        "ray_agent:make_graph", tmp_path, "factory", RayExecutor(address=cluster.address)
    )
    assert factory.best_candidate == local.best_candidate


def test_the_benchmarks_quick_mode_runs_on_a_given_cluster(cluster, tmp_path):
    from benchmarks import ray_cluster

    results = ray_cluster.main(
        ["--quick", "--address", cluster.address, "--out", str(tmp_path / "ray_cluster.json")]
    )
    assert results["ray"]["rollouts"] == results["local"]["rollouts"] > 0
    assert results["ray"]["pids"] and not results["ray"]["driver_pid_ran_rollouts"]
    assert results["local"]["pids"] == [os.getpid()]
    assert results["same_best"] and results["cluster_start_seconds"] is None
    assert "| ray |" in ray_cluster.markdown(results)


def test_a_ray_run_resumes_with_the_local_executor_from_its_journal(cluster, tmp_path):
    """The executor is no part of the resume fingerprint: a run's journal serves either."""

    class Counting(gg.LocalExecutor):
        runs = 0

        async def run(self, system, prompts, example):
            Counting.runs += 1
            return await super().run(system, prompts, example)

    remote = _optimize(ray_agent.system, tmp_path, "run", RayExecutor(address=cluster.address))
    resumed = gg.optimize(
        ray_agent.system,
        *_split(),
        metric=ray_agent.metric,
        reflection_lm=ray_agent.reflection_lm(),
        max_rollouts=40,
        config=gg.OptimizeConfig(concurrency=1, seed=0, lm_backoff_s=0.05),
        run_dir=tmp_path / "run",
        resume=True,
        progress=False,
        executor=Counting(),
    )
    assert Counting.runs == 0  # every rollout came from the Ray run's journal
    assert resumed.best_candidate == remote.best_candidate
    assert resumed.rollouts_used == remote.rollouts_used


def _split():
    examples = ray_agent.TASK.examples(10, seed=3)
    return examples[:5], examples[5:]
