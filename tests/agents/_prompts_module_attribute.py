"""Prompts of the module_attribute agent, kept apart from the graph as many projects do."""

MAIN_PROMPT = """You are a careful arithmetic tutor.
Solve the problem below and explain your reasoning briefly.

Problem: {question}"""
