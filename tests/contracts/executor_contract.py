"""``ExecutorContract``: the tests every Executor must pass.

Subclass it in a ``test_*`` module as ``Test<Name>`` and define the ``executor`` fixture (a
fresh executor, closed after the test). Rollouts run the echo FunctionSystem of
``tests.contracts.echo``, which Ray workers import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import gepa_graph as gg
from gepa_graph.executor import Executor
from gepa_graph.system import Rollout
from tests.contracts import echo


class ExecutorContract:
    """Carries a rollout to where it runs and its Rollout back unchanged, with the prompts it
    was given (concurrent runs too); a failing rollout comes back as a failed Rollout (retryable
    when transient), never as an exception; ``close`` may be called twice."""

    @pytest.fixture
    def executor(self) -> Iterator[Executor]:
        raise NotImplementedError

    @pytest.fixture
    def system(self, executor: Executor) -> gg.FunctionSystem:
        system = echo.function_system()
        executor.prepare(system)
        return system

    @staticmethod
    def run(executor: Executor, system: Any, prompts: dict[str, str], question: str) -> Rollout:
        return asyncio.run(executor.run(system, prompts, {"question": question}))

    def test_it_is_an_executor(self, executor):
        assert isinstance(executor, gg.Executor)

    def test_a_rollout_comes_back_as_the_system_returns_it(self, executor, system):
        prompts = {"instructions": "Count to three.", "style": "Shout."}
        here = asyncio.run(system.arun(prompts, {"question": "go"}))
        there = self.run(executor, system, prompts, "go")
        assert there.error is None and there.output == here.output
        assert there.output == {"answer": "Count to three. | Shout. | go"}
        assert [r.outputs for r in there.trace.records] == [r.outputs for r in here.trace.records]

    def test_concurrent_rollouts_each_run_their_own_prompts(self, executor, system):
        tags = ["one", "two", "three", "four"]

        async def all_at_once() -> list[Rollout]:
            runs = [
                executor.run(system, {"instructions": tag, "style": tag}, {"question": tag})
                for tag in tags
            ]
            return list(await asyncio.gather(*runs))

        answers = [rollout.output["answer"] for rollout in asyncio.run(all_at_once())]
        assert answers == [f"{tag} | {tag} | {tag}" for tag in tags]

    def test_a_failing_rollout_comes_back_failed_not_raised(self, executor, system):
        rollout = self.run(executor, system, echo.SEEDS, "fail")
        assert rollout.error is not None and "the echo broke on purpose" in rollout.error
        assert not rollout.retryable

    def test_a_transient_failure_comes_back_retryable(self, executor, system):
        rollout = self.run(executor, system, echo.SEEDS, "timeout")
        assert rollout.error is not None and rollout.retryable

    def test_close_may_be_called_twice(self, executor, system):
        assert self.run(executor, system, echo.SEEDS, "hi").error is None
        executor.close()
        executor.close()
