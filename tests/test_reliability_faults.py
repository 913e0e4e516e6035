"""30 % of task-LM and reflection-LM calls fail on purpose: rate limits, timeouts, dropped
connections, empty replies and garbage. The optimization completes, every failure is retried
or recorded, no accepted candidate is lost and the ledger stays exact.

Faults are decided by a hash of (call content, attempt), so the run is reproducible even
though rollouts run concurrently.
"""

import hashlib
import json
import re
import threading
from collections import Counter
from typing import TypedDict

import litellm
from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import START, StateGraph

import gepa_graph as gg
from gepa_graph.events import CandidateAccepted
from gepa_graph.testing.chat_model import ScriptedChatModel
from gepa_graph.testing.reflection import ScriptedLiteLLM
from gepa_graph.testing.rules import RuleTask

TRANSIENT = ("rate_limit", "timeout", "connection")
FAULTS = TRANSIENT + ("empty", "garbage")


class Faults:
    """Picks a fault for 30 % of calls, deterministically per (content, attempt)."""

    def __init__(self):
        self.attempts: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.lock = threading.Lock()

    def pick(self, content: str) -> str | None:
        with self.lock:
            attempt = self.attempts[content]
            self.attempts[content] += 1
            digest = int(hashlib.sha256(f"{content}#{attempt}".encode()).hexdigest(), 16)
            if digest % 100 >= 30:
                return None
            fault = FAULTS[digest // 100 % len(FAULTS)]
            self.injected[fault] += 1
            return fault

    @staticmethod
    def raise_transient(fault: str) -> None:
        if fault == "rate_limit":
            raise litellm.RateLimitError("429 slow down", llm_provider="x", model="m")
        if fault == "timeout":
            raise TimeoutError("read timed out")
        raise ConnectionError("connection reset by peer")


class State(TypedDict, total=False):
    question: str
    answer: str


def faulty_graph(task: RuleTask, faults: Faults):
    def reply(messages):
        system, question = messages[0].text, messages[-1].text
        fault = faults.pick(system + "|" + question)
        if fault in TRANSIENT:
            faults.raise_transient(fault)
        if fault == "empty":
            return ""
        if fault == "garbage":
            return "%$#@ lorem ipsum"
        kind = int(re.search(r"type (\d+)", question).group(1))
        return f"answer-{kind}" if f"rule-{kind}." in system else "unsure"

    chain = ChatPromptTemplate.from_messages(
        [("system", task.seed_prompts()["answer"]), ("human", "{question}")]
    ) | ScriptedChatModel(script=reply)

    def answer(state: State) -> State:
        return {"answer": chain.invoke({"question": state["question"]}).text}

    builder = StateGraph(State)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    return builder.compile()


def faulty_reflection(task: RuleTask, faults: Faults):
    scripted = task.reflection_lm()

    def reply(prompt):
        fault = faults.pick(prompt)
        if fault in TRANSIENT:
            faults.raise_transient(fault)
        if fault == "empty":
            return ""
        if fault == "garbage":
            return "I am not sure what you want. Lorem ipsum."
        return scripted(prompt)

    return ScriptedLiteLLM(reply, provider="faulty")


def test_optimization_survives_30_percent_failing_calls(tmp_path):
    task = RuleTask(n_types=6, modules=("answer",))  # module named after the graph's node
    task_faults, reflection_faults = Faults(), Faults()
    data = [
        {"id": ex["id"], "question": f"type {ex['type']} question {ex['id']}", "type": ex["type"]}
        for ex in task.examples(24, seed=3)
    ]

    def metric(example, prediction):
        return task.metric(example, prediction["answer"])

    events = []
    result = gg.optimize(
        faulty_graph(task, task_faults),
        data[:14],
        data[14:],
        metric=metric,
        reflection_lm=faulty_reflection(task, reflection_faults).register(),
        max_rollouts=260,
        run_dir=tmp_path / "run",
        progress=False,
        listeners=[events.append],
        config=gg.OptimizeConfig(lm_backoff_s=0.0005, concurrency=6, seed=1),
    )
    assert result.best_score > result.seed_score
    assert sum(task_faults.injected.values()) > 20 and sum(reflection_faults.injected.values()) > 3

    journal = [
        json.loads(line) for line in (tmp_path / "run" / "journal.jsonl").read_text().splitlines()
    ]
    rollouts = [r for r in journal if r["type"] == "rollout"]
    # Ledger exact: one rollout per distinct (candidate, example), however often it was retried,
    # and the probe's seed runs, which the journal does not hold.
    assert result.ledger.probe_rollouts == 3
    assert (
        result.rollouts_used - result.ledger.probe_rollouts
        == len(rollouts)
        == len({(r["candidate_id"], r["example_key"]) for r in rollouts})
    )

    # Every transient task-LM failure was either retried or is recorded as the rollout's error,
    # but those the probe's seed runs met (one model call each, not retried, not journaled).
    transient_final = sum(
        1
        for r in rollouts
        if r["result"]["error"]
        and re.match(r"(RateLimitError|TimeoutError|ConnectionError)", r["result"]["error"])
    )
    injected = sum(task_faults.injected[f] for f in TRANSIENT)
    accounted = result.ledger.rollout_retries + transient_final
    assert accounted <= injected <= accounted + result.ledger.probe_rollouts

    # Reflection: transient faults and empty replies retried (or the call counted as failed);
    # garbage replies recorded as rejected proposals.
    ledger = result.ledger
    retried = sum(reflection_faults.injected[f] for f in TRANSIENT + ("empty",))
    assert retried == ledger.lm_retries + ledger.lm_failures and ledger.lm_retries > 0
    garbage = sum(1 for r in result.rejected if r.reason == "no_fenced_block")
    assert garbage == reflection_faults.injected["garbage"]

    # No accepted candidate lost: the events, the result and the checkpoint agree.
    accepted = [e.candidate.id for e in events if isinstance(e, CandidateAccepted)]
    saved = gg.load_result(tmp_path / "run")
    assert accepted == [c.id for c in result.candidates] == [c.id for c in saved.candidates]
    assert saved.ledger.rollouts_used == result.rollouts_used
