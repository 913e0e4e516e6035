"""Every place this integration leans on LangGraph, LangChain or provider SDK details that are
not a documented API, and nowhere else.

LangGraph has no public way to swap the runnable of a compiled node, to read the function a
node wraps, or to name the node a callback event belongs to inside a subgraph; LangChain none
to see every model call's input; the SDKs none to see every request. Those touch points live in
this package and nowhere else; ``tests/test_langgraph_internals.py`` checks each one against the
installed libraries so an upgrade that moves them fails loudly instead of silently optimizing
nothing.

- ``graphs``: what a compiled graph holds (nodes, edges, tools, tasks, interrupts) and its copy;
- ``schemas``: state, input and context schemas, and the field defaults of configuration classes;
- ``patching``: replacing library functions in place, once and reversibly;
- ``langchain_models``: every LangChain chat model and LLM entry point, its input rewritten;
- ``run_context``: the running runnable's config, carried into the threads a run starts;
- ``sdk``: where LiteLLM and the OpenAI SDK are intercepted, and how their requests read.
"""
