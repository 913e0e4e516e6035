"""Every System passes ``SystemContract``: FunctionSystem, LangGraphSystem, and a bare
``gg.System`` given the BaseSystem defaults by ``as_system``."""

from gepa_graph.adapters import as_system
from gepa_graph.integrations.langgraph import LangGraphSystem
from gepa_graph.system import BaseSystem
from tests.contracts import echo
from tests.contracts.system_contract import SystemContract


class TestFunctionSystem(SystemContract):
    def make_system(self) -> BaseSystem:
        return echo.function_system()


class TestLangGraphSystem(SystemContract):
    def make_system(self) -> BaseSystem:
        system = LangGraphSystem(echo.graph())
        system.probe([self.example("what is a probe")])  # what reaches the model decides
        return system


class TestABareSystemWithTheDefaults(SystemContract):
    def make_system(self) -> BaseSystem:
        return as_system(echo.PlainEcho())
