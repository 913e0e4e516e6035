"""Not a module: marks the folder whose links give mypy the installed names.

mypy reads ``integrations/`` and ``tracking/`` through the links beside this file, as
``gepa_graph.integrations`` and ``gepa_graph.tracking`` (their installed names; mypy cannot follow
the editable install's import hook). ``gepa_graph`` itself is checked from ``gepa_graph/``.
"""
