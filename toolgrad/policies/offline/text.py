"""The offline policy's words: names as words, tools as imperative clauses, the values of a
response worth citing, and the answer's sentences (the query is :mod:`toolgrad.policies.offline.query`'s).

What a caller may rely on: every function here is pure and deterministic (a function of its
arguments only); tool and operation names never appear in what it writes, only the spec's
summaries and descriptions, argument names as words ("pet ID") and values from real calls.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from simulator.environments.resources import _WRAPPER_KEYS, Resource
from simulator.spec.model import Operation
from toolgrad.records import Step

if TYPE_CHECKING:
    from .catalog import ToolInfo

_KEY_FIELDS = (
    "id",
    "key",
    "uuid",
    "name",
    "username",
    "title",
    "slug",
    "status",
    "state",
    "email",
    "type",
    "total",
    "count",
    "quantity",
)
_VERBS = {
    "returns": "get",
    "return": "get",
    "provides": "get",
    "provide": "get",
    "gets": "get",
    "retrieves": "retrieve",
    "finds": "find",
    "lists": "list",
    "creates": "create",
    "updates": "update",
    "deletes": "delete",
    "adds": "add",
    "places": "place",
    "logs": "log",
    "uploads": "upload",
    "sends": "send",
    "sets": "set",
    "replaces": "replace",
    "removes": "remove",
    "searches": "search",
    "fetches": "fetch",
    "buys": "buy",
    "merges": "merge",
    "performs": "perform",
    "destroys": "delete",
}
_IMPERATIVES = frozenset(
    {
        "get",
        "list",
        "find",
        "create",
        "update",
        "delete",
        "add",
        "place",
        "log",
        "upload",
        "send",
        "set",
        "replace",
        "remove",
        "search",
        "fetch",
        "buy",
        "merge",
        "perform",
        "retrieve",
        "check",
        "show",
        "make",
        "post",
        "put",
        "register",
        "start",
        "stop",
        "cancel",
        "run",
        "change",
        "edit",
        "look",
    }
)


# -- names and phrases --------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@lru_cache(maxsize=1 << 16)  # field names, phrased again for every step that shows them
def as_words(name: str) -> str:
    """``petId`` -> "pet ID", ``feed_key`` -> "feed key"."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ")
    parts = [("ID" if p.lower() == "id" else p.lower()) for p in text.split()]
    return " ".join(parts) or name


def operation_phrase(op: Operation, kind: str, resource: Resource | None) -> str:
    """An imperative clause for what the operation does: "find Pets by status"."""
    text = op.summary or (op.description.split(". ")[0] if op.description else "")
    text = " ".join(text.replace("\n", " ").split()).rstrip(". ")
    if not text:
        noun = as_words(re.sub(r"_\d+$", "", resource.name)) if resource else as_words(op.operation_id)
        text = {
            "list": f"list {noun} records",
            "create": f"create a {noun}",
            "read": f"get the {noun}",
            "replace": f"replace the {noun}",
            "update": f"update the {noun}",
            "delete": f"delete the {noun}",
        }.get(kind, as_words(op.operation_id))
    words = text.split()
    first = _VERBS.get(words[0].lower(), words[0].lower())
    if first not in _IMPERATIVES:
        return " ".join(["get", _lower_first(words[0]), *words[1:]])[:160]
    return " ".join([first, *words[1:]])[:160]


def _lower_first(word: str) -> str:
    return word if word.isupper() and len(word) > 1 else word.lower()


# -- text ---------------------------------------------------------------------------------------


def instruction(tools: list[ToolInfo]) -> str:
    parts = [tools[0].phrase] + [f"then {t.phrase} using what the previous call returned" for t in tools[1:]]
    text = ", ".join(parts)
    return text[:1].upper() + text[1:] + "."


def sequence(clauses: list[str], *, also: bool) -> str:
    if len(clauses) == 1:
        return f"Also, {clauses[0]}." if also else f"{clauses[0][:1].upper()}{clauses[0][1:]}."
    parts = [f"{'Separately, first' if also else 'First'}, {clauses[0]}."]
    parts += [f"Then, {c}." for c in clauses[1:-1]]
    parts.append(f"Finally, {clauses[-1]}.")
    return " ".join(parts)


def noun_of(info: ToolInfo | None) -> str:
    return as_words(re.sub(r"_\d+$", "", info.resource.name)) if info and info.resource else "result"


def _plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")


def ask_for(step: Step, info: ToolInfo | None) -> str:
    body = step.response
    if isinstance(body, list) or (isinstance(body, dict) and _listing(body) is not None):
        return f"how many {_plural(noun_of(info))} there are"
    if isinstance(body, dict):
        target = _unwrap(body)
        names = [k for k in _cited_keys(target, 3)]
        if names:
            return f"the {noun_of(info)}'s {join_words([as_words(k) for k in names])}"
    return "what you find"


def finding(step: Step, info: ToolInfo | None) -> str:
    phrase = info.phrase if info else "the request"
    lead = phrase[:1].upper() + phrase[1:]
    body = step.response
    items = body if isinstance(body, list) else _listing(body) if isinstance(body, dict) else None
    if items is not None:
        cited = [c for c in (_cite(x, 2) for x in items[:3]) if c]
        return f"{lead}: {len(items)} result(s)" + (f", including {'; '.join(cited)}." if cited else ".")
    said = _cite(body, 4) if isinstance(body, dict) else say(body)
    return f"{lead}: {said}." if said else f"{lead}: done."


def _unwrap(record: dict[str, Any]) -> dict[str, Any]:
    for key in ("data", "item", "result"):
        inner = record.get(key)
        if isinstance(inner, dict) and not any(k in record for k in ("id", "name")):
            return inner
    return record


def _cited_keys(record: dict[str, Any], limit: int) -> list[str]:
    """Up to ``limit`` keys worth citing: an id first, then names, statuses, counts."""
    sayable = [k for k, v in record.items() if say(v) is not None]
    picked = [k for k in sayable if norm(k) == "id"] or [k for k in sayable if norm(k).endswith("id")][:1]
    for wanted in _KEY_FIELDS:
        for k in sayable:
            if len(picked) < limit and norm(k) == wanted and k not in picked:
                picked.append(k)
    # a value (a number, a text) before a flag: a yes/no says nothing checkable of the response
    return picked or sorted(sayable, key=lambda k: isinstance(record[k], bool))[: min(limit, 2)]


def _cite(record: Any, limit: int) -> str:
    """Key fields of a record: "ID 4, name 'doggie', status 'available'"."""
    if not isinstance(record, dict):
        return say(record) or ""
    target = _unwrap(record)
    return ", ".join(f"{as_words(k)} {say(target[k])}" for k in _cited_keys(target, limit))


def _listing(body: dict[str, Any]) -> list[Any] | None:
    for key in _WRAPPER_KEYS:
        if isinstance(body.get(key), list):
            return list(body[key])
    return None


def say(value: Any) -> str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        text = " ".join(value.split())
        return f"'{text}'" if text and len(text) <= 60 else None
    if (
        isinstance(value, list)
        and value
        and len(value) <= 3
        and all(isinstance(v, (str, int, float)) for v in value)
    ):
        parts = [s for s in (say(v) for v in value) if s]
        return join_words(parts) if len(parts) == len(value) else None
    return None


def join_words(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
