"""The one parser of prompt templates: which ``{variables}`` a template has, and its literal text.

Discovery lists a prompt's variables with it, the reflection guard rejects a rewrite that drops
or invents one, and the model boundary re-renders templates from it, so all three agree on what
a variable is: ``str.format``'s rules (``{x}``, ``{x!r}``, ``{x:>5}``, ``{{`` for a brace) for
f-string templates, ``{{x}}`` for mustache ones.
"""

from __future__ import annotations

import re
import string

# A mustache variable, ``{{name}}`` or dotted ``{{user.name}}`` (a path into the inputs, as in
# MLflow's prompt templates); group 1 is the name. The only mustache pattern: the Prompt
# Registry's brace conversion (gepa_graph.tracking.registry) reads templates with it too.
MUSTACHE_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_MUSTACHE_ANY = re.compile(r"\{\{|\}\}")


def parse(text: str, template_format: str = "f-string") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(literals, variables)``: ``len(literals) == len(variables) + 1``, rendered alternately.

    Text that is not a template in ``template_format`` parses as one literal with no variables.
    """
    if template_format == "mustache":
        pieces = MUSTACHE_VARIABLE.split(text)
        if not any(_MUSTACHE_ANY.search(literal) for literal in pieces[0::2]):
            return tuple(pieces[0::2]), tuple(pieces[1::2])
        return (text,), ()
    if template_format != "f-string":
        return (text,), ()
    literals: list[str] = [""]
    names: list[str] = []
    try:
        for literal, field_name, _spec, _conversion in string.Formatter().parse(text):
            literals[-1] += literal
            if field_name is None:
                continue
            if not field_name.isidentifier():  # {} or {0} or {a.b}: not a named template variable
                return (text,), ()
            names.append(field_name)
            literals.append("")
    except ValueError:  # unbalanced braces: not a template
        return (text,), ()
    return tuple(literals), tuple(names)


def variables(text: str, template_format: str = "f-string") -> tuple[str, ...]:
    """The distinct variables of a template, sorted: what a rewrite must keep."""
    return tuple(sorted(set(parse(text, template_format)[1])))


def check(text: str, template_format: str = "f-string") -> None:
    """Raise ValueError when ``text`` is not a valid template of ``template_format``
    (``parse`` would read it as plain text; a rewrite of a template must stay one)."""
    if template_format == "f-string":
        list(string.Formatter().parse(text))
