"""A run killed with SIGKILL and resumed ends exactly where an uninterrupted run ends, without
re-running a finished rollout or re-asking a paid reflection."""

import json
import random
import subprocess
import sys
import textwrap

import pytest

import gepa_graph as gg
from gepa_graph.errors import CorruptRunDir

SCRIPT = textwrap.dedent("""
    import json, os, signal, sys, threading
    import gepa_graph as gg
    from gepa_graph.testing.rules import RuleTask

    run_dir, resume = sys.argv[1], sys.argv[2] == "1"
    kill_at_run, kill_at_reflection, kill_at_checkpoint, file_size_limit, parallel = map(
        int, sys.argv[3:8]
    )
    task = RuleTask(n_types=8, modules=("a", "b"))
    runs, lock = [], threading.Lock()

    def answer(prompts, example, trace):
        with lock:
            # dict.items unbound: the id without noting a read, so the run reuses rollouts
            runs.append([gg.Candidate(prompts=dict(dict.items(prompts))).id, example.key])
            if len(runs) == kill_at_run:
                os.kill(os.getpid(), signal.SIGKILL)
        return task.answer(prompts, example, trace)

    reflect = task.reflection_lm()
    def reflection_lm(prompt):
        if len(reflect.calls) + 1 == kill_at_reflection:
            os.kill(os.getpid(), signal.SIGKILL)
        return reflect(prompt)

    real_replace, renames = os.replace, []
    def replace(src, dst):  # the checkpoint's rename: die with the new state written but not renamed
        renames.append(dst)
        if len(renames) == kill_at_checkpoint:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)
    os.replace = replace

    if file_size_limit:  # a disk that fills: writes past this many bytes fail (EFBIG)
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
    try:
        result = gg.optimize(
            gg.FunctionSystem(modules=task.seed_prompts(), fn=answer),
            task.examples(16, seed=1, prefix="t"), task.examples(10, seed=2, prefix="v"),
            metric=task.metric, reflection_lm=reflection_lm, max_rollouts=160,
            config=gg.OptimizeConfig(seed=4, concurrency=4, parallel_proposals=parallel),
            run_dir=run_dir, resume=resume, progress=False,
        )
    except gg.GepaGraphError as exc:
        print(f"{type(exc).__name__}: {exc}")
        sys.exit(3)
    print(json.dumps({"best": result.best_id, "score": result.best_score,
                      "rollouts": result.rollouts_used, "ids": [c.id for c in result.candidates],
                      "runs": runs, "reflections": len(reflect.calls)}))
""")


def _run(
    tmp_path,
    run_dir,
    resume=False,
    kill_at_run=0,
    kill_at_reflection=0,
    kill_at_checkpoint=0,
    file_size_limit=0,
    parallel=1,
):
    script = tmp_path / "opt.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            str(run_dir),
            "1" if resume else "0",
            str(kill_at_run),
            str(kill_at_reflection),
            str(kill_at_checkpoint),
            str(file_size_limit),
            str(parallel),
        ],
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard: the run takes seconds, more on a loaded machine
    )
    return proc


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("base")
    proc = _run(tmp, tmp / "run")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# Kill points drawn at random (seeded, so a failure can be rerun) over the run's 146 rollouts.
RANDOM_KILLS = [{"kill_at_run": n} for n in random.Random(21).sample(range(2, 150), 3)]


