"""A resume continues the same run or refuses in one line: other inputs, a folder with nothing to
resume, a checkpoint without its journal (issue 14: every one of these used to re-pay silently)."""

import pytest

import gepa_graph as gg
from gepa_graph.errors import ResumeMismatch, RunExists
from gepa_graph.testing.rules import RuleTask

TASK = RuleTask(n_types=3)


def run(tmp_path, calls, **overrides):
    data = TASK.examples(8, seed=1)
    args = dict(
        trainset=data[:4],
        valset=data[4:],
        metric=TASK.metric,
        max_rollouts=24,
        run_dir=tmp_path / "run",
        progress=False,
        reflection_lm=TASK.reflection_lm(),
        config=gg.OptimizeConfig(seed=0),
    )
    args.update(overrides)

    def answer(prompts, example, trace):
        calls.append(1)
        return TASK.answer(prompts, example, trace)

    counting = gg.FunctionSystem(TASK.seed_prompts(), answer)
    return gg.optimize(counting, args.pop("trainset"), args.pop("valset"), **args)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: dict(config=gg.OptimizeConfig(seed=1)), "config"),
        (lambda d: dict(seed_prompts={m: "Other seed." for m in TASK.modules}), "seed prompts"),
        (lambda d: dict(valset=d[4:7]), "valset"),
        (lambda d: dict(trainset=[{**d[0], "question": "changed"}, *d[1:4]]), "trainset"),
        (lambda d: dict(reflection_lm="openai/gpt-4.1-mini"), "reflection LM"),
    ],
)
def test_a_resume_with_other_inputs_names_what_differs_and_pays_nothing(tmp_path, change, named):
    calls = []
    run(tmp_path, calls)
    paid = len(calls)
    with pytest.raises(ResumeMismatch, match=f"the {named} differ") as error:
        run(tmp_path, calls, resume=True, **change(TASK.examples(8, seed=1)))
    assert "\n" not in str(error.value) and len(calls) == paid


def test_a_larger_budget_resumes_and_the_folder_states_are_one_line_errors(tmp_path):
    calls = []
    first = run(tmp_path, calls)
    more = run(tmp_path, calls, resume=True, max_rollouts=40)
    assert more.rollouts_used >= first.rollouts_used
    with pytest.raises(RunExists, match="resume=True"):
        run(tmp_path, calls)
    with pytest.raises(ResumeMismatch, match="nothing to resume"):
        run(tmp_path, calls, resume=True, run_dir=tmp_path / "empty")
    (tmp_path / "run" / "journal.jsonl").write_text("")
    paid = len(calls)
    with pytest.raises(ResumeMismatch, match="journal.jsonl is missing or empty"):
        run(tmp_path, calls, resume=True)
    assert len(calls) == paid


def other_metric(example, prediction, trace):
    return TASK.metric(example, prediction, trace)


def test_a_resume_with_another_metric_is_refused_and_pays_nothing(tmp_path):
    calls = []
    run(tmp_path, calls)
    paid = len(calls)
    with pytest.raises(ResumeMismatch, match="the metric differ"):
        run(tmp_path, calls, resume=True, metric=other_metric)
    other_metric.version = "2"  # a metric may name its version instead of its source
    with pytest.raises(ResumeMismatch, match="the metric differ"):
        run(tmp_path, calls, resume=True, metric=other_metric)
    assert len(calls) == paid


@pytest.mark.parametrize("budget", [dict(max_rollouts=24), dict(max_seconds=2, max_rollouts=None)])
def test_a_finished_run_resumed_with_the_same_inputs_returns_its_result_unpaid(tmp_path, budget):
    calls = []
    config = gg.OptimizeConfig(seed=0, concurrency=4, **budget)
    test = TASK.examples(3, seed=9, prefix="test")  # scored after the search, journaled too
    first = run(tmp_path, calls, config=config, max_rollouts=None, testset=test)
    paid = len(calls)
    again = run(tmp_path, calls, resume=True, config=config, max_rollouts=None, testset=test)
    assert len(calls) == paid
    assert (again.best_id, again.rollouts_used, again.stop_reason, again.test_best_score) == (
        first.best_id,
        first.rollouts_used,
        first.stop_reason,
        first.test_best_score,
    )


class ProbedSystem(gg.FunctionSystem):
    """A system whose prompts only a probe run confirms (as some LangGraph agents)."""

    needs_probe = True
    probe_report = None

    def __init__(self, probes):
        super().__init__(TASK.seed_prompts(), TASK.answer)
        self.probes = probes

    async def aprobe(self, examples):
        self.probes.append([e.key for e in examples])  # paid model calls in a real graph

        class Report:
            cost_usd = 0.0

            def notes(self):
                return []

        return Report()


def test_every_refusal_comes_before_the_probe(tmp_path):
    probes = []
    data = TASK.examples(8, seed=1)
    args = dict(
        metric=TASK.metric,
        reflection_lm=TASK.reflection_lm(),
        max_rollouts=24,
        run_dir=tmp_path / "run",
        progress=False,
    )
    first = gg.optimize(ProbedSystem(probes), data[:4], data[4:], **args)
    assert len(probes) == 1
    with pytest.raises(RunExists):
        gg.optimize(ProbedSystem(probes), data[:4], data[4:], **args)
    with pytest.raises(ResumeMismatch, match="the valset differ"):
        gg.optimize(ProbedSystem(probes), data[:4], data[4:7], resume=True, **args)
    with pytest.raises(ResumeMismatch, match="nothing to resume"):
        gg.optimize(
            ProbedSystem(probes), data[:4], data[4:], resume=True, **{**args, "run_dir": tmp_path}
        )
    again = gg.optimize(ProbedSystem(probes), data[:4], data[4:], resume=True, **args)
    assert len(probes) == 1  # a finished run resumed returns its result: no probe either
    assert again.best_id == first.best_id
