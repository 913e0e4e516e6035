"""Agentic RAG in the style of the LangGraph tutorial: the agent decides to call a retriever tool
made by ``create_retriever_tool`` (whose ``document_prompt`` is the library's ``"{page_content}"``,
no prompt of ours), the ``ToolNode`` runs it, and ``generate`` answers from the documents with a
``PromptTemplate``.
"""

from __future__ import annotations

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import PromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import create_retriever_tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from gepa_graph.testing.chat_model import ScriptedChatModel

from ._case import AgentCase, call, final_text, graded, last_human, says

PATTERN = "agentic RAG: create_retriever_tool (library document_prompt) + ToolNode + generate"
QUERY_FIX, ANSWER_FIX = "SEARCH FOR ONE KEYWORD", "ANSWER IN DAYS"
AGENT_SYSTEM_PROMPT = "You answer questions about the staff handbook. Search it before answering."
GENERATE_TEMPLATE = (
    "Answer the employee's question from the handbook excerpts.\n\nExcerpts:\n{context}\n\n"
    "Question: {question}"
)
HANDBOOK = {
    "vacation": (
        "How much vacation do I get per year?",
        "Staff get 25 vacation days a year.",
        "25 days",
    ),
    "parental": (
        "What is the parental leave?",
        "Parents get 90 days of parental leave.",
        "90 days",
    ),
    "sick": ("How many sick days can I take?", "Up to 10 sick days a year are paid.", "10 days"),
    "probation": ("How long is probation?", "Probation lasts 180 days.", "180 days"),
}


class KeywordRetriever(BaseRetriever):
    """Finds a handbook entry only when the query is its keyword."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        entry = HANDBOOK.get(query.strip().lower())
        return [Document(page_content=entry[1])] if entry else []


def agent_reply(messages) -> AIMessage | str:
    if messages[-1].type == "tool":
        return "Let me summarise what I found."
    question = last_human(messages)
    key = next(k for k, (q, _, _) in HANDBOOK.items() if q == question)
    return call("search_handbook", query=key if says(messages, QUERY_FIX) else question)


def generate_reply(messages) -> str:
    text = messages[-1].text
    excerpt = text.split("Excerpts:\n", 1)[1].split("\n\nQuestion:", 1)[0].strip()
    short = says(messages, ANSWER_FIX)
    if not excerpt:
        return "Not in the handbook." if short else "I could not find that in the handbook."
    number = next(w for w in excerpt.split() if w.isdigit())
    return f"{number} days." if short else f"The handbook says: {excerpt}"


def build() -> AgentCase:
    agent_model = ScriptedChatModel(script=agent_reply)
    answer_model = ScriptedChatModel(script=generate_reply)
    search = create_retriever_tool(
        KeywordRetriever(), "search_handbook", "Search the staff handbook."
    )
    generate_prompt = PromptTemplate.from_template(GENERATE_TEMPLATE)

    def agent(state: MessagesState) -> dict:
        model = agent_model.bind_tools([search])
        return {
            "messages": [model.invoke([SystemMessage(AGENT_SYSTEM_PROMPT), *state["messages"]])]
        }

    def generate(state: MessagesState) -> dict:
        question = state["messages"][0].text
        context = state["messages"][-1].text
        value = generate_prompt.invoke({"context": context, "question": question})
        return {"messages": [answer_model.invoke([HumanMessage(value.to_string())])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("retrieve", ToolNode([search]))
    builder.add_node("generate", generate)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition, {"tools": "retrieve", END: END})
    builder.add_edge("retrieve", "generate")
    builder.add_edge("generate", END)
    graph = builder.compile()

    def metric(example, state):
        answer = final_text(state)
        number = example["answer"].split()[0]
        return graded(
            [
                (
                    "agent",
                    number in answer,
                    f"The search found nothing for the whole question: the agent prompt should say "
                    f'"{QUERY_FIX}".',
                ),
                (
                    "generate",
                    not answer.startswith(("The handbook says", "I could not")),
                    f"Answer with the number of days only, like {example['answer']!r}: the answer "
                    f'prompt should say "{ANSWER_FIX}".',
                ),
            ]
        )

    return AgentCase(
        graph=graph,
        models={"agent": agent_model, "generate": answer_model},
        examples=[{"id": key, "question": q, "answer": a} for key, (q, _, a) in HANDBOOK.items()],
        metric=metric,
        expected={
            "agent": "You answer questions about the staff handbook.",
            "generate": "Answer the employee's question from the handbook excerpts.",
        },
        fixes={"agent": QUERY_FIX, "generate": ANSWER_FIX},
        not_modules=["{page_content}"],
    )
