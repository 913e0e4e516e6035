"""gepa_graph.adapters: the one place a user's object becomes a System and prompts go back
into it, through the adapters the composition root registered (LangGraph's) or any other."""

import sys
import types
from dataclasses import dataclass, field

import pytest

from gepa_graph import adapters
from gepa_graph.config import ConfigError
from gepa_graph.errors import WrongType
from gepa_graph.records import CandidateRecord
from gepa_graph.result import Result
from gepa_graph.state import OptimizerState
from tests.contracts import echo


@dataclass
class Board:
    """A toy framework's object: prompts pinned on a board."""

    prompts: dict[str, str] = field(default_factory=lambda: dict(echo.SEEDS))


class BoardAdapter:
    kind = "a Board"

    def accepts(self, value):
        return isinstance(value, Board)

    def system(self, value):
        return adapters.as_system(echo.PlainEcho())

    def apply(self, target, prompts, seeds, store):
        target.prompts.update(prompts)
        return {name: "the board" for name in prompts}

    def export(self, target, directory, prompts, seeds):
        return {name: f"{directory}/{name}.txt" for name in prompts if target is None}

    def with_prompts(self, target, prompts):
        return Board({**target.prompts, **prompts})


@pytest.fixture
def board_only(monkeypatch):
    monkeypatch.setattr(adapters, "_ADAPTERS", [])
    adapters.register(BoardAdapter())
    adapters.register(adapters._ADAPTERS[0])  # registering twice keeps one
    assert len(adapters._ADAPTERS) == 1


def _result() -> Result:
    """A run whose best candidate changed the style."""

    def record(id, prompts, score):
        return CandidateRecord(
            id=id,
            prompts=prompts,
            val_scores={"a": score},
            mean_score=score,
            iteration=0,
            rollouts_at_discovery=1,
        )

    seed = record("s", echo.SEEDS, 0.0)
    best = record("b", {**echo.SEEDS, "style": "Be bold."}, 1.0)
    return OptimizerState(candidates=[seed, best], best_id="b").to_result(None)


def test_the_composition_root_registered_langgraph():
    assert [type(a).__name__ for a in adapters._ADAPTERS] == ["LangGraphAdapter"]


def test_a_registered_adapter_resolves_applies_exports_and_copies(board_only):
    board = Board()
    assert isinstance(adapters.as_system(board), adapters.BaseSystem)
    result = _result()
    assert result.apply(board) == {"instructions": "the board", "style": "the board"}
    assert board.prompts["style"] == "Be bold."
    assert result.export("out") == {
        "instructions": "out/instructions.txt",
        "style": "out/style.txt",
    }
    copy = adapters.with_prompts(board, {"style": "Be kind."})
    assert (copy.prompts["style"], board.prompts["style"]) == ("Be kind.", "Be bold.")


def test_objects_no_adapter_takes_fail_in_one_line_naming_what_would_do(board_only):
    with pytest.raises(WrongType, match=r"^cannot optimize a int: pass a Board, a gg.System"):
        adapters.as_system(3)
    with pytest.raises(WrongType, match=r"^cannot write prompts into a int: pass a Board, or"):
        _result().apply(3)
    with pytest.raises(WrongType, match="cannot find the prompt files of a int"):
        _result().export("out", 3)
    with pytest.raises(WrongType, match="cannot run a int with other prompts: pass a Board"):
        adapters.with_prompts(3, {})


def test_a_bare_system_with_a_hook_is_refused_not_silently_given_the_default():
    class Routed(echo.PlainEcho):
        def node_of(self, module):
            return "router"

    with pytest.raises(
        WrongType, match="Routed defines node_of but does not subclass gg.BaseSystem"
    ):
        adapters.as_system(Routed())


def test_an_import_path_names_a_system_a_framework_object_or_a_factory(board_only, monkeypatch):
    module = types.ModuleType("gg_adapters_probe")
    module.board = Board()
    module.make_board = Board
    module.broken = lambda: 1 / 0
    module.number = 7
    monkeypatch.setitem(sys.modules, "gg_adapters_probe", module)
    assert isinstance(adapters.system_from_path("gg_adapters_probe:board"), adapters.BaseSystem)
    assert isinstance(
        adapters.system_from_path("gg_adapters_probe:make_board"), adapters.BaseSystem
    )
    with pytest.raises(ConfigError, match="the system factory 'gg_adapters_probe:broken' raised"):
        adapters.system_from_path("gg_adapters_probe:broken")
    with pytest.raises(ConfigError, match="'gg_adapters_probe:number': cannot optimize a int"):
        adapters.system_from_path("gg_adapters_probe:number")
