"""Argument values from schemas: whether an earlier value fits an argument, the value as the
argument's type, and a plausible value when nothing earlier feeds it (enum members, small
integer ranges, defaults and examples, else :func:`simulator.datagen.generate.generate_value`), each
drawn from a stable hash of the caller's salt.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from simulator.datagen.generate import CompiledSchema, compile_schema
from simulator.spec.model import JSONSchema
from simulator.spec.navigation import array_items, deref, object_properties, primary_type, required_properties
from toolgrad.sampling import stable_hash, stable_int

from .catalog import ArgSpec


def fits(value: Any, schema: JSONSchema) -> bool:
    return fitter(schema)(value)


def fitter(schema: JSONSchema) -> Callable[[Any], bool]:
    """``fits(value, schema)`` as a function of the value: the schema read once, for an
    argument whose candidates are many (every id of every list item seen), and kept per schema
    object (an argument's, asked at every call of its tool)."""
    hit = _FITTERS.get(id(schema))
    if hit is None or hit[0] is not schema:
        if len(_FITTERS) >= _COMPILED_MAX:
            _FITTERS.clear()
        hit = _FITTERS[id(schema)] = (schema, _fitter(schema))  # the schema held: its id stays its own
    return hit[1]


_FITTERS: dict[int, tuple[JSONSchema, Callable[[Any], bool]]] = {}


def _fitter(schema: JSONSchema) -> Callable[[Any], bool]:
    node = deref(schema, schema)
    enum = node.get("enum")
    members: list[Any] = enum if isinstance(enum, list) else []
    enum_text = [str(e) for e in members] if isinstance(enum, list) else None
    kind = primary_type(schema, node) or "string"

    def check(value: Any) -> bool:
        if enum_text is not None and value not in members and str(value) not in enum_text:
            return False
        if kind == "integer":
            return (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and value.lstrip("-").isdigit()
            )
        if kind == "number":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "string":
            return isinstance(value, (str, int)) and not isinstance(value, bool)
        return kind not in ("object", "array", "boolean")

    return check


def scalar_hash(value: Any) -> str:
    """``stable_hash(value)`` of a fact's value (a string or a number), remembered: the same ids
    and names are ranked again for every argument they might feed."""
    return _scalar_hash(type(value).__name__, value)


@lru_cache(maxsize=1 << 16)
def _scalar_hash(kind: str, value: Any) -> str:  # the type in the key: 1, 1.0 and True hash apart
    return stable_hash(value)


def coerce(value: Any, schema: JSONSchema) -> Any:
    kind = primary_type(schema, deref(schema, schema)) or "string"
    if kind == "integer" and isinstance(value, str):
        return int(value)
    if kind == "string" and isinstance(value, int):
        return str(value)
    return value


def generate(schema: JSONSchema, salt: tuple[Any, ...], name: str | None) -> Any:
    """``generate_value(schema, sha256 of the salt, name=name)``, or None when the schema admits
    no value."""
    return _generate(_compiled(schema)[0], salt, name)


def _generate(compiled: CompiledSchema, salt: tuple[Any, ...], name: str | None, elide: tuple[str, ...] = ()) -> Any:
    try:
        return compiled.generate(stable_hash("offline", *salt), name=name, elide=elide)
    except ValueError:
        return None


# id(schema) -> (the schema, held so that its id stays its own; compiled; its optional root properties)
_COMPILED: dict[int, tuple[JSONSchema, CompiledSchema, tuple[str, ...]]] = {}
_COMPILED_MAX = 4096


def _compiled(schema: JSONSchema) -> tuple[CompiledSchema, tuple[str, ...]]:
    """``compile_schema(schema)`` by the schema object (compile_schema keys its cache by the
    schema's JSON text, and writing a request body's schema out costs up to a tenth of a
    millisecond a call), and the root properties :func:`minimal` prunes. The schemas here are a
    toolbox's tool schemas (never changed)."""
    hit = _COMPILED.get(id(schema))
    if hit is None or hit[0] is not schema:
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        hit = _COMPILED[id(schema)] = (schema, compile_schema(schema), _optional_root_properties(schema))
    return hit[1], hit[2]


def _optional_root_properties(schema: JSONSchema) -> tuple[str, ...]:
    """The root properties :func:`_prune` drops (it keeps the required ones)."""
    required = set(required_properties(schema, schema))
    return tuple(key for key in object_properties(schema, schema) if key not in required)


def minimal(schema: JSONSchema, salt: tuple[Any, ...], name: str | None) -> Any:
    """A generated value with only what the schema requires: objects keep their required
    properties, lists their first ``minItems`` items (at least one), recursively; the full
    generated value when the pruned one does not validate.

    The root's optional properties, pruned anyway, are not generated where the walk can leave
    them out changing nothing else (``generate(elide=...)``): a request body's few required
    fields cost a fraction of its whole value. The full value is made only when it is the answer."""
    compiled, optional = _compiled(schema)
    value = _generate(compiled, salt, name, optional)
    if not isinstance(value, (dict, list)):
        return value
    pruned = _prune(schema, schema, value)  # an elided member is optional: pruned away
    if compiled.is_valid(pruned):
        return pruned
    return _generate(compiled, salt, name) if optional else value


def _prune(root: JSONSchema, node: Any, value: Any) -> Any:
    if isinstance(value, dict):
        required = set(required_properties(root, node))
        props = object_properties(root, node)
        return {k: _prune(root, props.get(k, {}), v) for k, v in value.items() if k in required}
    if isinstance(value, list):
        items = array_items(root, node) or {}
        keep = max(1, int(deref(root, node).get("minItems", 0) or 0))
        return [_prune(root, items, v) for v in value[:keep]]
    return value


def plausible(arg: ArgSpec, salt: tuple[Any, ...]) -> Any:
    node = deref(arg.schema, arg.schema)
    enum = node.get("enum")
    if isinstance(enum, list) and enum:
        return enum[stable_int(*salt, arg.name) % len(enum)]
    low, high = node.get("minimum"), node.get("maximum")
    if node.get("type") == "integer" and isinstance(low, int) and isinstance(high, int) and high >= low:
        return low + stable_int(*salt, arg.name) % (high - low + 1)
    for key in ("default", "example"):
        if key in node:
            return node[key]
    examples = node.get("examples")
    if isinstance(examples, list) and examples:
        return examples[stable_int(*salt, arg.name) % len(examples)]
    value = minimal(arg.schema, (*salt, arg.name), arg.value_name)
    return value if value is not None else ("" if primary_type(arg.schema, node) == "string" else 1)


PAGE_SIZES = (2, 3, 4)  # records a list call asks for, where it takes a page size


def page_size(arg: ArgSpec, salt: tuple[Any, ...]) -> int | None:
    """A small page (2 to 4 records, drawn from ``salt``) for a list's page-size argument, or
    None when its schema admits none of them. A chain uses the first few records of a list; a
    short page keeps the sample's recorded responses, and its conversation, short."""
    if primary_type(arg.schema, deref(arg.schema, arg.schema)) != "integer":
        return None
    sizes = [size for size in PAGE_SIZES if _compiled(arg.schema)[0].is_valid(size)]
    return sizes[stable_int(*salt, arg.name, "page") % len(sizes)] if sizes else None
