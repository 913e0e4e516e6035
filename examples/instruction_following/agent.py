"""Instruction following with verifiable constraints (IFEval).

The agent is one LangGraph node, ``respond``, answering a user request under its system prompt.
Each example carries IFEval constraints ("no commas", "exactly 3 bullet points", "wrap the answer
in JSON"...) checked by Google's own verifier code (``ifeval/``, Apache-2.0, see ifeval/NOTICE).
The metric is the fraction of constraints followed, and its feedback names each one missed, so
reflection can teach the system prompt to read and obey such constraints.

    python examples/instruction_following/agent.py                      # the local model
    python examples/instruction_following/agent.py --model openai/gpt-4.1-mini
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TypedDict

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from ifeval import instructions_registry

SYSTEM_PROMPT = "You are a helpful assistant."


def load_data() -> list[dict[str, Any]]:
    """30 IFEval prompts whose constraints need no extra packages (data.jsonl)."""
    lines = (HERE / "data.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def check(example: dict[str, Any], response: str) -> list[tuple[str, str, bool]]:
    """(instruction id, what it asks, followed?) for each constraint: IFEval's strict check."""
    results = []
    for instruction_id, kwargs in zip(
        example["instruction_id_list"], example["kwargs"], strict=True
    ):
        instruction = instructions_registry.INSTRUCTION_DICT[instruction_id](instruction_id)
        description = instruction.build_description(
            **{k: v for k, v in kwargs.items() if v is not None}
        )
        args = instruction.get_instruction_args()
        if args and "prompt" in args:
            description = instruction.build_description(prompt=example["prompt"])
        followed = bool(response.strip()) and bool(instruction.check_following(response))
        results.append((instruction_id, description, followed))
    return results


def metric(example: Any, prediction: Any):
    import gepa_graph as gg

    response = str((prediction or {}).get("response") or "")
    results = check(example, response)
    followed = sum(ok for _, _, ok in results)
    missed = [f"- {iid}: {text}" for iid, text, ok in results if not ok]
    if not missed:
        return gg.Score(value=1.0, feedback="Every constraint was followed.")
    feedback = (
        f"{followed} of {len(results)} constraints followed. Missed:\n"
        + "\n".join(missed)
        + "\nThe request states these constraints; the reply must obey each literally."
    )
    return gg.Score(value=followed / len(results), feedback=feedback)


class State(TypedDict, total=False):
    prompt: str
    response: str


def build_graph(model: Any) -> Any:
    from langchain_core.prompts import ChatPromptTemplate
    from langgraph.graph import END, START, StateGraph

    chain = (
        ChatPromptTemplate.from_messages([("system", SYSTEM_PROMPT), ("human", "{prompt}")]) | model
    )

    def respond(state: State) -> dict[str, str]:
        reply = chain.invoke({"prompt": state["prompt"]})
        return {"response": reply.text}

    builder = StateGraph(State)
    builder.add_node("respond", respond)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", END)
    return builder.compile(name="instruction_follower")


def main(argv: list[str] | None = None) -> None:
    import gepa_graph as gg
    from gepa_graph import local

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=local.DEFAULT_MODEL, help="LiteLLM model")
    parser.add_argument("--reflection-lm", default=None, help="LiteLLM model (default: --model)")
    parser.add_argument("--max-rollouts", type=int, default=40)
    args = parser.parse_args(argv)
    data = load_data()
    graph = build_graph(local.chat_model(args.model, max_tokens=400))
    result = gg.optimize(
        graph,
        data[:12],
        data[12:20],
        metric=metric,
        reflection_lm=local.resolve(args.reflection_lm or args.model),
        max_rollouts=args.max_rollouts,
        tracking="gepa-graph-examples",
        progress=True,
        config=gg.OptimizeConfig(concurrency=4, reflection_max_tokens=600),
    )
    print(f"validation: seed {result.seed_score:.3f} -> best {result.best_score:.3f}")
    print(result.best_candidate["respond"])


if __name__ == "__main__":
    main()
