"""The interception layer on the OpenAI SDK: chat completions and responses, ``parse`` and the
async client, rewritten and recorded inside a run (against a local HTTP server)."""

import http.server
import json
import threading

import openai
import pytest

from tests.intercept_helpers import (
    NEW,
    SEED,
    chat_messages,
    one_node,
    rollout,
)


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
