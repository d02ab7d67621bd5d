"""What a tool's spec says about the values a call sends, for the validity checks: which values
the schema fixes (so no user has to state them), which arguments carry credentials, and whether
the call writes.

What a caller may rely on: :func:`toolbox_terms` reads only the spec (parameter schemas, security
schemes, HTTP method), so the generator and the certifier, given the same installed
environments, see the same terms.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulator.canonical import pointer_tokens
from simulator.spec.model import JSONSchema, Spec
from toolgrad.json_values import loosely_equal
from toolgrad.records import Step

if TYPE_CHECKING:  # the checks run where a toolbox is already built; importing one costs the whole simulator
    from toolgrad.toolbox import BoundTool, Toolbox

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_COMBINATORS = ("allOf", "anyOf", "oneOf")
_MAX_BRANCH_DEPTH = 4


@dataclass(frozen=True, slots=True)
class ToolTerms:
    parameters: JSONSchema  # the tool's parameters, as a model sees them
    credentials: frozenset[str]  # top-level arguments bound to an apiKey security scheme
    writes: bool  # its HTTP method may change state (anything but GET, HEAD, OPTIONS)
    # pointer -> schemas_at(parameters, pointer): the tool's terms serve every sample that calls it
    _schemas: dict[str, list[dict[str, Any]]] = field(default_factory=dict, compare=False, repr=False)

    def schemas_at(self, pointer: str) -> list[dict[str, Any]]:
        """:func:`schemas_at` of the tool's parameters (each pointer worked out once)."""
        nodes = self._schemas.get(pointer)
        if nodes is None:
            nodes = self._schemas[pointer] = schemas_at(self.parameters, pointer)
        return nodes

    def fixed_by_schema(self, pointer: str, value: Any) -> str:
        """Why the schema fixes ``value`` at ``pointer`` into the arguments ("" when it does
        not): it is the ``const``, the only ``enum`` member, or the ``default`` there."""
        for node in self.schemas_at(pointer):
            if "const" in node and _same(node["const"], value):
                return "the schema's const"
            enum = node.get("enum")
            if isinstance(enum, list) and len(enum) == 1 and _same(enum[0], value):
                return "the schema's only enum value"
            if "default" in node and _same(node["default"], value):
                return "the schema's default"
        return ""


TermsOf = Callable[[Step], "ToolTerms | None"]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return loosely_equal(a, b) or (a is None and b is None)


def _branches(schema: Any, depth: int = 0) -> list[dict[str, Any]]:
    """``schema`` and every schema its allOf/anyOf/oneOf reach."""
    if not isinstance(schema, dict):
        return []
    out = [schema]
    if depth < _MAX_BRANCH_DEPTH:
        for key in _COMBINATORS:
            for sub in schema.get(key) or ():
                out.extend(_branches(sub, depth + 1))
    return out


def schemas_at(parameters: JSONSchema, pointer: str) -> list[dict[str, Any]]:
    """Every schema that may govern the value at ``pointer`` into the arguments."""
    nodes = _branches(parameters)
    for token in pointer_tokens(pointer):
        nxt: list[dict[str, Any]] = []
        for node in nodes:
            props = node.get("properties")
            if isinstance(props, dict) and token in props:
                nxt.extend(_branches(props[token]))
            elif token.isdigit():
                prefix = node.get("prefixItems")
                if isinstance(prefix, list) and int(token) < len(prefix):
                    nxt.extend(_branches(prefix[int(token)]))
                else:
                    nxt.extend(_branches(node.get("items")))
            else:
                nxt.extend(_branches(node.get("additionalProperties")))
        nodes = nxt
    return nodes


def credential_arguments(bound: BoundTool, spec: Spec) -> frozenset[str]:
    """The tool's arguments that an apiKey security scheme names (header names case-blind)."""
    schemes = {(s.get("in"), str(s.get("name", "")).lower())
               for s in spec.security_schemes.values() if isinstance(s, dict) and s.get("type") == "apiKey"}
    return frozenset(b.argument for b in bound.tool.bindings
                     if b.location in ("header", "query", "cookie") and (b.location, b.name.lower()) in schemes)


def terms_of(bound: BoundTool, spec: Spec) -> ToolTerms:
    return ToolTerms(bound.tool.parameters, credential_arguments(bound, spec), bound.tool.method not in READ_METHODS)


_MEMO: weakref.WeakKeyDictionary[Toolbox, dict[str, ToolTerms]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def toolbox_terms(toolbox: Toolbox, resolve: Callable[[Step], str | None] | None = None) -> TermsOf:
    """The terms of a step's tool in ``toolbox`` (None for a tool it does not hold).
    ``resolve`` maps a step to the toolbox's name for its tool (default: the recorded name)."""
    with _LOCK:
        memo = _MEMO.setdefault(toolbox, {})

    def terms(step: Step) -> ToolTerms | None:
        name = resolve(step) if resolve is not None else step.tool
        bound = toolbox.tools.get(name) if name else None
        if bound is None:
            return None
        hit = memo.get(bound.name)
        if hit is None:
            hit = memo[bound.name] = terms_of(bound, toolbox.environments[bound.env].spec)
        return hit

    return terms
