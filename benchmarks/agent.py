"""The LangGraph agent used by the wall-clock and overhead benchmarks.

A ``create_agent`` graph (one prompt: its system prompt, module ``model``) over a chat model
that plays the rule-family student (rule_family.py): it reads the rules from the system
message and the example's types from the user message, then answers. ``SleepyChatModel``
waits a fixed latency per call (``asyncio.sleep`` in ``_agenerate``, ``time.sleep`` in
``_generate``), like a remote LLM whose latency dominates; latency 0 is an instant model.

Both optimizers run the same graph: gepa_graph optimizes the compiled graph directly (it finds
the system prompt itself); gepa 0.1.4 uses its own ``LangChainAdapter`` with a ``rollout_fn``
that builds the agent with the candidate's system prompt and invokes it, as gepa's LangChain
examples do (compiled graphs are cached per prompt, so gepa does not pay for compiling).
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from benchmarks.rule_family import RuleTask, RuleTaskSpec

MODULE = "model"  # the name gepa_graph gives create_agent's system prompt
SPEC = RuleTaskSpec(
    name="agent", n_types=8, modules=(MODULE,), max_rules=5, n_train=30, n_val=30, n_test=0
)
_TYPES = re.compile(r"types \[([\d, ]+)\]")


def make_task(seed: int = 0) -> RuleTask:
    task = RuleTask(SPEC, data_seed=seed)
    for example in task.train + task.val:
        example["question"] = f"{example['id']}: answer the question of types {example['types']}"
    return task


class SleepyChatModel(BaseChatModel):
    """Answers as the rule student after sleeping ``latency`` seconds per call."""

    latency: float = 0.0
    spec_rules: int | None = SPEC.max_rules

    @property
    def _llm_type(self) -> str:
        return "sleepy-scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:  # create_agent binds [] tools
        return self

    def _reply(self, messages: list[BaseMessage]) -> ChatResult:
        system = next((m.text for m in messages if m.type == "system"), "")
        question = next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")
        match = _TYPES.search(question)
        types = [int(t) for t in match.group(1).split(",")] if match else []
        known = _TASK.honoured(system)
        answer = " ".join(f"answer-{k}" if k in known else "guess" for k in types)
        message = AIMessage(content=answer or "guess")
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        if self.latency:
            time.sleep(self.latency)
        return self._reply(messages)

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        return self._reply(messages)


_TASK = RuleTask(SPEC)  # only its rule parser is used by the model


def build_agent(system_prompt: str, latency: float) -> Any:
    from langchain.agents import create_agent

    return create_agent(SleepyChatModel(latency=latency), [], system_prompt=system_prompt)


@functools.lru_cache(maxsize=256)
def cached_agent(system_prompt: str, latency: float) -> Any:
    return build_agent(system_prompt, latency)


def final_text(state: Any) -> str:
    messages = state.get("messages") if isinstance(state, dict) else None
    return messages[-1].text if messages else ""


def gg_metric(task: RuleTask):
    def metric(example: Any, prediction: Any) -> Any:
        return task.score(example, final_text(prediction))

    return metric


def gepa_adapter(task: RuleTask, latency: float, threads: int) -> Any:
    """gepa 0.1.4's own LangChainAdapter over the same agent, metric and feedback text."""
    from gepa.adapters.langchain_adapter import LangChainAdapter

    def rollout_fn(candidate: dict[str, str], example: Any) -> dict[str, Any]:
        agent = cached_agent(candidate[MODULE], latency)
        return agent.invoke({"messages": [HumanMessage(content=example["question"])]})

    def eval_fn(example: Any, state: dict[str, Any]) -> tuple[float, str]:
        if state.get("error") is not None:
            return 0.0, f"the agent failed: {state['error']}"
        score = task.score(example, final_text(state))
        return score.value, score.feedback_for(MODULE)

    return LangChainAdapter(rollout_fn, eval_fn, num_threads=threads, show_progress=False)
