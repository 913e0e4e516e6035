"""``SystemContract``: the tests every System must pass, whatever it wraps.

Subclass it in a ``test_*`` module as ``Test<Name>`` and define ``make_system`` (a system ready
to run the echo examples of ``tests.contracts.echo``: probed if it needs a probe) and, where
the system's output is not the echo's ``{"answer": ...}``, ``said``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

import gepa_graph as gg
from gepa_graph.system import BaseSystem, Rollout, Trace


class SystemContract:
    """Runs, returns a Rollout with its trace, runs the candidate's prompts (not the seed's,
    concurrent runs each their own), turns a raise into a failed Rollout (retryable when
    transient), and answers every hook of BaseSystem with its declared type."""

    def make_system(self) -> BaseSystem:
        """A fresh system under test."""
        raise NotImplementedError

    def example(self, question: str) -> Any:
        """An example the system runs."""
        return {"question": question}

    def said(self, rollout: Rollout) -> str:
        """The text the system answered."""
        return str(rollout.output["answer"])

    @pytest.fixture
    def system(self) -> BaseSystem:
        return self.make_system()

    def run(self, system: BaseSystem, prompts: Mapping[str, str], question: str) -> Rollout:
        return asyncio.run(system.arun(dict(prompts), self.example(question)))

    @staticmethod
    def rewrites(system: BaseSystem, tag: str) -> dict[str, str]:
        """Every module's prompt changed to a text naming ``tag``."""
        return {name: f"Reply as {tag} would ({name})." for name in system.modules()}

    def test_it_is_a_base_system_and_a_gg_system(self, system):
        assert isinstance(system, BaseSystem)
        assert isinstance(system, gg.System)

    def test_its_modules_are_named_str_prompts_and_a_copy(self, system):
        modules = system.modules()
        assert modules and all(
            isinstance(k, str) and isinstance(v, str) for k, v in modules.items()
        )
        modules.clear()
        assert system.modules()

    def test_the_seed_runs_into_a_rollout_with_its_trace(self, system):
        rollout = self.run(system, system.modules(), "what is two plus two")
        assert isinstance(rollout, Rollout) and rollout.error is None
        assert not rollout.retryable
        assert isinstance(rollout.trace, Trace) and rollout.trace.records
        said = self.said(rollout)
        assert "what is two plus two" in said
        assert all(text in said for text in system.modules().values())

    def test_it_runs_the_candidates_prompts_in_place_of_the_seeds(self, system):
        seeds = system.modules()
        rollout = self.run(system, self.rewrites(system, "a pirate"), "hello")
        said = self.said(rollout)
        assert all(text in said for text in self.rewrites(system, "a pirate").values())
        assert not any(text in said for text in seeds.values())

    def test_concurrent_runs_each_run_their_own_prompts(self, system):
        tags = ["a pirate", "a poet", "a judge", "a child"]

        async def all_at_once() -> list[Rollout]:
            runs = [system.arun(self.rewrites(system, tag), self.example(tag)) for tag in tags]
            return list(await asyncio.gather(*runs))

        for tag, rollout in zip(tags, asyncio.run(all_at_once()), strict=True):
            said = self.said(rollout)
            assert all(text in said for text in self.rewrites(system, tag).values())
            assert not [other for other in tags if other != tag and f"as {other} " in said]

    def test_a_raise_inside_is_a_failed_rollout_not_an_exception(self, system):
        rollout = self.run(system, system.modules(), "fail")
        assert rollout.error is not None and "the echo broke on purpose" in rollout.error
        assert "\n" not in rollout.error
        assert not rollout.retryable

    def test_a_transient_failure_is_a_retryable_rollout(self, system):
        rollout = self.run(system, system.modules(), "timeout")
        assert rollout.error is not None and "timed out on purpose" in rollout.error
        assert rollout.retryable

    def test_every_hook_answers_with_its_declared_type(self, system):
        modules = system.modules()
        assert all(
            system.node_of(name) is None or isinstance(system.node_of(name), str)
            for name in modules
        )
        assert system.needs_probe is False  # ready to run
        assert system.validate_example(self.example("hello")) is None
        assert system.check_names(list(modules)) is None
        system.use_modules(list(modules))
        assert system.modules() == modules
        with pytest.raises((KeyError, ValueError)):
            system.use_modules(["no-such-module"])
