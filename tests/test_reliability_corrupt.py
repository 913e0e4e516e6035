"""A damaged run folder is one line naming the file (and the journal line) on resume, before
anything runs; a torn last journal line (a kill mid-write) is dropped and the run resumes."""

import json

import pytest

import gepa_graph as gg
from gepa_graph.errors import CorruptRunDir


def _args(tmp_path, calls):
    def fn(prompts, example):
        calls.append("system")
        return prompts["m"]

    return dict(
        system=gg.FunctionSystem(modules={"m": "seed"}, fn=fn),
        trainset=[{"id": "a"}, {"id": "b"}, {"id": "c"}],
        metric=lambda example, prediction: 0.5,
        reflection_lm=lambda prompt: calls.append("lm") or "```\nchild\n```",
        max_rollouts=9,
        run_dir=tmp_path / "run",
        progress=False,
        config={"minibatch_size": 2, "use_merge": False, "parallel_proposals": 1},
    )


def _replace_line(path, number, new: bytes):
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = new
    path.write_bytes(b"\n".join(lines))


def _edit_result(line):
    record = json.loads(line)
    record["result"]["score"] = "very good"
    return json.dumps(record).encode()


JOURNAL = {
    "not JSON": (lambda line: b"{not json", "line 2 is not valid JSON"),
    "invalid UTF-8": (
        lambda line: b'{"type": "rollout", "x": "\xff\xfe"}',
        "line 2 is not valid JSON",
    ),
    "a JSON list": (
        lambda line: b"[1, 2]",
        "line 2 is not a valid record (ValueError: a JSON list",
    ),
    "a JSON string": (lambda line: b'"rollout"', "line 2 is not a valid record"),
    "missing field": (
        lambda line: b'{"type": "rollout", "candidate_id": "c"}',
        "line 2 is not a valid record (KeyError",
    ),
    "ids of the wrong type": (
        lambda line: b'{"type": "rollout", "candidate_id": 1, "example_key": 2, "result": {}}',
        "line 2 is not a valid record (ValueError: rollout ids must be strings",
    ),
    "result that fails validation": (_edit_result, "line 2 is not a valid record (ValidationError"),
    "unknown record type": (lambda line: b'{"type": "mystery"}', "unknown record type 'mystery'"),
    "reflection of the wrong shape": (
        lambda line: b'{"type": "reflection", "key": "k#0", "response": "text"}',
        "line 2 is not a valid record",
    ),
}


def _resume_after(tmp_path, damage):
    """Run, ``damage(run_dir)``, resume: the CorruptRunDir's text, checked to be one line
    raised before any call."""
    calls = []
    args = _args(tmp_path, calls)
    gg.optimize(args.pop("system"), args.pop("trainset"), **args)
    damage(tmp_path / "run")
    calls.clear()
    args = _args(tmp_path, calls)
    with pytest.raises(CorruptRunDir) as info:
        gg.optimize(args.pop("system"), args.pop("trainset"), resume=True, **args)
    assert calls == [] and isinstance(info.value, gg.GepaGraphError)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("case", sorted(JOURNAL))
def test_corrupt_journal_line_is_one_line_naming_file_and_line(case, tmp_path):
    change, message = JOURNAL[case]

    def damage(run_dir):
        journal = run_dir / "journal.jsonl"
        _replace_line(journal, 2, change(journal.read_bytes().split(b"\n")[1]))

    text = _resume_after(tmp_path, damage)
    assert "journal.jsonl" in text and message in text


STATE = {
    "not JSON": (b'{"format": 1, "iter', "is corrupt"),
    "empty file": (b"", "is corrupt"),
    "invalid UTF-8": (b'{"format": 1, "reflection_lm": "\xff"}', "is corrupt"),
    "a JSON list": (b"[]", "is corrupt"),
    "a field of the wrong type": (b'{"format": 1, "iteration": "many"}', "is corrupt"),
    "best_id not among the candidates": (
        b'{"format": 1, "best_id": "nope"}',
        "best_id 'nope' is not among its candidates",
    ),
    "another format": (b'{"format": 99}', "has format 99, expected 1"),
}


@pytest.mark.parametrize("case", sorted(STATE))
def test_corrupt_checkpoint_is_one_line_naming_the_file(case, tmp_path):
    content, message = STATE[case]
    text = _resume_after(tmp_path, lambda run_dir: (run_dir / "state.json").write_bytes(content))
    assert "state.json" in text and message in text
    with pytest.raises(CorruptRunDir):
        gg.load_result(tmp_path / "run")


def test_torn_last_journal_line_is_dropped_and_the_run_resumes(tmp_path):
    calls = []
    args = _args(tmp_path, calls)
    first = gg.optimize(args.pop("system"), args.pop("trainset"), **args)
    journal = tmp_path / "run" / "journal.jsonl"
    raw = journal.read_bytes()
    last_rollout = raw.rindex(b'{"type":"rollout"')
    journal.write_bytes(raw[: last_rollout + 40])  # a kill in the middle of that write
    state = tmp_path / "run" / "state.json"  # ... before the run could finish
    state.write_text(state.read_text().replace('"status": "finished"', '"status": "running"'))
    calls.clear()
    args = _args(tmp_path, calls)
    again = gg.optimize(args.pop("system"), args.pop("trainset"), resume=True, **args)
    assert again.best_id == first.best_id and again.rollouts_used == first.rollouts_used
    assert calls.count("system") == 1  # only the torn rollout ran again