@pytest.mark.parametrize(
    "kill",
    [
        {"kill_at_run": 5},  # during the seed's validation
        {"kill_at_run": 47},  # during a later minibatch or validation
        {"kill_at_reflection": 3},  # during a reflection call
        {"kill_at_checkpoint": 3},  # while writing the checkpoint
        *RANDOM_KILLS,
        # The disk fills: a journal (or checkpoint) write fails, the run stops in one line.
        {"file_size_limit": 40_000},
    ],
)
def test_killed_run_resumes_to_the_same_result(tmp_path, uninterrupted, kill):
    run_dir = tmp_path / "run"
    killed = _run(tmp_path, run_dir, **kill)
    if "file_size_limit" in kill:
        assert killed.returncode == 3, killed.stderr
        (line,) = killed.stdout.splitlines()
        assert "cannot write the " in line and "resume" in line, line
        assert (run_dir / "journal.jsonl").stat().st_size <= kill["file_size_limit"]
    else:
        assert killed.returncode == -9, killed.stderr
    journal = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    done = {(r["candidate_id"], r["example_key"]) for r in journal if r["type"] == "rollout"}
    assert done, "the killed run journaled nothing"
    if "kill_at_checkpoint" in kill:
        # Killed between writing the new checkpoint and renaming it: the old one is whole.
        assert list(run_dir.glob(".state-*.json")), "the kill did not hit the checkpoint write"
        before = gg.load_result(run_dir)
        assert 0 < len(before.candidates) < len(uninterrupted["ids"])

    resumed = _run(tmp_path, run_dir, resume=True)
    assert resumed.returncode == 0, resumed.stderr
    out = json.loads(resumed.stdout)
    assert (out["best"], out["score"], out["ids"], out["rollouts"]) == (
        uninterrupted["best"],
        uninterrupted["score"],
        uninterrupted["ids"],
        uninterrupted["rollouts"],
    )
    rerun = done & {tuple(pair) for pair in out["runs"]}
    assert not rerun, f"finished rollouts were run again: {sorted(rerun)[:3]}"
    # Work before the kill + work after = the uninterrupted run's work.
    assert len(done) + len(out["runs"]) == len(uninterrupted["runs"])
    assert out["reflections"] < uninterrupted["reflections"] or kill.get("kill_at_run") == 5


def test_resuming_a_finished_run_reruns_nothing(tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    assert _run(tmp_path, run_dir).returncode == 0
    again = json.loads(_run(tmp_path, run_dir, resume=True).stdout)
    assert again["runs"] == [] and again["reflections"] == 0
    assert again["best"] == uninterrupted["best"]
    assert gg.load_result(run_dir).best_id == uninterrupted["best"]


def test_existing_run_dir_needs_resume_and_corruption_is_a_clear_error(tmp_path):
    from gepa_graph.testing.rules import RuleTask

    task = RuleTask(n_types=3)
    args = dict(
        metric=task.metric,
        reflection_lm=task.reflection_lm(),
        max_rollouts=30,
        run_dir=tmp_path / "r",
        progress=False,
    )
    data = task.examples(6, seed=1)
    gg.optimize(task.system(), data, **args)
    with pytest.raises(FileExistsError, match="resume=True"):
        gg.optimize(task.system(), data, **args)
    (tmp_path / "r" / "state.json").write_text('{"format": 1, "iteration": "x"')
    with pytest.raises(CorruptRunDir, match="state.json is corrupt"):
        gg.optimize(task.system(), data, resume=True, **args)


def test_torn_last_journal_line_is_dropped_but_damage_elsewhere_is_an_error(tmp_path):
    from gepa_graph.journal import Journal

    path = tmp_path / "journal.jsonl"
    good = json.dumps({"type": "reflection", "key": "k#0", "response": {"text": "x"}})
    path.write_text(good + "\n" + good[:20])
    _, reflections = Journal(path).load()
    assert list(reflections) == ["k#0"]
    assert path.read_text() == good + "\n"  # the torn tail is cut so appends stay clean
    path.write_text("garbage\n" + good + "\n")
    with pytest.raises(CorruptRunDir, match="line 1"):
        Journal(path).load()


@pytest.mark.parametrize("kill_at_run", [30, 90])
def test_with_proposals_in_flight_a_resume_pays_nothing_journaled_again(tmp_path, kill_at_run):
    # Proposals in flight together: which ends first depends on timing, so the resumed run
    # may take another path once the journal is replayed, but never pays twice.
    run_dir = tmp_path / "run"
    killed = _run(tmp_path, run_dir, kill_at_run=kill_at_run, parallel=3)
    assert killed.returncode == -9, killed.stderr
    lines = (run_dir / "journal.jsonl").read_text().splitlines()
    journal = [json.loads(line) for line in lines]  # a prefix: every line whole
    done = {(r["candidate_id"], r["example_key"]) for r in journal if r["type"] == "rollout"}
    resumed = _run(tmp_path, run_dir, resume=True, parallel=3)
    assert resumed.returncode == 0, resumed.stderr
    rerun = done & {tuple(pair) for pair in json.loads(resumed.stdout)["runs"]}
    assert not rerun, f"journaled rollouts were run again: {sorted(rerun)[:3]}"
