"""The interception layer: every path to a model is rewritten and recorded inside a run, and
left alone outside one (LangChain entry points, LiteLLM, the OpenAI SDK's two APIs)."""

import asyncio
import concurrent.futures
import http.server
import json
import threading
from typing import TypedDict

import litellm
import openai
import pytest
from langchain_core.language_models import FakeListLLM
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_litellm import ChatLiteLLM
from langgraph.graph import START, StateGraph

from gepa_graph import Example
from gepa_graph.integrations.langgraph import LangGraphSystem, boundary
from gepa_graph.integrations.langgraph.tracing import TraceCollector
from gepa_graph.testing.chat_model import ScriptedChatModel

SEED = "You are a careful planner. Plan the steps for the task."
NEW = "You are a bold planner. Plan at most two steps."
SEEDS = {"planner": boundary.PromptSpec(SEED)}


class State(TypedDict, total=False):
    question: str
    answer: str


def one_node(work, is_async=False):
    builder = StateGraph(State)
    if is_async:

        async def node(state):
            return {"answer": await work(state["question"])}
    else:

        def node(state):
            return {"answer": work(state["question"])}

    builder.add_node("plan", node)
    builder.add_edge(START, "plan")
    return builder.compile()


def rollout(graph, prompts=None, question="q?"):
    """Run ``graph`` as a rollout does: a Substitution and a TraceCollector in its config."""
    boundary.install()
    substitution = boundary.Substitution(
        SEEDS, prompts if prompts is not None else {"planner": NEW}
    )
    collector = TraceCollector(substitution)
    config = {"callbacks": [collector], "configurable": {boundary.CONFIG_KEY: substitution}}
    output = asyncio.run(graph.ainvoke({"question": question}, config))
    return output, collector


def echo_system():
    return ScriptedChatModel(script=lambda ms: ms[0].text)


# ----------------------------------------------------------------------------- LangChain


@pytest.mark.parametrize(
    "call",
    [
        lambda m, q: m.invoke([SystemMessage(SEED), HumanMessage(q)]).text,
        lambda m, q: m.batch([[SystemMessage(SEED), HumanMessage(q)]])[0].text,
        lambda m, q: "".join(c.text for c in m.stream([SystemMessage(SEED), HumanMessage(q)])),
        lambda m, q: m.generate([[SystemMessage(SEED), HumanMessage(q)]]).generations[0][0].text,
        lambda m, q: m.bind_tools([]).invoke([SystemMessage(SEED), HumanMessage(q)]).text,
    ],
    ids=["invoke", "batch", "stream", "generate", "bound"],
)
def test_every_chat_model_entry_point_is_rewritten_once_and_recorded(call):
    model = echo_system()
    output, collector = rollout(one_node(lambda q: call(model, q)))
    assert output["answer"] == NEW
    assert [m[0].text for m in model.calls] == [NEW]
    [observed] = collector.calls
    assert observed.entry == "langchain.chat" and observed.modules == ("planner",)
    assert observed.messages[0] == ("system", NEW) and observed.node == "plan"


@pytest.mark.parametrize(
    "call",
    [
        lambda m, q: m.ainvoke([SystemMessage(SEED), HumanMessage(q)]),
        lambda m, q: m.abatch([[SystemMessage(SEED), HumanMessage(q)]]),
        lambda m, q: m.agenerate([[SystemMessage(SEED), HumanMessage(q)]]),
    ],
    ids=["ainvoke", "abatch", "agenerate"],
)
def test_async_chat_model_entry_points_are_rewritten(call):
    model = echo_system()

    async def work(question):
        await call(model, question)
        return "done"

    rollout(one_node(work, is_async=True))
    assert [m[0].text for m in model.calls] == [NEW]


class RecordingLLM(FakeListLLM):
    """A LangChain LLM (not a chat model) that keeps the prompts it received."""

    def _call(self, prompt, stop=None, run_manager=None, **kwargs):
        PROMPTS_SEEN.append(prompt)
        return super()._call(prompt, stop, run_manager, **kwargs)


PROMPTS_SEEN = []


