"""Load: 500 rollouts at concurrency 32 on a latency-injected model. Every rollout's model call
carries exactly its own candidate's prompt; memory stays bounded; no thread or task leaks."""

import asyncio
import resource
import sys
import threading
from typing import TypedDict

from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import START, StateGraph

import gepa_graph as gg
from gepa_graph.candidate import content_id
from gepa_graph.store import JOURNAL_FILE
from gepa_graph.testing.chat_model import ScriptedChatModel
from gepa_graph.testing.rules import RuleTask


class State(TypedDict, total=False):
    question: str
    answer: str


def test_500_rollouts_at_concurrency_32_stay_isolated_and_clean(tmp_path):
    task = RuleTask(n_types=40, modules=("answer",))

    def reply(messages):
        system, question = messages[0].text, messages[-1].text
        kind = question.split()[1]
        return f"answer-{kind}" if f"rule-{kind}." in system else "unsure"

    model = ScriptedChatModel(script=reply, latency_s=0.005)
    chain = (
        ChatPromptTemplate.from_messages(
            [("system", task.seed_prompts()["answer"]), ("human", "{question}")]
        )
        | model
    )

    async def answer(state: State) -> State:
        return {"answer": (await chain.ainvoke({"question": state["question"]})).text}

    builder = StateGraph(State)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    graph = builder.compile()
    data = [
        {"id": ex["id"], "type": ex["type"], "question": f"type {ex['type']} {ex['id']}"}
        for ex in task.examples(140, seed=5)
    ]

    def metric(example, prediction):
        return task.metric(example, prediction["answer"])

    threads_before = threading.active_count()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    async def main():
        result = await gg.aoptimize(
            graph,
            data[:60],
            data[60:],
            metric=metric,
            reflection_lm=task.reflection_lm(),
            max_rollouts=500,
            run_dir=tmp_path / "run",
            progress=False,
            config=gg.OptimizeConfig(concurrency=32, minibatch_size=8, seed=2),
        )
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return result, leftover

    result, leftover_tasks = asyncio.run(main())
    assert result.rollouts_used > 400 and result.best_score > result.seed_score
    assert leftover_tasks == []

    # Cross-talk check on every rollout: the system prompt the model received is exactly the
    # prompt of the candidate the rollout ran (candidate ids are content hashes).
    import json

    checked = 0
    for line in (tmp_path / "run" / JOURNAL_FILE).read_text().splitlines():
        record = json.loads(line)
        if record["type"] != "rollout":
            continue
        [llm] = [r for r in record["result"]["trace"]["records"] if r["kind"] == "llm"]
        system_text = llm["inputs"]["messages"][0]["content"]
        assert content_id({"answer": system_text}) == record["candidate_id"]
        checked += 1
    # Every rollout journaled but the probe's seed runs; one model call per rollout, no retries.
    assert checked == result.rollouts_used - result.ledger.probe_rollouts
    assert len(model.calls) == result.rollouts_used

    # Bounded memory and no leaked threads (the rollout thread pool is shut down).
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    growth_mb = (rss_after - rss_before) / 1024
    print(
        f"peak RSS {rss_after / 1024:.0f} MB (+{growth_mb:.0f} MB during 500 rollouts)",
        file=sys.stderr,
    )
    assert growth_mb < 300
    assert threading.active_count() <= threads_before
