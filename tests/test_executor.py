"""The executor seam without Ray: import-path systems, the executor argument's checks, a
custom executor carrying every rollout, and `import gepa_graph` staying free of Ray."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gepa_graph as gg
from gepa_graph.errors import ConfigError, ImportPathError
from gepa_graph.executor import LocalExecutor, import_object
from gepa_graph.testing.rules import RuleTask

ROOT = Path(__file__).resolve().parents[1]
TASK = RuleTask(n_types=3)


def test_import_object_resolves_dotted_attributes():
    assert import_object("gepa_graph.testing.rules:RuleTask") is RuleTask
    assert import_object("gepa_graph.executor:LocalExecutor.run") is LocalExecutor.run


@pytest.mark.parametrize(
    "path, message",
    [
        ("no_colon_here", "must be an import path 'package.module:attribute'"),
        ("pkg.mod:", "must be an import path"),
        (":graph", "must be an import path"),
        ("a:b:c", "must be an import path"),
        (
            "no_such_module_gg:graph",
            "cannot import module 'no_such_module_gg' of "
            "'no_such_module_gg:graph': ModuleNotFoundError",
        ),
        (
            "gepa_graph.testing.rules:nothing_here",
            "gepa_graph.testing.rules has no attribute 'nothing_here'",
        ),
    ],
)
def test_bad_import_paths_fail_in_one_line(path, message):
    with pytest.raises(ImportPathError, match=message) as caught:
        import_object(path)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, gg.GepaGraphError)


def _write_agent(folder: Path) -> None:
    (folder / "gg_path_agent.py").write_text(
        textwrap.dedent("""
        from gepa_graph.testing.rules import RuleTask
        TASK = RuleTask(n_types=3)
        system = TASK.system()
        built = []

        def make_system():
            built.append(1)
            return TASK.system()

        def make_nothing():
            return 42

        def broken_factory():
            raise RuntimeError("no API key")
    """),
        encoding="utf-8",
    )


def _optimize(system, tmp_path, name, **kwargs):
    examples = TASK.examples(8, seed=1)
    return gg.optimize(
        system,
        examples[:4],
        examples[4:],
        metric=TASK.metric,
        reflection_lm=kwargs.pop("reflection_lm", TASK.reflection_lm()),
        max_rollouts=24,
        config=gg.OptimizeConfig(concurrency=1, seed=0),
        run_dir=tmp_path / name,
        progress=False,
        **kwargs,
    )


def test_a_system_given_by_import_path_or_factory_runs_like_the_object(tmp_path, monkeypatch):
    _write_agent(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import gg_path_agent

    by_object = _optimize(gg_path_agent.system, tmp_path, "object")
    by_path = _optimize("gg_path_agent:system", tmp_path, "path")
    by_factory = _optimize("gg_path_agent:make_system", tmp_path, "factory")
    assert gg_path_agent.built == [1]
    assert by_object.best_score > by_object.seed_score
    for other in (by_path, by_factory):
        assert other.best_candidate == by_object.best_candidate
        assert other.rollouts_used == by_object.rollouts_used


@pytest.mark.parametrize(
    "path, message",
    [
        ("gg_path_agent:make_nothing", "'gg_path_agent:make_nothing': cannot optimize a int"),
        (
            "gg_path_agent:broken_factory",
            "the system factory 'gg_path_agent:broken_factory' raised RuntimeError: no API key",
        ),
        ("gg_path_agent:missing", "gg_path_agent has no attribute 'missing'"),
    ],
)
def test_a_bad_import_path_system_fails_before_any_paid_call(tmp_path, monkeypatch, path, message):
    _write_agent(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    calls = []
    with pytest.raises(gg.GepaGraphError, match=message) as caught:
        _optimize(path, tmp_path, "run", reflection_lm=calls.append)
    assert "\n" not in str(caught.value)
    assert calls == [] and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "executor, message",
    [
        ("bogus", "unknown executor 'bogus'; use 'local', 'ray', or an executor object"),
        (42, "executor must be 'local', 'ray' or an executor object .* got int"),
    ],
)
def test_an_unknown_executor_fails_in_one_line_before_any_paid_call(tmp_path, executor, message):
    calls = []
    with pytest.raises(ConfigError, match=message) as caught:
        _optimize(TASK.system(), tmp_path, "run", executor=executor, reflection_lm=calls.append)
    assert "\n" not in str(caught.value)
    assert calls == [] and not (tmp_path / "run").exists()


class CountingExecutor(LocalExecutor):
    """Runs rollouts here, counting them; records prepare and close."""

    def __init__(self):
        self.prepared, self.runs, self.closed = [], 0, False

    def prepare(self, system, source=None):
        self.prepared.append(source)

    async def run(self, system, prompts, example):
        self.runs += 1
        return await super().run(system, prompts, example)

    def close(self):
        self.closed = True


def test_every_rollout_goes_through_the_executor_and_a_callers_executor_stays_open(tmp_path):
    executor = CountingExecutor()
    result = _optimize(TASK.system(), tmp_path, "counted", executor=executor)
    local = _optimize(TASK.system(), tmp_path, "local")
    assert executor.prepared == [None] and not executor.closed
    assert executor.runs == result.rollouts_used == local.rollouts_used
    assert result.best_candidate == local.best_candidate


def test_importing_gepa_graph_does_not_import_ray():
    code = "import sys, gepa_graph; assert 'ray' not in sys.modules; print('ok')"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.stdout.strip() == "ok", done.stderr
