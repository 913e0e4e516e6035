"""A multi-step tool-using agent: a shop assistant that looks up prices, converts currency and
does arithmetic with real tools before it answers.

The graph is the classic tool loop: node ``agent`` (a chat model with three tools bound, under
its system prompt) and node ``tools`` (LangGraph's ToolNode), until the model answers without a
tool call. Each question needs several tool calls (find the products, convert to the customer's
currency, multiply and add). The metric checks the final number and, from the trace, says which
tools were (not) used, so reflection can teach the system prompt a working procedure.

    python examples/shop_assistant/agent.py                        # the local model
    python examples/shop_assistant/agent.py --model anthropic/claude-sonnet-4-5
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import re
from pathlib import Path
from typing import Any

from langchain_core.tools import tool

HERE = Path(__file__).resolve().parent

SYSTEM_PROMPT = "You are a shop assistant. Answer the customer's question."

CATALOGUE: dict[str, dict[str, Any]] = {
    "a5 notebook": {"sku": "NB-A5", "price_gbp": 3.50, "stock": 120},
    "gel pen": {"sku": "PN-GEL", "price_gbp": 1.20, "stock": 400},
    "desk lamp": {"sku": "LM-DSK", "price_gbp": 24.00, "stock": 15},
    "stapler": {"sku": "ST-STD", "price_gbp": 6.75, "stock": 40},
    "paper ream": {"sku": "PP-A4", "price_gbp": 4.80, "stock": 200},
    "backpack": {"sku": "BP-20L", "price_gbp": 32.50, "stock": 8},
}
RATES = {"GBP": 1.0, "EUR": 1.17, "USD": 1.27}


@tool
def find_product(name: str) -> str:
    """Look up a product by name; returns its SKU, unit price in GBP and stock as JSON."""
    key = name.strip().lower()
    for product, info in CATALOGUE.items():
        if key in product or product in key:
            return json.dumps({"name": product, **info})
    return json.dumps({"error": f"no product named {name!r}", "products": sorted(CATALOGUE)})


@tool
def convert_currency(amount_gbp: float, currency: str) -> str:
    """Convert an amount in GBP to EUR, USD or GBP; returns the converted amount."""
    code = currency.strip().upper()
    if code not in RATES:
        return f"error: unknown currency {currency!r}; use one of {sorted(RATES)}"
    return f"{amount_gbp * RATES[code]:.2f} {code}"


_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.USub: operator.neg,
}


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.operand))
    raise ValueError("only numbers and + - * / are allowed")


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression made of numbers, + - * / and parentheses."""
    try:
        return f"{_evaluate(ast.parse(expression, mode='eval').body):.4f}".rstrip("0").rstrip(".")
    except (ValueError, SyntaxError, ZeroDivisionError) as exc:
        return f"error: {exc}"


TOOLS = [find_product, convert_currency, calculator]


def load_data() -> list[dict[str, Any]]:
    lines = (HERE / "data.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def expected_total(items: dict[str, int], currency: str) -> float:
    total = sum(CATALOGUE[name]["price_gbp"] * count for name, count in items.items())
    return round(total * RATES[currency], 2)


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_text(prediction: Any) -> str:
    messages = (prediction or {}).get("messages") or []
    return messages[-1].text if messages else ""


def metric(example: Any, prediction: Any, trace: Any = None):
    import gepa_graph as gg

    expected = float(example["answer"])
    text = final_text(prediction)
    numbers = [float(n.replace(",", "")) for n in _NUMBER.findall(text)]
    used = sorted(
        {
            r.inputs.get("name")
            for r in (trace.records if trace else [])
            if r.kind == "tool" and isinstance(r.inputs, dict)
        }
        - {None}
    )
    if numbers and abs(numbers[-1] - expected) <= 0.011:
        return gg.Score(value=1.0, feedback=f"Correct: {expected:.2f} {example['currency']}.")
    hints = []
    if "find_product" not in used:
        hints.append("it never looked up the unit prices with find_product")
    if example["currency"] != "GBP" and "convert_currency" not in used:
        hints.append(
            f"it never converted the GBP total to {example['currency']} with convert_currency"
        )
    if "calculator" not in used:
        hints.append("it did the arithmetic in its head instead of with calculator")
    got = f"{numbers[-1]:g}" if numbers else "no number"
    return gg.Score(
        value=0.0,
        feedback=(
            f"Wrong total: the final answer gave {got}; the correct total is {expected:.2f} "
            f"{example['currency']} (unit prices in GBP times quantities, summed, then converted). "
            f"Tools used: {', '.join(used) or 'none'}"
            + (f"; {'; '.join(hints)}." if hints else ".")
            + " The final answer should state the total as a number with the currency code."
        ),
    )


def build_graph(model: Any) -> Any:
    from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    chain = ChatPromptTemplate.from_messages(
        [("system", SYSTEM_PROMPT), MessagesPlaceholder("messages")]
    ) | model.bind_tools(TOOLS)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [chain.invoke({"messages": state["messages"]})]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(TOOLS, handle_tool_errors=True))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(name="shop_assistant")


def main(argv: list[str] | None = None) -> None:
    import gepa_graph as gg
    from gepa_graph import local

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=local.DEFAULT_MODEL, help="LiteLLM model")
    parser.add_argument("--reflection-lm", default=None, help="LiteLLM model (default: --model)")
    parser.add_argument("--max-rollouts", type=int, default=40)
    args = parser.parse_args(argv)
    data = load_data()
    graph = build_graph(local.chat_model(args.model, max_tokens=200))
    result = gg.optimize(
        graph,
        data[:8],
        data[8:14],
        metric=metric,
        reflection_lm=local.resolve(args.reflection_lm or args.model),
        max_rollouts=args.max_rollouts,
        tracking="gepa-graph-examples",
        progress=True,
        config=gg.OptimizeConfig(concurrency=4, reflection_max_tokens=600, rollout_timeout_s=300),
    )
    print(f"validation: seed {result.seed_score:.3f} -> best {result.best_score:.3f}")
    print(result.best_candidate["agent"])


if __name__ == "__main__":
    main()
