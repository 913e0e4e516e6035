"""Adapters from agent frameworks to the core's System protocol; installed as
``gepa_graph.integrations``. ``langgraph`` is the one today."""
