"""What a refused request is told, in the error shape its operation documents.

The simulator explains a refusal as an RFC 9457 problem (``title``, ``detail``, ``errors``). An
operation that documents its own error body gets that body instead, conformed to the schema
with the problem as the hint: members of the hint that fit are kept, the rest is generated. A
generated ``message`` is a sentence of random words, which tells a client (a model being
evaluated, a developer) nothing about what was wrong, so :func:`problem_hint` puts the problem
where the schema has room for it, by the names APIs use:

* ``message``, ``detail``, ``description``, ``error_description``, ``error_message``, ``msg``,
  ``reason``: the detail, with what is wrong where (:func:`spelled_out`);
* ``code``, ``status``, ``status_code``, ``statusCode``: the HTTP status (a number or its text,
  as the schema types it); ``title``: the title; ``error`` where it is text: the message when
  the object has no message member of its own (PowerDNS's ``{"error": "..."}``), else the title;
* ``param``, ``field``, ``parameter``: the first input at fault (a parameter's name, or the body
  member the problem's pointer starts at);
* ``errors``, a list: one item per problem (an object with its message, name and where, or
  the text ``body /name: ...``);
* one level down, an object member named ``error`` or ``problem`` (Stripe's and Google's
  ``{"error": {"message": ...}}``) the same way.

What does not fit the schema is left to the generator, as before.
"""

from __future__ import annotations

from typing import Any

from simulator.spec.model import JSONSchema
from simulator.spec.navigation import array_items, deref, object_properties, primary_type

from .validation import Problem

MESSAGE_NAMES = frozenset({"message", "detail", "description", "error_description", "error_message", "msg",
                           "reason"})
STATUS_NAMES = frozenset({"code", "status", "status_code", "statusCode"})
PARAM_NAMES = frozenset({"param", "field", "parameter"})
WRAPPER_NAMES = ("error", "problem")


def problem_hint(root: JSONSchema, schema: JSONSchema, problem: dict[str, Any],
                 problems: list[Problem]) -> dict[str, Any]:
    """The hint a documented JSON error body is conformed to: ``problem`` (the RFC 9457 report
    of ``problems``) plus ``message``, ``code`` and ``error`` (kept where the schema allows other
    members), with its parts also under the names ``schema`` gives them and in the types it
    gives them (see the module text)."""
    status, title, detail = problem["status"], problem["title"], problem["detail"]
    said = spelled_out(detail, problems)
    hint = {**problem, "message": detail, "code": status, "error": title,
            **_members(root, schema, status, title, said, problems)}
    for name in WRAPPER_NAMES:
        inner = object_properties(root, deref(root, schema)).get(name)
        if inner is not None and primary_type(root, deref(root, inner)) == "object":
            hint[name] = _members(root, inner, status, title, said, problems)
    return hint


def spelled_out(detail: str, problems: list[Problem], most: int = 3) -> str:
    """``detail`` with what is wrong where, for a single message field: ``1 problem(s) with the
    request: body /name: 5 is not of type "string"``."""
    told = [p for p in problems if p.message != detail]  # a 404's one problem is its detail
    if not told:
        return detail
    parts = [_where(p) + f": {p.message}" for p in told[:most]]
    more = f"; and {len(told) - most} more" if len(told) > most else ""
    return f"{detail}: {'; '.join(parts)}{more}"


def _where(problem: Problem) -> str:
    """Where a problem is: ``body /name``, ``path id``, ``query``."""
    return f"{problem.location} {' '.join(x for x in (problem.name, problem.pointer) if x)}".strip()


def _at_fault(problem: Problem) -> str:
    """The input a problem names: a parameter's name, else the body member its pointer starts at."""
    if problem.name:
        return problem.name
    tokens = [t for t in problem.pointer.split("/") if t]
    return tokens[0] if tokens else ""


def _members(root: JSONSchema, schema: JSONSchema, status: int, title: str, detail: str,
             problems: list[Problem]) -> dict[str, Any]:
    """The problem's parts under the names of ``schema``'s own properties that fit them."""
    out: dict[str, Any] = {}
    props = object_properties(root, deref(root, schema))
    kinds = {name: primary_type(root, deref(root, prop)) for name, prop in props.items()}
    # {"error": "..."} with no message member of its own: the error text is the message
    error_says = not any(name in MESSAGE_NAMES and kinds[name] in (None, "string") for name in props)
    for name, prop in props.items():
        kind = kinds[name]
        if kind in (None, "string") and (name in MESSAGE_NAMES or (name == "error" and error_says)):
            out[name] = detail
        elif name in STATUS_NAMES and kind in ("integer", "number"):
            out[name] = status
        elif name in STATUS_NAMES and kind in (None, "string"):
            out[name] = str(status)
        elif name in ("title", "error") and kind in (None, "string"):
            out[name] = title
        elif name in PARAM_NAMES and kind in (None, "string") and problems and _at_fault(problems[0]):
            out[name] = _at_fault(problems[0])
        elif name == "errors" and kind == "array" and problems:
            items = array_items(root, deref(root, prop))
            item_kind = primary_type(root, deref(root, items)) if items is not None else None
            if items is not None and item_kind == "object":
                out[name] = [_item(root, items, p) for p in problems]
            elif items is not None and item_kind == "string":
                out[name] = [_where(p) + f": {p.message}" for p in problems]
    return out


def _item(root: JSONSchema, schema: JSONSchema, problem: Problem) -> dict[str, Any]:
    """One problem as an item of a documented ``errors`` list."""
    item = problem.to_json()
    for name, prop in object_properties(root, deref(root, schema)).items():
        if primary_type(root, deref(root, prop)) not in (None, "string"):
            continue
        if name in MESSAGE_NAMES:
            item[name] = problem.message
        elif name in PARAM_NAMES and _at_fault(problem):
            item[name] = _at_fault(problem)
    return item
