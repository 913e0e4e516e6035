"""The interception layer on LiteLLM's path: ``completion`` and ``acompletion`` (a name bound
before the layer was installed included, ChatLiteLLM on top) rewritten once and recorded inside
a run, concurrent rollouts kept apart, untouched outside a run and while disabled."""

import asyncio

import litellm
import openai
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_litellm import ChatLiteLLM

from gepa_graph.integrations.langgraph import boundary, intercept
from gepa_graph.integrations.langgraph.tracing import TraceCollector
from tests.intercept_helpers import (
    NEW,
    PROVIDER,
    SEED,
    SEEDS,
    chat_messages,
    echo_system,
    one_node,
    registered_provider,
    rollout,
)


@pytest.fixture
def provider():
    with registered_provider() as recorder:
        yield recorder


def test_litellm_completion_in_a_node_is_rewritten_and_traced(provider):
    def work(question):
        response = litellm.completion(f"{PROVIDER}/m", chat_messages(question))  # positional
        return response.choices[0].message.content

    output, collector = rollout(one_node(work))
    assert output["answer"] == "planned"
    assert provider.received == [
        [{"role": "system", "content": NEW}, {"role": "user", "content": "q?"}]
    ]
    [call] = collector.calls
    assert (call.entry, call.node, call.modules) == ("litellm.completion", "plan", ("planner",))
    assert call.messages == (("system", NEW), ("human", "q?"))
    [record] = [r for r in collector.trace.records if r.kind == "llm"]
    assert record.node == "plan" and record.modules == ["planner"]
    assert record.inputs == {
        "messages": [{"role": "system", "content": NEW}, {"role": "user", "content": "q?"}]
    }
    assert record.outputs["message"]["content"] == "planned"
    assert (record.usage.prompt_tokens, record.usage.completion_tokens) == (7, 1)
    [step] = [r for r in collector.trace.records if r.kind == "node"]
    assert step.modules == ["planner"]  # the node step around the call is attributed too


def test_a_litellm_name_bound_before_the_layer_was_installed_is_reached(provider):
    """``from litellm import completion`` at the top of an agent module, imported before any
    LangGraphSystem existed: the function is patched in place, so that name is reached."""
    from gepa_graph.integrations.langgraph import intercept

    with intercept.disabled():
        from litellm import completion as bound_before  # the function as litellm made it
    _, collector = rollout(one_node(lambda q: bound_before(f"{PROVIDER}/m", chat_messages(q)).id))
    assert provider.received[0][0] == {"role": "system", "content": NEW}
    assert [c.entry for c in collector.calls] == ["litellm.completion"]


def test_disabled_puts_every_patched_method_back_until_it_ends(provider):
    from langchain_core.language_models import BaseChatModel

    from gepa_graph.integrations.langgraph import intercept

    completions = openai.resources.chat.completions.Completions
    intercept.install()
    patched = (litellm.completion.__code__, completions.create)
    with intercept.disabled():
        assert "batch" not in vars(BaseChatModel)  # inherited again
        assert litellm.completion.__code__ is not patched[0]
        assert completions.create is not patched[1]
        intercept.install()  # a no-op while disabled
        _, collector = rollout(one_node(lambda q: echo_system().invoke([SystemMessage(SEED)]).text))
        assert collector.calls[0].messages == (("system", SEED),)  # not rewritten
        assert "batch" not in vars(BaseChatModel)
    assert litellm.completion.__code__ is patched[0] and "batch" in vars(BaseChatModel)


def test_litellm_acompletion_is_rewritten_and_mock_responses_too(provider):
    async def work(question):
        await litellm.acompletion(model=f"{PROVIDER}/m", messages=chat_messages(question))
        mocked = await litellm.acompletion(
            model="gpt-4o-mini", messages=chat_messages(question), mock_response="ok"
        )
        return mocked.choices[0].message.content

    output, collector = rollout(one_node(work, is_async=True))
    assert output["answer"] == "ok"
    assert provider.received[0][0] == {"role": "system", "content": NEW}
    assert [c.entry for c in collector.calls] == ["litellm.completion"] * 2
    assert all(c.messages[0] == ("system", NEW) for c in collector.calls)


def test_chat_litellm_is_rewritten_once_and_recorded_once(provider):
    """ChatLiteLLM calls litellm.completion inside: the nested call passes through, so a
    candidate that contains its seed is not rewritten twice."""
    grown = SEED + " Then check them."
    model = ChatLiteLLM(model=f"{PROVIDER}/m")
    output, collector = rollout(
        one_node(lambda q: model.invoke([SystemMessage(SEED), HumanMessage(q)]).text),
        prompts={"planner": grown},
    )
    assert provider.received[0][0]["content"] == grown
    assert [c.entry for c in collector.calls] == ["langchain.chat"]


def test_concurrent_rollouts_keep_their_own_prompts_on_the_sdk_path(provider):
    """Sync nodes run in worker threads, async ones in tasks: each run's LiteLLM call gets its
    own candidate, and each collector records only its own run's call."""
    intercept.install()
    sync_graph = one_node(lambda q: litellm.completion(f"{PROVIDER}/m", chat_messages(q)).id)

    async def work(question):
        reply = await litellm.acompletion(model=f"{PROVIDER}/m", messages=chat_messages(question))
        return reply.id

    async_graph = one_node(work, is_async=True)

    async def one(graph, n):
        substitution = boundary.Substitution(SEEDS, {"planner": f"Variant {n}."})
        collector = TraceCollector(substitution)
        config = {"callbacks": [collector], "configurable": {boundary.CONFIG_KEY: substitution}}
        await graph.ainvoke({"question": f"q{n}"}, config)
        return collector

    async def many():
        return await asyncio.gather(
            *[one(sync_graph if n % 2 else async_graph, n) for n in range(16)]
        )

    collectors = asyncio.run(many())
    pairs = sorted((m[1]["content"], m[0]["content"]) for m in provider.received)
    assert pairs == sorted((f"q{n}", f"Variant {n}.") for n in range(16))
    for n, collector in enumerate(collectors):
        assert [c.messages for c in collector.calls] == [
            (("system", f"Variant {n}."), ("human", f"q{n}"))
        ]


def test_a_litellm_call_outside_a_run_is_untouched(provider):
    intercept.install()
    litellm.completion(model=f"{PROVIDER}/m", messages=chat_messages("q"))
    assert provider.received[0][0]["content"] == SEED
