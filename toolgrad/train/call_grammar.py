"""The grammar a served model's tool calls are held to: llama.cpp GBNF for the JSON of one call,
``{"name": <an offered tool>, "arguments": <an object that fits that tool's parameters>}``.

llama.cpp's own server does the same for Hermes-style calls (a "lazy" grammar that starts at
``<tool_call>``): the model chooses freely whether to call a tool and what to say, but a call it
opens can only name an offered tool and carry every required argument, each of its schema's type.
Keys come in the order the trainer writes them: ``name`` then ``arguments``, and argument keys
sorted (llama.cpp's converter puts required properties before optional ones, each group sorted).

The grammar holds the top level only: which keys, which are required, and each one's scalar type
or enum; nested objects, arrays, patterns and formats are left to the sandbox, which validates
every call. (Whole schemas made grammars that llama.cpp's parser rejects, and one that crashed
it, on specs in the wild.) A tool whose arguments' grammar llama.cpp still rejects takes any JSON
object.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

ANY_OBJECT: dict[str, Any] = {"type": "object"}


SCALARS = ("string", "integer", "number", "boolean")
MAX_ENUM = 64


def _value(schema: Any) -> dict[str, Any]:
    """What the grammar holds one argument to: an enum of scalars, a scalar type, else any JSON
    value (nested objects, arrays, unions: the sandbox validates those)."""
    if not isinstance(schema, dict):
        return {}
    enum = schema.get("enum")
    if (isinstance(enum, list) and 0 < len(enum) <= MAX_ENUM
            and all(isinstance(v, (str, int, float, bool)) for v in enum)):
        return {"enum": enum}
    kind = schema.get("type")
    return {"type": kind} if kind in SCALARS else {}


def _parameters(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool's parameters as the grammar holds them: the top-level object's keys, which of them
    are required, and each one's :func:`_value`."""
    parameters = tool.get("function", tool).get("parameters")
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    if not isinstance(properties, dict):
        return ANY_OBJECT
    required = parameters.get("required") if isinstance(parameters.get("required"), list) else []
    flat: dict[str, Any] = {"type": "object", "properties": {str(k): _value(v) for k, v in properties.items()}}
    if keys := [str(k) for k in required if k in properties]:
        flat["required"] = keys
    return flat


def _property_names(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        properties = schema.get("properties")
        if isinstance(properties, dict):
            yield from (str(key) for key in properties)
        for value in schema.values():
            yield from _property_names(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _property_names(value)


def _converter(tools: Sequence[Any]) -> Any:
    from llama_cpp.llama_grammar import SchemaConverter

    names = sorted({name for parameters in tools for name in _property_names(parameters)})
    return SchemaConverter(prop_order={name: i for i, name in enumerate(names)}, allow_fetch=False, dotall=False,
                           raw_pattern=False)


def _compiles(parameters: Any) -> bool:
    try:
        converter = _converter([parameters])
        converter.visit(converter.resolve_refs(json.loads(json.dumps(parameters)), "tool"), "arguments")
        converter.format_grammar()
    except Exception:  # llama.cpp's converter raises whatever it meets (asserts, KeyErrors, ...)
        return False
    return True


def _gbnf(named: Sequence[tuple[str, Any]]) -> str:
    converter = _converter([parameters for _, parameters in named])
    alternatives = []
    for index, (name, parameters) in enumerate(named):
        rule = converter.visit(converter.resolve_refs(json.loads(json.dumps(parameters)), f"tool{index}"),
                               f"tool{index}-arguments")
        alternatives.append(f'{converter._format_literal(json.dumps(name, ensure_ascii=False))} space "," space '
                            f'"\\"arguments\\"" space ":" space {rule}')
    converter._add_rule("root", '"{" space "\\"name\\"" space ":" space ( ' + " | ".join(alternatives)
                        + ' ) "}"')
    return str(converter.format_grammar())


def _named(tools: Sequence[dict[str, Any]]) -> list[tuple[str, Any]]:
    named = [(str(tool.get("function", tool).get("name")), _parameters(tool)) for tool in tools]
    return [(name, parameters if _compiles(parameters) else ANY_OBJECT) for name, parameters in named]


def call_gbnf(tools: Sequence[dict[str, Any]], accepts: Callable[[str], bool] | None = None) -> str:
    """The GBNF text for one call of one of ``tools`` (OpenAI tool dicts), without the tags.
    ``accepts`` is the parser that will read it (llama.cpp's, see :func:`call_grammar`): a tool
    whose arguments' grammar it rejects (a ``pattern`` in a regex dialect it does not read, say)
    takes any JSON object instead."""
    named = _named(tools)
    text = _gbnf(named)
    if accepts is None or accepts(text):
        return text
    named = [(name, parameters if accepts(_gbnf([(name, parameters)])) else ANY_OBJECT)
             for name, parameters in named]
    text = _gbnf(named)
    return text if accepts(text) else _gbnf([(name, ANY_OBJECT) for name, _ in named])


@functools.lru_cache(maxsize=64)
def _compiled(tools_json: str, accepts: Callable[[str], bool] | None) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_string(call_gbnf(json.loads(tools_json), accepts), verbose=False)


def _llama_accepts(vocab: Any) -> Callable[[str], bool]:
    """Whether llama.cpp's grammar parser reads a GBNF text. llama-cpp-python does not check:
    a grammar llama.cpp rejects crashes the process at the next completion, so every grammar is
    tried here first (and the answer remembered)."""
    import llama_cpp

    @functools.lru_cache(maxsize=256)
    def accepts(gbnf: str) -> bool:
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not sampler:
            return False
        llama_cpp.llama_sampler_free(sampler)
        return True

    return accepts


_ACCEPTS: dict[int, Callable[[str], bool]] = {}


def call_grammar(tools: Sequence[dict[str, Any]], llama: Any = None) -> Any:
    """A ``llama_cpp.LlamaGrammar`` for :func:`call_gbnf`, checked against ``llama``'s grammar
    parser (a ``llama_cpp.Llama``), built once per set of tools (a conversation sends the same
    tools with every turn; 845 tools take about 75 ms to build)."""
    model = getattr(llama, "_model", None)
    vocab = getattr(model, "vocab", None)
    accepts = None
    if vocab is not None:
        accepts = _ACCEPTS.get(id(model))
        if accepts is None:
            accepts = _ACCEPTS[id(model)] = _llama_accepts(vocab)
    return _compiled(json.dumps(list(tools), sort_keys=True), accepts)
