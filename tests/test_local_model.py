"""The embedded local model's plumbing, offline: assembly and checksum, backend choice and
settings, the LiteLLM provider over a fake backend (sampling defaults, serial or parallel calls,
async), JSON tool-call parsing, ChatLiteLLM on top. The real model's tests are marked
``local_model`` and run on every installed backend (xllamacpp always: it is in the local extra)."""

import asyncio
import hashlib
import json
import threading
import time

import pytest

from gepa_graph import local as lm
from gepa_graph.local import backends, model_file
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
    out = model_file.assemble(
        _parts(tmp_path, chunks),
        tmp_path / "cache" / "m.gguf",
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
        progress=messages.append,
    )
    assert out.read_bytes() == whole
    assert "assembling the local model" in messages[0] and "ready" in messages[-1]
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".part")]


def test_checksum_mismatch_fails_clearly_and_leaves_nothing(tmp_path):
    destination = tmp_path / "cache" / "m.gguf"
    with pytest.raises(lm.ModelChecksumError) as caught:
        model_file.assemble(
            _parts(tmp_path, [b"a", b"b"]), destination, sha256="0" * 64, size=2, progress=None
        )
    message = str(caught.value)
    assert "does not match" in message and "0" * 64 in message
    assert hashlib.sha256(b"ab").hexdigest() in message
    assert "reinstall" in message and lm.ENV_MODEL in message
    assert not destination.exists()
    assert list(destination.parent.iterdir()) == []


def test_size_mismatch_fails(tmp_path):
    with pytest.raises(lm.ModelChecksumError):
        model_file.assemble(
            _parts(tmp_path, [b"ab"]),
            tmp_path / "m.gguf",
            sha256=hashlib.sha256(b"ab").hexdigest(),
            size=3,
            progress=None,
        )


def test_model_path_override_and_missing_override(tmp_path, monkeypatch):
    model = tmp_path / "any.gguf"
    model.write_bytes(b"gguf")
    monkeypatch.setenv(lm.ENV_MODEL, str(model))
    assert lm.model_path(progress=None) == model
    monkeypatch.setenv(lm.ENV_MODEL, str(tmp_path / "nope.gguf"))
    with pytest.raises(lm.LocalModelError, match="is not a file"):
        lm.model_path(progress=None)


