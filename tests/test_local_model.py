"""The embedded local model's plumbing, offline: backend choice and settings, the LiteLLM
provider over a fake backend (sampling defaults, serial or parallel calls, async), JSON
tool-call parsing, ChatLiteLLM on top. The model file is ``test_local_model_file``'s; the
real model's tests (``test_local_model_real``) are marked ``local_model``."""

import asyncio
import json
import threading
import time

import pytest

from gepa_graph import local as lm
from gepa_graph.local import backends
from gepa_graph.local.tool_calls import parse_tool_calls


class FakeBackend:
    """Stands in for a loaded runtime: records requests, replies from ``reply(request) -> str``."""

    def __init__(self, reply=lambda request: "2024-04-03", delay=0.0, slots=1):
        self.reply = reply
        self.delay = delay
        self.slots = slots
        self.calls = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def chat(self, request):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.calls.append(request)
        time.sleep(self.delay)
        with self._lock:
            self.active -= 1
        return {
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": self.reply(request)},
                }
            ],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
        }

    def close(self):
        pass


def _install(fake):
    loads = []

    def factory(path):
        loads.append(path)
        return fake

    fake.loads = loads
    old = lm.set_engine(lm.LocalEngine(factory=factory, path=lambda: "fake.gguf"))
    lm.register()
    return old


@pytest.fixture
def fake_engine():
    fake = FakeBackend()
    old = _install(fake)
    yield fake
    lm.set_engine(old)


# --- tool calls written as text -----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>',
        'Sure.\n```json\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n```',
        '{"name": "add", "arguments": "{\\"a\\": 1, \\"b\\": 2}"}',
        '{"type": "function", "function": {"name": "add", "parameters": {"a": 1, "b": 2}}}',
        '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}',  # never closed
    ],
)
def test_parse_tool_calls_forms(text):
    assert parse_tool_calls(text, {"add"}) == [{"name": "add", "arguments": {"a": 1, "b": 2}}]


def test_parse_tool_calls_several_unknown_and_none():
    text = (
        '<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>\n'
        '<tool_call>{"name": "mul", "arguments": {"a": 2}}</tool_call>'
    )
    assert [c["name"] for c in parse_tool_calls(text, {"add", "mul"})] == ["add", "mul"]
    assert parse_tool_calls(text, {"add"}) == [{"name": "add", "arguments": {"a": 1}}]
    assert parse_tool_calls("The answer is 3. {not json}", {"add"}) == []
    assert parse_tool_calls('{"name": "add", "arguments": [1]}', {"add"}) == []


# --- the provider -----------------------------------------------------------------------------


def test_litellm_provider_applies_sampling_defaults(fake_engine):
    import litellm

    response = litellm.completion(
        model=lm.DEFAULT_MODEL,
        messages=[{"role": "user", "content": "When?"}],
        max_tokens=5,
        temperature=0.2,
    )
    assert response.choices[0].message.content == "2024-04-03"
    assert response.usage.prompt_tokens == 7 and response.usage.completion_tokens == 2
    call = fake_engine.calls[-1]
    assert call["messages"] == [{"role": "user", "content": "When?"}]
    assert call["max_tokens"] == 5 and call["temperature"] == 0.2
    assert call["top_p"] == 0.8 and call["top_k"] == 20 and call["repeat_penalty"] == 1.1
    assert "tools" not in call
    assert litellm.completion_cost(completion_response=response) == 0.0


@pytest.mark.parametrize("slots", [1, 4])
def test_model_loads_once_and_calls_are_serialized_or_parallel(slots):
    """A one-slot backend sees one request at a time; a parallel one gets them together."""
    import litellm

    fake = FakeBackend(delay=0.5, slots=slots)
    old = _install(fake)

    async def many():
        return await asyncio.gather(
            *[
                litellm.acompletion(
                    model="local/anything", messages=[{"role": "user", "content": f"q{i}"}]
                )
                for i in range(4)
            ]
        )

    try:
        replies = asyncio.run(many())
    finally:
        lm.set_engine(old)
    assert len(replies) == 4 and len(fake.calls) == 4
    assert (fake.max_active == 1) if slots == 1 else (fake.max_active > 1)
    assert fake.loads == ["fake.gguf"]


def test_reflection_lm_through_the_provider(fake_engine):
    from gepa_graph.lm import ReflectionLM

    fake_engine.reply = lambda kwargs: "Better:\n```\nReply with YYYY-MM-DD only.\n```"
    reply = asyncio.run(ReflectionLM(lm.DEFAULT_MODEL, max_tokens=64)("improve this"))
    assert "YYYY-MM-DD" in reply.text and reply.usage.cost_usd == 0.0