def test_an_llm_generate_call_with_several_prompts_is_rewritten_for_each():
    """A tree-search agent's ``llm.generate([...])``: every prompt runs the candidate."""
    PROMPTS_SEEN.clear()
    llm = RecordingLLM(responses=["a", "b", "c"])
    output, collector = rollout(
        one_node(lambda q: llm.generate([f"{SEED}\nTask: {q}"] * 3).generations[2][0].text)
    )
    assert output["answer"] == "c"
    assert PROMPTS_SEEN == [f"{NEW}\nTask: q?"] * 3
    assert [c.entry for c in collector.calls] == ["langchain.llm"] * 3
    assert [c.site for c in collector.calls] == [
        f"plan|langchain.llm|RecordingLLM|{n}" for n in range(3)
    ]


def test_outside_a_run_nothing_is_rewritten():
    boundary.install()
    model = echo_system()
    assert model.invoke([SystemMessage(SEED)]).text == SEED
    assert model.generate([[SystemMessage(SEED)]]).generations[0][0].text == SEED


def pool_map(model, q):
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        calls = [[SystemMessage(SEED), HumanMessage(q)]] * 2
        return "".join(r.text for r in pool.map(model.invoke, calls))


def plain_thread(model, q):
    answers = []
    thread = threading.Thread(
        target=lambda: answers.append(model.invoke([SystemMessage(SEED), HumanMessage(q)]).text)
    )
    thread.start()
    thread.join()
    return answers[0]


@pytest.mark.parametrize("call", [pool_map, plain_thread], ids=["pool", "thread"])
def test_calls_from_threads_a_node_starts_are_rewritten_and_recorded(call):
    model = echo_system()
    output, collector = rollout(one_node(lambda q: call(model, q)))
    assert NEW in output["answer"] and SEED not in output["answer"]
    assert {m[0].text for m in model.calls} == {NEW}
    assert collector.calls and all(c.node == "plan" for c in collector.calls)
    assert all(c.modules == ("planner",) for c in collector.calls)


def test_a_pool_first_used_in_a_run_keeps_no_run_in_its_threads():
    """Its workers start inside the rollout's first submission, yet later work submitted
    outside any run is left alone; executor work from an async node is rewritten too."""
    model = echo_system()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)

    async def work(q):
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(
            pool, model.invoke, [SystemMessage(SEED), HumanMessage(q)]
        )
        return reply.text

    with pool:
        output, _ = rollout(one_node(work, is_async=True))
        assert output["answer"] == NEW
        later = pool.submit(model.invoke, [SystemMessage(SEED)]).result()
    assert later.text == SEED


# ----------------------------------------------------------------------------- LiteLLM

PROVIDER = "gg-intercept-test"


class Recorder(litellm.CustomLLM):
    """A LiteLLM provider answering in-process and keeping the messages it received."""

    def __init__(self):
        super().__init__()
        self.received = []

    def completion(self, model, messages, *args, **kwargs):
        self.received.append([dict(m) for m in messages])
        return litellm.ModelResponse(
            model=model,
            choices=[{"index": 0, "message": {"role": "assistant", "content": "planned"}}],
            usage={"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
        )

    async def acompletion(self, model, messages, *args, **kwargs):
        return self.completion(model, messages, *args, **kwargs)


@pytest.fixture
def provider():
    recorder = Recorder()
    before = list(litellm.custom_provider_map)
    litellm.custom_provider_map = [
        *(p for p in before if p.get("provider") != PROVIDER),
        {"provider": PROVIDER, "custom_handler": recorder},
    ]
    litellm.utils.custom_llm_setup()
    yield recorder
    litellm.custom_provider_map = before
    litellm.utils.custom_llm_setup()


def chat_messages(question):
    return [{"role": "system", "content": SEED}, {"role": "user", "content": question}]


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
    boundary.install()
    patched = (litellm.completion.__code__, completions.create)
    with intercept.disabled():
        assert "batch" not in vars(BaseChatModel)  # inherited again
        assert litellm.completion.__code__ is not patched[0]
        assert completions.create is not patched[1]
        boundary.install()  # a no-op while disabled
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
    boundary.install()
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
    boundary.install()
    litellm.completion(model=f"{PROVIDER}/m", messages=chat_messages("q"))
    assert provider.received[0][0]["content"] == SEED


# ----------------------------------------------------------------------------- OpenAI SDK


class _Handler(http.server.BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append((self.path, body))
        if self.path.endswith("/chat/completions"):
            reply = {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {
                            "role": "assistant",
                            "content": '{"answer": "parsed"}'
                            if "response_format" in body
                            else "from chat",
                        },
                    }
                ],
                "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
            }
        else:
            reply = {
                "id": "r1",
                "object": "response",
                "created_at": 0,
                "model": body["model"],
                "status": "completed",
                "output": [
                    {
                        "type": "message",
                        "id": "m1",
                        "role": "assistant",
                        "status": "completed",
                        "content": [
                            {"type": "output_text", "text": "from responses", "annotations": []}
                        ],
                    }
                ],
                "parallel_tool_calls": False,
                "tool_choice": "auto",
                "tools": [],
                "usage": {
                    "input_tokens": 5,
                    "output_tokens": 3,
                    "total_tokens": 8,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens_details": {"reasoning_tokens": 0},
                },
            }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.bodies = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", _Handler.bodies
    httpd.shutdown()
    httpd.server_close()


