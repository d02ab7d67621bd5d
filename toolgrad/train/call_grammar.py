"""The grammar a served model's tool calls are held to: llama.cpp GBNF for the JSON of one call,
``{"name": <an offered tool>, "arguments": <an object that fits that tool's parameters>}``.

llama.cpp's own server does the same for Hermes-style calls (a "lazy" grammar that starts at
``<tool_call>``): the model chooses freely whether to call a tool and what to say, but a call it
opens can only name an offered tool and carry every required argument, each of its schema's type.
Keys come in the order the trainer writes them: ``name`` then ``arguments``, and argument keys
sorted (llama.cpp's converter puts required properties before optional ones, each group sorted).

A tool whose parameters llama.cpp's converter cannot compile takes any JSON object as arguments.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from typing import Any

ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _parameters(tool: dict[str, Any]) -> Any:
    parameters = tool.get("function", tool).get("parameters")
    return parameters if isinstance(parameters, dict) and parameters else ANY_OBJECT


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


def call_gbnf(tools: Sequence[dict[str, Any]]) -> str:
    """The GBNF text for one call of one of ``tools`` (OpenAI tool dicts), without the tags."""
    named = [(str(tool.get("function", tool).get("name")), _parameters(tool)) for tool in tools]
    named = [(name, parameters if _compiles(parameters) else ANY_OBJECT) for name, parameters in named]
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


@functools.lru_cache(maxsize=64)
def _compiled(gbnf: str) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_string(gbnf, verbose=False)


def call_grammar(tools: Sequence[dict[str, Any]]) -> Any:
    """A ``llama_cpp.LlamaGrammar`` for :func:`call_gbnf` (compiled once per set of tools)."""
    return _compiled(call_gbnf(tools))
