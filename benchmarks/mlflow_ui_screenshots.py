"""Screenshots of the MLflow UI after a real gepa_graph workflow, in headless Chromium.

Offline and deterministic: a two-node LangGraph support-ticket agent (classify, reply) with
scripted chat models and a scripted reflection LM. Against a real ``mlflow server`` on
127.0.0.1 (one worker, its own SQLite store in a temporary folder) it runs an optimization,
registers the winner (alias ``candidate``), promotes it through the promotion gate on held-out
tickets, runs a second optimization seeded from ``@production``, registers that winner, invokes
the production graph once with MLflow tracing on, and photographs the pages a user opens.

    python -m benchmarks.mlflow_ui_screenshots [--out benchmarks/results/mlflow_ui]

Needs Chromium (Debian: ``apt-get install chromium``). The server and each browser are stopped
by their process ids.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, TypedDict

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

RULES = {
    "refund": "billing",
    "invoice": "billing",
    "crash": "bug",
    "freezes": "bug",
    "password": "account",
    "login": "account",
}
_RULE = re.compile(r"'(\w+)' means (\w+)")
QUOTE = "Always quote the ticket id."


def tickets(count: int, offset: int) -> list[dict[str, Any]]:
    words = sorted(RULES)
    return [
        {
            "id": f"t{offset + i}",
            "ticket": f"T-{offset + i}: my {words[(offset + i) % 6]} problem needs help",
            "label": RULES[words[(offset + i) % 6]],
        }
        for i in range(count)
    ]


def build_graph() -> Any:
    from langchain_core.messages import AIMessage
    from langchain_core.prompts import ChatPromptTemplate
    from langgraph.graph import END, START, StateGraph

    from gepa_graph.testing.chat_model import ScriptedChatModel

    class State(TypedDict, total=False):
        ticket: str
        label: str
        reply: str

    def classifier(messages: list) -> str:
        system, ticket = messages[0].content, messages[-1].content
        for word, label in _RULE.findall(system):
            if word in ticket:
                return label
        return "other"

    def replier(messages: list) -> str:
        system, ticket = messages[0].content, messages[-1].content
        ticket_id = ticket.split(":")[0]
        return (f"Re {ticket_id}: " if QUOTE in system else "") + "we are on it."

    classify = ChatPromptTemplate.from_messages(
        [
            ("system", "Classify the support ticket as billing, bug or account."),
            ("human", "{ticket}"),
        ]
    ) | ScriptedChatModel(script=classifier)
    reply = ChatPromptTemplate.from_messages(
        [
            ("system", "Write a one-line answer to a {label} ticket."),
            ("human", "{ticket}"),
        ]
    ) | ScriptedChatModel(script=replier)

    def classify_node(state: State) -> State:
        message: AIMessage = classify.invoke({"ticket": state["ticket"]})
        return {"label": message.content}

    def reply_node(state: State) -> State:
        message = reply.invoke({"ticket": state["ticket"], "label": state["label"]})
        return {"reply": message.content}

    builder = StateGraph(State)
    builder.add_node("classify", classify_node)
    builder.add_node("reply", reply_node)
    builder.add_edge(START, "classify")
    builder.add_edge("classify", "reply")
    builder.add_edge("reply", END)
    return builder.compile()


def metric(example: dict[str, Any], prediction: dict[str, Any]) -> Any:
    import gepa_graph as gg

    right = prediction.get("label") == example["label"]
    quoted = prediction.get("reply", "").startswith(f"Re {example['id'].replace('t', 'T-')}")
    word = next(w for w in RULES if w in example["ticket"])
    feedback = {}
    if not right:
        feedback["classify"] = f"wrong label; the rule is '{word}' means {example['label']}"
    if not quoted:
        feedback["reply"] = "the answer must quote the ticket id"
    return gg.Score(
        value=0.7 * right + 0.3 * quoted,
        feedback="; ".join(feedback.values()) or "correct",
        module_feedback=feedback or None,
    )


def reflection_lm() -> Any:
    from gepa_graph.testing.reflection import ScriptedReflectionLM, module_name

    def rewrite(current: str, prompt: str) -> str:
        if module_name(prompt) == "reply":
            return current if QUOTE in current else f"{current} {QUOTE}"
        for word, label in _RULE.findall(prompt):
            if f"'{word}' means" not in current:
                return f"{current}\n'{word}' means {label}."
        return current + " Be precise."

    return ScriptedReflectionLM(rewrite)


# --- the browser ------------------------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("no Chromium found: apt-get install -y chromium")


def screenshot(
    browser: str, url: str, path: Path, profile: Path, size: str = "1900,1100", wait_ms: int = 20000
) -> None:
    """One page, rendered after ``wait_ms`` of virtual time (the UI fetches its data first)."""
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--hide-scrollbars",
        f"--window-size={size}",
        f"--virtual-time-budget={wait_ms}",
        f"--screenshot={path}",
        url,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        pass
    finally:
        from gepa_graph.tracking.server import stop

        stop(process)
    if not path.exists():
        raise RuntimeError(f"Chromium wrote no screenshot of {url}")


# --- the workflow -------------------------------------------------------------------------------


def workflow(uri: str, root: Path) -> dict[str, Any]:
    import mlflow
    from mlflow import MlflowClient

    import gepa_graph as gg
    from gepa_graph.tracking import MLflowTracker, registry
    from gepa_graph.tracking import schema as S
    from gepa_graph.tracking.gate import promote_if_better

    graph = build_graph()
    train, val, holdout = tickets(12, 0), tickets(8, 100), tickets(12, 200)
    config = gg.OptimizeConfig(seed=0, minibatch_size=3)
    name, experiment = "support-triage", "support-triage"

    first = MLflowTracker(experiment=experiment, tracking_uri=uri)
    result = gg.optimize(
        graph,
        train,
        val,
        metric=metric,
        reflection_lm=reflection_lm(),
        max_rollouts=48,
        run_dir=root / "run1",
        tracking=first,
        progress=False,
        config=config,
    )
    registry.register(result, name, tracking_uri=uri)
    gate = promote_if_better(name, graph, holdout, metric, tracking_uri=uri)

    seeds = registry.seed_from_registry(f"{name}@production", uri)
    second = MLflowTracker(experiment=experiment, tracking_uri=uri)
    again = gg.optimize(
        graph,
        train,
        val,
        metric=metric,
        reflection_lm=reflection_lm(),
        max_rollouts=80,
        run_dir=root / "run2",
        tracking=second,
        progress=False,
        config=config,
        seed_prompts=seeds,
        testset=holdout,
    )
    registry.register(again, name, tracking_uri=uri)

    # Production traffic with tracing on: the trace names the prompt versions it ran.
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    mlflow.langchain.autolog()
    production = registry.with_registry_prompts(graph, f"{name}@production", uri)
    production.invoke({"ticket": "T-900: my refund problem needs help"})
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()

    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    children = client.search_runs(
        [experiment_id], f"tags.{S.MLFLOW_PARENT_RUN} = '{second.run_id}'"
    )
    best_child = next(r.info.run_id for r in children if r.data.tags.get(S.TAG_BEST) == "true")
    return {
        "experiment_id": experiment_id,
        "first_run": first.run_id,
        "run": second.run_id,
        "best_child": best_child,
        "gate_run": gate.run_id,
        "trace_id": trace_id,
        "runs_url": second.runs_url,
        "prompt": registry.module_prompt_name(name, "classify"),
        "gate": gate.summary(),
        "first": (result.seed_score, result.best_score),
        "second": (again.seed_score, again.best_score),
        "second_held_out": (again.test_seed_score, again.test_best_score),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "mlflow_ui")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from gepa_graph.tracking.server import local_server

    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="gepa-mlflow-ui-") as tmp:
        root = Path(tmp)
        os.chdir(root)  # nothing of the workflow lands in the repository
        with local_server(root / "server") as uri:
            ids = workflow(uri, root)
            e = ids["experiment_id"]
            ml = "?workflowType=machine_learning"
            run, child = ids["run"], ids["best_child"]
            pages = {
                "1_experiment.png": f"{uri}/#/experiments/{e}{ml}",
                "2_runs_list.png": ids["runs_url"],
                "3_parent_run.png": f"{uri}/#/experiments/{e}/runs/{run}{ml}",
                "4_parent_run_charts.png": f"{uri}/#/experiments/{e}/runs/{run}/model-metrics{ml}",
                "5_candidate_run.png": f"{uri}/#/experiments/{e}/runs/{child}{ml}",
                "6_prompt.png": f"{uri}/#/prompts/{ids['prompt']}",
                "7_experiment_prompts.png": f"{uri}/#/experiments/{e}/prompts",
                "8_gate_run.png": f"{uri}/#/experiments/{e}/runs/{ids['gate_run']}{ml}",
                "9_traces.png": f"{uri}/#/experiments/{e}/traces{ml}",
                "10_trace.png": f"{uri}/#/experiments/{e}/traces{ml}"
                f"&selectedEvaluationId={ids['trace_id']}",
            }
            for filename, url in pages.items():
                screenshot(browser, url, args.out / filename, root / f"profile-{filename}")
                print(f"{filename}: {url.removeprefix(uri)}")
    print(
        json.dumps(
            {k: v for k, v in ids.items() if k in ("gate", "first", "second", "second_held_out")}
        )
    )


if __name__ == "__main__":
    main()