def test_openai_chat_completions_and_responses_are_rewritten_and_traced(server):
    base_url, bodies = server
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)

    def work(question):
        chat = client.chat.completions.create(model="gpt-4o-mini", messages=chat_messages(question))
        response = client.responses.create(model="gpt-4o-mini", instructions=SEED, input=question)
        return chat.choices[0].message.content + " / " + response.output_text

    output, collector = rollout(one_node(work))
    assert output["answer"] == "from chat / from responses"
    (chat_path, chat_body), (responses_path, responses_body) = bodies
    assert chat_path.endswith("/chat/completions") and responses_path.endswith("/responses")
    assert chat_body["messages"][0] == {"role": "system", "content": NEW}
    assert responses_body["instructions"] == NEW and responses_body["input"] == "q?"
    assert [(c.entry, c.messages, c.modules) for c in collector.calls] == [
        ("openai.chat.completions", (("system", NEW), ("human", "q?")), ("planner",)),
        ("openai.responses", (("system", NEW), ("human", "q?")), ("planner",)),
    ]
    chat, responses = [r for r in collector.trace.records if r.kind == "llm"]
    assert chat.outputs["message"]["content"] == "from chat"
    assert responses.outputs["message"]["content"] == "from responses"
    assert (responses.usage.prompt_tokens, responses.usage.completion_tokens) == (5, 3)
    assert chat.usage.cost_usd is not None  # gpt-4o-mini has a price


def test_openai_parse_is_rewritten_once(server):
    from pydantic import BaseModel

    class Answer(BaseModel):
        answer: str

    base_url, bodies = server
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)

    def work(question):
        parsed = client.chat.completions.parse(
            model="m", messages=chat_messages(question), response_format=Answer
        )
        return parsed.choices[0].message.parsed.answer

    output, collector = rollout(one_node(work))
    assert output["answer"] == "parsed"
    assert [b["messages"][0]["content"] for _, b in bodies] == [NEW]
    assert [c.entry for c in collector.calls] == ["openai.chat.completions"]


def test_the_async_openai_client_is_rewritten(server):
    base_url, bodies = server
    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)

    async def work(question):
        await client.chat.completions.create(model="m", messages=chat_messages(question))
        await client.responses.create(
            model="m",
            input=[{"role": "developer", "content": SEED}, {"role": "user", "content": question}],
        )
        return "done"

    _, collector = rollout(one_node(work, is_async=True))
    assert bodies[0][1]["messages"][0]["content"] == NEW
    assert bodies[1][1]["input"][0] == {"role": "developer", "content": NEW}
    assert [c.messages[0] for c in collector.calls] == [("system", NEW)] * 2