def test_chat_litellm_tool_calls_are_parsed(fake_engine):
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
    from langchain_core.tools import tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    fake_engine.reply = lambda kwargs: (
        '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
        if kwargs.get("tools") and kwargs["messages"][-1]["role"] != "tool"
        else "It is 3."
    )
    model = lm.chat_model(max_tokens=32).bind_tools([add])
    first = model.invoke([HumanMessage("add 1 and 2")])
    assert first.tool_calls and first.tool_calls[0]["name"] == "add"
    assert first.tool_calls[0]["args"] == {"a": 1, "b": 2}
    tools_sent = fake_engine.calls[-1]["tools"]
    assert tools_sent[0]["function"]["name"] == "add"
    second = model.invoke(
        [
            HumanMessage("add 1 and 2"),
            first,
            ToolMessage("3", tool_call_id=first.tool_calls[0]["id"]),
        ]
    )
    assert isinstance(second, AIMessage) and second.text == "It is 3."
    # the assistant's earlier call reaches the backend as OpenAI sent it; llama-cpp-python's
    # template rendering gets the arguments as an object
    sent = fake_engine.calls[-1]["messages"]
    assistant = next(m for m in sent if m["role"] == "assistant")
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"a": 1, "b": 2}
    rendered = backends._object_arguments(assistant)
    assert rendered["tool_calls"][0]["function"]["arguments"] == {"a": 1, "b": 2}


def test_tool_choice_none_sends_no_tools(fake_engine):
    engine = lm.engine()
    tools = [{"type": "function", "function": {"name": "add", "parameters": {}}}]
    engine.chat([{"role": "user", "content": "x"}], tools=tools, tool_choice="none")
    assert "tools" not in fake_engine.calls[-1]


def test_register_is_idempotent(fake_engine):
    import litellm

    lm.register()
    lm.register()
    assert [p["provider"] for p in litellm.custom_provider_map].count("local") == 1


# --- backends ---------------------------------------------------------------------------------


def test_backend_choice(monkeypatch):
    monkeypatch.delenv(lm.ENV_BACKEND, raising=False)
    assert lm.backend_name() == "xllamacpp"
    monkeypatch.setenv(lm.ENV_BACKEND, "llama-cpp")
    assert lm.backend_name() == "llama-cpp"
    monkeypatch.setenv(lm.ENV_BACKEND, "vllm")
    with pytest.raises(
        lm.LocalModelError, match="'vllm' is not a local backend: use one of xllamacpp, llama-cpp"
    ):
        lm.backend_name()
    assert "is not a local backend" in lm.runtime_problem()


def test_missing_runtime_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(backends.LlamaCppBackend, "module", "gepa_graph_no_such_runtime")
    monkeypatch.setenv(lm.ENV_BACKEND, "llama-cpp")
    assert "builds from source" in lm.runtime_problem()
    with pytest.raises(lm.LocalModelError, match="gepa_graph_no_such_runtime is not installed"):
        backends.open_backend("x.gguf")


def test_xllamacpp_settings_and_requests(monkeypatch):
    """No busy-waiting, no prompt RAM cache, silent, a keyed port, shared context, and every
    request without prompt-cache reuse (so a seed reproduces its reply)."""
    xllamacpp = pytest.importorskip("xllamacpp")
    made = []

    class FakeServer:
        def __init__(self, params):
            made.append(params)
            self.requests = []

        def handle_chat_completions(self, request):
            self.requests.append(request)
            if request["messages"] == "bad":
                return {"error": {"code": 500, "message": "the slot failed"}}
            return {"choices": [{"message": {"role": "assistant", "content": "ok"}}]}

    monkeypatch.setattr(xllamacpp, "Server", FakeServer)
    monkeypatch.setenv(backends.ENV_SLOTS, "3")
    monkeypatch.setenv(backends.ENV_THREADS, "2")
    backend = backends.open_backend("model.gguf", "xllamacpp")
    params = made[0]
    assert params.model.path == "model.gguf" and params.n_ctx == 8192
    assert backend.slots == params.n_parallel == 3 and params.kv_unified
    assert params.cpuparams.poll == params.cpuparams_batch.poll == 0
    assert params.cpuparams.n_threads == params.cpuparams_batch.n_threads == 2
    assert params.cache_ram_mib == 0 and params.verbosity == -1
    assert len(params.api_keys) == 1 and len(params.api_keys[0]) == 32
    request = {"messages": [{"role": "user", "content": "hi"}], "seed": 3}
    assert backend.chat(request)["choices"][0]["message"]["content"] == "ok"
    assert backend._server.requests[-1] == {**request, "cache_prompt": False}
    with pytest.raises(lm.LocalModelError, match="the local model failed: the slot failed"):
        backend.chat({"messages": "bad"})
