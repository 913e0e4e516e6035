"""Scripted models for offline tests of gepa_graph and of users' own agents.

``chat_model.ScriptedChatModel``: a LangChain chat model that records what it receives and
replies from a script (tool calls included). ``reflection.ScriptedReflectionLM`` and
``reflection.register_scripted_provider``: reflection LMs as plain callables or as a LiteLLM
custom provider.
"""