def test_cache_dir_is_outside_the_repo(monkeypatch, tmp_path):
    monkeypatch.delenv(model_file.ENV_CACHE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_file.cache_dir() == tmp_path / "xdg" / "gepa_graph"
    monkeypatch.setenv(model_file.ENV_CACHE, str(tmp_path / "mine"))
    assert model_file.cached_model_path().parent == tmp_path / "mine" / "models"


def test_model_path_reassembles_a_damaged_cache(tmp_path, monkeypatch):
    """A cached file whose hash is wrong is thrown away and assembled again from the parts."""
    whole = b"the-model"
    parts = _parts(tmp_path, [b"the-", b"model"])
    monkeypatch.delenv(lm.ENV_MODEL, raising=False)
    monkeypatch.setenv(model_file.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(model_file, "MODEL_SHA256", hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(model_file, "part_paths", lambda: parts)
    original_assemble = model_file.assemble
    monkeypatch.setattr(
        model_file,
        "assemble",
        lambda p, d, progress=None: original_assemble(
            p, d, sha256=model_file.MODEL_SHA256, size=len(whole), progress=progress
        ),
    )
    path = lm.model_path(progress=None)
    assert path.read_bytes() == whole
    path.write_bytes(b"damaged!!")
    messages = []
    assert lm.model_path(progress=messages.append).read_bytes() == whole
    assert any("assembling it again" in m for m in messages)


def test_missing_parts_name_the_install_command(monkeypatch):
    monkeypatch.setattr(
        model_file, "PART_PACKAGES", ("gepa_graph_no_such_part_1", "gepa_graph_no_such_part_2")
    )
    with pytest.raises(lm.LocalModelError, match=r'pip install "\.\[local\]"'):
        model_file.part_paths()


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


# --- the real model ---------------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module", params=list(backends.BACKENDS))
def real_engine(request):
    """The real model on each backend; one that is not installed is skipped (xllamacpp is in the
    local extra; llama-cpp-python is optional)."""
    name = request.param
    problem = lm.runtime_problem(name)
    if problem:
        pytest.skip(problem)
    try:
        lm.model_path(progress=None)
    except lm.LocalModelError as exc:
        pytest.skip(str(exc))
    engine = lm.LocalEngine(factory=lambda path: backends.open_backend(path, name))
    old = lm.set_engine(engine)
    lm.register()
    yield engine
    lm.set_engine(old)
    engine.close()


def _ask(content, system=None, **kwargs):
    import litellm

    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": content}
    ]
    return litellm.completion(model=lm.DEFAULT_MODEL, messages=messages, **kwargs)


@pytest.mark.local_model
def test_real_model_follows_the_chat_template_and_calls_tools(real_engine):
    reply = _ask(
        "The meeting is on 7 November 2023.",
        max_tokens=16,
        system="Reply with the date only, as YYYY-MM-DD.",
    )
    assert "2023-11-07" in reply.choices[0].message.content
    reply = _ask(
        "What is the weather in Paris? Use the tool.",
        max_tokens=64,
        tools=[WEATHER_TOOL],
        tool_choice="auto",
    )
    message = reply.choices[0].message
    calls = message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments)["city"].lower() == "paris"
    import litellm

    answer = litellm.completion(
        model=lm.DEFAULT_MODEL,
        max_tokens=40,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "What is the weather in Paris? Use the tool."},
            message.model_dump(),
            {"role": "tool", "tool_call_id": calls[0].id, "content": "Sunny, 24 degrees."},
        ],
    )
    assert "24" in answer.choices[0].message.content


@pytest.mark.local_model
def test_real_model_honours_sampling_parameters(real_engine):
    story = "Write a long story about a lighthouse keeper."
    cut = _ask(story, max_tokens=5)
    assert cut.usage.completion_tokens == 5 and cut.choices[0].finish_reason == "length"
    counted = _ask("Count from 1 to 20, separated by commas.", max_tokens=80)
    assert "7" in counted.choices[0].message.content
    stopped = _ask("Count from 1 to 20, separated by commas.", max_tokens=80, stop=["7"])
    assert "7" not in stopped.choices[0].message.content
    assert stopped.usage.completion_tokens < counted.usage.completion_tokens
    as_json = _ask(
        "Describe a cat with the keys name and colour.",
        max_tokens=60,
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(as_json.choices[0].message.content), dict)


@pytest.mark.local_model
def test_real_model_same_seed_same_reply(real_engine):
    prompt = "Invent a name for a red bicycle shop. Answer with the name only."

    def sample(seed):
        return _ask(prompt, max_tokens=24, temperature=1.2, seed=seed).choices[0].message.content

    first = sample(7)
    assert sample(7) == first and sample(7) == first
    assert len({first, sample(8), sample(9), sample(10)}) > 1  # the seed does steer the sample


@pytest.mark.local_model
def test_real_model_serves_concurrent_callers(real_engine):
    import litellm

    dates = {
        "3 March 2021": "2021-03-03",
        "14 July 2022": "2022-07-14",
        "25 December 2023": "2023-12-25",
        "1 February 2024": "2024-02-01",
    }

    async def ask_all():
        return await asyncio.gather(
            *[
                litellm.acompletion(
                    model=lm.DEFAULT_MODEL,
                    max_tokens=16,
                    messages=[
                        {"role": "system", "content": "Reply with the date only, as YYYY-MM-DD."},
                        {"role": "user", "content": f"The event is on {text}."},
                    ],
                )
                for text in dates
            ]
        )

    replies = asyncio.run(ask_all())
    for reply, iso in zip(replies, dates.values(), strict=True):
        assert iso in reply.choices[0].message.content