def test_a_langgraph_system_rollout_rewrites_a_generate_call():
    """End to end through LangGraphSystem: the probe confirms the prompt that reaches the
    model through ``generate``, and a rollout sends the candidate's text there."""
    model = echo_system()

    def plan(state):
        result = model.generate([[SystemMessage(SEED), HumanMessage(state["question"])]])
        return {"answer": result.generations[0][0].text}

    builder = StateGraph(State)
    builder.add_node("plan", plan)
    builder.add_edge(START, "plan")
    system = LangGraphSystem(builder.compile())
    report = system.probe(Example(question="q?"))  # the probe sees the generate call too
    assert report.confirmed == ["plan"] and report.reached == {"plan": ["plan"]}
    [name] = system.modules()
    result = asyncio.run(system.arun({name: NEW}, Example(question="q?")))
    assert result.error is None and result.output["answer"] == NEW


# ----------------------------------------------------------------------------- the audit


def observed(*messages, entry="litellm.completion", node="plan"):
    from gepa_graph.integrations.langgraph.model_calls import ObservedCall

    return ObservedCall(node=node, entry=entry, messages=tuple(messages))


def test_leaks_are_calls_that_still_carry_a_changed_seed_and_nothing_else():
    substitution = boundary.Substitution(SEEDS, {"planner": NEW})
    leaked = observed(("system", SEED), ("human", "q"))
    assert substitution.leaks([leaked]) == [(leaked, "planner")]
    assert substitution.leaks([observed(("system", NEW))]) == []
    assert substitution.leaks([observed(("ai", SEED)), observed(("tool", SEED))]) == []
    grown = boundary.Substitution(SEEDS, {"planner": SEED + " Then check."})
    assert grown.leaks([observed(("system", SEED + " Then check."))]) == []  # its own text
    assert boundary.Substitution(SEEDS, {}).leaks([leaked]) == []  # the seed run changes nothing
    with pytest.raises(boundary.SubstitutionLeak, match=r"litellm.completion in node 'plan'"):
        substitution.audit([observed(("system", NEW)), leaked])


def test_a_seed_inside_another_modules_template_is_no_leak():
    seeds = {
        "planner": boundary.PromptSpec(SEED),
        "replanner": boundary.PromptSpec(SEED + " Revise the plan {plan}."),
    }
    substitution = boundary.Substitution(seeds, {"planner": NEW})
    assert substitution.leaks([observed(("system", SEED + " Revise the plan 1. look."))]) == []


def leaky_graph():
    """A node whose LiteLLM call passes arguments positionally beyond model and messages:
    recorded, but not rewritten."""

    def work(question):
        messages = [{"role": "system", "content": SEED}, {"role": "user", "content": question}]
        reply = litellm.completion(f"{PROVIDER}/m", messages, None)  # timeout=None, positional
        return reply.choices[0].message.content

    return one_node(work)


def test_a_rollout_that_did_not_run_its_candidate_stops_with_the_call_path(provider):
    system = LangGraphSystem(leaky_graph())
    system.probe(Example(question="q?"))  # the recorded call confirms the prompt
    [name] = [n for n, text in system.modules().items() if text == SEED]
    with pytest.raises(boundary.SubstitutionLeak) as info:
        asyncio.run(system.arun({name: NEW}, Example(question="q?")))
    assert "litellm.completion in node 'plan'" in str(info.value) and f"{name!r}" in str(info.value)
    assert "\n" not in str(info.value)
    seed = asyncio.run(system.arun({}, Example(question="q?")))  # the seed itself runs fine
    assert seed.error is None and seed.output["answer"] == "planned"


def test_a_leak_stops_optimize_instead_of_being_scored(provider, tmp_path):
    import gepa_graph as gg
    from gepa_graph.testing.reflection import ScriptedReflectionLM

    examples = [Example(id=str(n), question=f"q{n}") for n in range(4)]
    with pytest.raises(boundary.SubstitutionLeak, match="litellm.completion"):
        gg.optimize(
            LangGraphSystem(leaky_graph()),
            examples[:2],
            examples[2:],
            metric=lambda example, output: 0.0,
            reflection_lm=ScriptedReflectionLM(lambda current, _: NEW),
            max_rollouts=20,
            run_dir=tmp_path / "run",
            progress=False,
        )
