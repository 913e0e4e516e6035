"""gg.optimize on real LangGraph graphs, end to end, with scripted task and reflection models.

The task models only succeed when their prompt carries a rule the metric's feedback names; the
scripted reflection LM adds that rule when (and only when) the feedback it reads asks for it,
so the validation score improves only if traces and feedback reach the right module.
"""

import re
from typing import TypedDict

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langgraph.graph import START, StateGraph

import gepa_graph as gg
from gepa_graph.integrations.langgraph import discover
from gepa_graph.testing.chat_model import ScriptedChatModel

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Peru": "Lima",
    "Kenya": "Nairobi",
    "Chile": "Santiago",
    "Egypt": "Cairo",
    "Spain": "Madrid",
    "India": "Delhi",
}


def last_fenced_block(text):
    return re.findall(r"```\n(.*?)\n```", text, re.S)[0]


class ScriptedReflection:
    """Adds `rule` to the current prompt when the feedback it reads contains `trigger`."""

    def __init__(self, trigger, rule):
        self.trigger, self.rule, self.prompts = trigger, rule, []

    def __call__(self, prompt):
        self.prompts.append(prompt)
        current = last_fenced_block(prompt)
        addition = self.rule if self.trigger in prompt else "Think carefully."
        return f"Here is the improved instruction:\n```\n{current} {addition}\n```"


class QA(TypedDict, total=False):
    question: str
    plan: str
    answer: str


def capital_graph():
    def writer_reply(messages):
        system = messages[0].text
        country = re.search(r"capital of (\w+)", system).group(1)
        city = CAPITALS[country]
        return city.upper() if "UPPERCASE" in system else city.lower()

    planner = ChatPromptTemplate.from_messages(
        [("system", "Plan the answer."), ("human", "{question}")]
    )
    writer = ChatPromptTemplate.from_messages(
        [("system", "Write the answer from the plan: {plan}")]
    )
    planner_model = ScriptedChatModel(script=lambda messages: "look up the " + messages[-1].text)
    writer_model = ScriptedChatModel(script=writer_reply)
    builder = StateGraph(QA)
    builder.add_node("planner", planner | planner_model | (lambda m: {"plan": m.content}))
    builder.add_node("writer", writer | writer_model | (lambda m: {"answer": m.content}))
    builder.add_edge(START, "planner")
    builder.add_edge("planner", "writer")
    return builder.compile()


def capital_metric(example, prediction, trace):
    if prediction["answer"] == example["answer"]:
        return 1.0
    return gg.Score(
        value=0.0,
        feedback="The answer is wrong.",
        module_feedback={"writer": "Correct city, but it must be written in UPPERCASE letters."},
    )


def test_two_node_graph_improves_by_fixing_the_node_the_feedback_names(tmp_path):
    graph = capital_graph()
    examples = [
        {"id": c, "question": f"capital of {c}", "answer": city.upper()}
        for c, city in CAPITALS.items()
    ]
    reflection = ScriptedReflection(trigger="UPPERCASE letters", rule="Write it in UPPERCASE.")
    result = gg.optimize(
        graph,
        examples[:4],
        examples[4:],
        metric=capital_metric,
        reflection_lm=reflection,
        max_rollouts=60,
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert result.seed_score == 0.0 and result.best_score == 1.0
    assert result.changed_modules() == {
        "writer": (
            "Write the answer from the plan: {plan}",
            "Write the answer from the plan: {plan} Write it in UPPERCASE.",
        )
    }
    writer_reflections = [p for p in reflection.prompts if "`writer`" in p]
    assert writer_reflections
    for prompt in writer_reflections:  # the writer's own calls, not the planner's
        assert "look up the capital of" in prompt and "Plan the answer." not in prompt
    assert discover(graph)["writer"].text == "Write the answer from the plan: {plan}"
    result.apply(graph)
    assert graph.invoke({"question": "capital of Peru"})["answer"] == "LIMA"


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def calculator_agent():
    def reply(messages):
        if isinstance(messages[-1], ToolMessage):
            return f"The answer is {messages[-1].text}."
        if "calculator" in messages[0].text:
            a, b = map(int, re.findall(r"\d+", messages[-1].text))
            return AIMessage(
                "", tool_calls=[{"name": "multiply", "args": {"a": a, "b": b}, "id": None}]
            )
        return "The answer is 42."  # a guess

    model = ScriptedChatModel(script=reply)
    return create_agent(model, [multiply], system_prompt="You are a maths assistant.")


def calculator_metric(example, prediction):
    final = prediction["messages"][-1].text
    if f"The answer is {example['answer']}." == final:
        return 1.0
    return gg.Score(value=0.0, feedback=f"Got '{final}'. Never guess: use the calculator tool.")


def test_tool_using_agent_learns_to_call_its_tool(tmp_path):
    examples = [
        {"id": f"m{a}x{b}", "question": f"What is {a} times {b}?", "answer": str(a * b)}
        for a, b in [(3, 4), (6, 7), (5, 9), (8, 8), (2, 11), (12, 3)]
    ]
    reflection = ScriptedReflection(
        trigger="use the calculator tool", rule="Use the calculator tool."
    )
    result = gg.optimize(
        calculator_agent(),
        examples[:3],
        examples[3:],
        metric=calculator_metric,
        reflection_lm=reflection,
        max_rollouts=40,
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert result.best_score == 1.0 > result.seed_score
    assert result.best_candidate["model"] == "You are a maths assistant. Use the calculator tool."
    assert all(
        "The answer is 42." in p for p in reflection.prompts
    )  # the model's own output was shown
