"""Default prompts of the retrieval_configurable agent."""

QUERY_SYSTEM_PROMPT = """Generate a search query to retrieve documents that may help answer the user's question. Previously, you made the following queries:

<previous_queries/>
{queries}
</previous_queries>

System time: {system_time}"""

RESPONSE_SYSTEM_PROMPT = """You are a helpful librarian. Answer the user's question from the retrieved documents.

{retrieved_docs}

System time: {system_time}"""
