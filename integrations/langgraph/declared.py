"""``gg.prompt(name, default)``: a prompt the scanner cannot see, declared where it is used.

Inside any node (or a tool, or a function a node calls) write::

    instructions = gg.prompt("grader", "Grade the answer from 1 to 5 ...")

Outside an optimization it returns ``default``. During a rollout the candidate's text replaces it
where it reaches a model (the model boundary rewrites the default there, once); a default too
short to be recognised there is replaced here instead, from the run's config (the run's
``boundary.Substitution``), so concurrent rollouts never see each other's text and no user
object is mutated.

Discovery finds these calls by reading the source of the functions a graph's nodes reach
(see ``user_code.declared_calls``) when the name and default are literals or module-level
constants. Where that is impossible (source unavailable, computed names, a conditional-edge function), declare
them: ``LangGraphSystem(graph, prompts={"grader": "Grade the answer ..."})``.
"""

from __future__ import annotations

from gepa_graph.errors import WrongType
from gepa_graph.integrations.langgraph import boundary


def prompt(name: str, default: str) -> str:
    """The text of prompt ``name`` for the current run: the candidate's, else ``default``."""
    if not isinstance(name, str) or not name:
        raise WrongType(f"gg.prompt name must be a non-empty str, got {name!r}")
    if not isinstance(default, str):
        raise WrongType(
            f"gg.prompt default for {name!r} must be a str, got {type(default).__name__}"
        )
    substitution = boundary.active()
    if substitution is None:  # outside a run that substitutes prompts
        return default
    seed = substitution.seeds.get(name)
    if seed is not None and seed.text == default and seed.pattern().matchable:
        return default  # the model boundary rewrites it where it arrives, once
    return substitution.prompts.get(name, default)
