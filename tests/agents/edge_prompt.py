"""Agentic RAG in the style of the LangGraph "agentic RAG" tutorial.

The model decides to call a retriever tool; the conditional edge after ``retrieve``,
``grade_documents``, asks a grader LLM (``with_structured_output``) with ``GRADE_PROMPT`` whether
the document is relevant and routes to ``generate_answer`` or ``rewrite_question``.
"""

from __future__ import annotations

import re
from typing import Literal

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from pydantic import BaseModel, Field

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, call, final_text, graded, says

PATTERN = "a prompt used only in a conditional-edge function (grader) + structured output"
GRADE_FIX, ANSWER_FIX = "PARAPHRASES COUNT AS RELEVANT", "START WITH THE YEAR"
DOCS = {
    "eiffel": "The Eiffel Tower was inaugurated in 1889 for the World's Fair.",
    "louvre": "The Louvre first admitted visitors in 1793.",
    "prado": "The Prado Museum opened to the public in 1819.",
    "colosseum": "The Colosseum was inaugurated in 80 AD by Titus.",
}

GRADE_PROMPT = (
    "You are a grader assessing relevance of a retrieved document to a user question."
    "\nHere is the retrieved document:\n\n{context}\n\nHere is the user question: "
    "{question}\nIf the document contains the exact words of the question, grade it "
    "as relevant. Give a binary score 'yes' or 'no'."
)
REWRITE_PROMPT = (
    "Look at the input and try to reason about the underlying semantic intent."
    "\nHere is the initial question:\n-------\n{question}\n-------\n"
    "Formulate an improved question:"
)
GENERATE_PROMPT = (
    "You are an assistant for question-answering tasks. Use the following pieces "
    "of retrieved context to answer the question. Use three sentences maximum.\n"
    "Question: {question}\nContext: {context}"
)


class GradeDocuments(BaseModel):
    """Grade documents using a binary score for relevance check."""

    binary_score: str = Field(description="Relevance score: 'yes' if relevant, or 'no'")


@tool
def retrieve_landmarks(query: str) -> str:
    """Search and return facts about famous landmarks."""
    return next((doc for key, doc in DOCS.items() if key in query.lower()), "Nothing found.")


def grade(messages) -> AIMessage:
    document = messages[-1].text.split("retrieved document:")[-1].split("Here is the user")[0]
    yes = "open" in document or says(messages, GRADE_FIX) and "Nothing found." not in document
    return call("GradeDocuments", binary_score="yes" if yes else "no")


def generate(messages) -> str:
    context = messages[-1].text.split("Context: ")[-1]
    year = re.search(r"\d+", context)
    return f"{year.group()}: {context}" if year and says(messages, ANSWER_FIX) else context


def build() -> AgentCase:
    response_model = ScriptedChatModel(  # searches on the first turn, gives up after a rewrite
        script=lambda m: call("retrieve_landmarks", query=m[0].text) if len(m) == 1 else "No idea."
    )
    grader_model = ScriptedChatModel(script=grade)
    rewrite_model = ScriptedChatModel(script=lambda m: "Tell me the opening date, please.")
    answer_model = ScriptedChatModel(script=generate)

    def generate_query_or_respond(state: MessagesState) -> dict:
        response = response_model.bind_tools([retrieve_landmarks]).invoke(state["messages"])
        return {"messages": [response]}

    def grade_documents(state: MessagesState) -> Literal["generate_answer", "rewrite_question"]:
        prompt = GRADE_PROMPT.format(
            question=state["messages"][0].content, context=state["messages"][-1].content
        )
        response = grader_model.with_structured_output(GradeDocuments).invoke(
            [{"role": "user", "content": prompt}]
        )
        return "generate_answer" if response.binary_score == "yes" else "rewrite_question"

    def rewrite_question(state: MessagesState) -> dict:
        prompt = REWRITE_PROMPT.format(question=state["messages"][0].content)
        response = rewrite_model.invoke([{"role": "user", "content": prompt}])
        return {"messages": [HumanMessage(content=response.content)]}

    def generate_answer(state: MessagesState) -> dict:
        prompt = GENERATE_PROMPT.format(
            question=state["messages"][0].content, context=state["messages"][-1].content
        )
        return {"messages": [answer_model.invoke([{"role": "user", "content": prompt}])]}

    builder = StateGraph(MessagesState)
    builder.add_node(generate_query_or_respond)
    builder.add_node("retrieve", ToolNode([retrieve_landmarks]))
    builder.add_node(rewrite_question)
    builder.add_node(generate_answer)
    builder.add_edge(START, "generate_query_or_respond")
    builder.add_conditional_edges(
        "generate_query_or_respond", tools_condition, {"tools": "retrieve", END: END}
    )
    builder.add_conditional_edges("retrieve", grade_documents)
    builder.add_edge("generate_answer", END)
    builder.add_edge("rewrite_question", "generate_query_or_respond")
    graph = builder.compile()

    def metric(example, state):
        answer = final_text(state)
        return graded(
            [
                (
                    "retrieve",
                    example["answer"] in answer,
                    f"The answer lacks the year {example['answer']}: the grader rejected a relevant "
                    f'document; the grading prompt should say "{GRADE_FIX}".',
                ),
                (
                    "generate_answer",
                    answer.startswith(example["answer"]),
                    f'The answer must open with the year: the answer prompt should say "{ANSWER_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={
            "respond": response_model,
            "grader": grader_model,
            "rewrite": rewrite_model,
            "answer": answer_model,
        },
        examples=[
            {
                "id": k,
                "question": f"When did the {k.title()} open?",
                "answer": re.search(r"\d+", doc).group(),
            }
            for k, doc in DOCS.items()
        ],
        metric=metric,
        expected={
            "retrieve": "You are a grader assessing relevance",
            "rewrite_question": "reason about the underlying semantic intent",
            "generate_answer": "You are an assistant for question-answering tasks.",
        },
        fixes={"retrieve": GRADE_FIX, "generate_answer": ANSWER_FIX},
    )
