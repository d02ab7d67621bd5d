"""A validator for BFCL's published file format (``bfcl-eval``'s data and possible-answer
files), written from its data files and its AST checker (``eval_checker/ast_eval``).

It checks what the checker relies on: a question is ``{"id", "question": [[{"role",
"content"}]], "function": [...]}``; a function has a name, a description and ``parameters``
with ``"type": "dict"``, ``properties`` and ``required`` (the checker indexes both); each
parameter type is one the Python checker maps (``PYTHON_TYPE_MAPPING``), arrays say their item
type; a possible answer is ``{"id", "ground_truth": [{name: {param: [values]}}]}`` naming an
offered function and only its parameters, never leaving a required one optional, with values
of the parameter's type (a dict as ``{key: [values]}``, a list of dicts as a list of those).
The bfcl-eval package itself pins numpy 1.26 and a dozen model SDKs, so it is not installed
here; these are its rules, read from its source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

PYTHON_TYPES = ("string", "integer", "float", "boolean", "array", "tuple", "dict", "any")
_VALUE_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "float": (float, int),
                                             "boolean": (bool,), "array": (list,), "tuple": (list,),
                                             "dict": (dict,), "any": (str,)}


def check_parameter(param: Any, where: str) -> list[str]:
    if not isinstance(param, dict):
        return [f"{where}: a parameter must be an object"]
    kind = param.get("type")
    problems = [] if kind in PYTHON_TYPES else [f"{where}: type {kind!r} is not one of {', '.join(PYTHON_TYPES)}"]
    if kind in ("array", "tuple"):
        items = param.get("items")
        problems += (check_parameter(items, f"{where}.items") if isinstance(items, dict)
                     else [f"{where}: an array parameter needs 'items' with a type"])
    if kind == "dict" and "properties" in param:
        for name, sub in (param.get("properties") or {}).items():
            problems += check_parameter(sub, f"{where}.{name}")
    return problems


def check_function(function: Any, where: str) -> list[str]:
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        return [f"{where}: a function needs a non-empty 'name'"]
    where = f"{where} ({function['name']})"
    problems = [] if isinstance(function.get("description"), str) else [f"{where}: no 'description' string"]
    params = function.get("parameters")
    if not isinstance(params, dict) or params.get("type") != "dict":
        return [*problems, f"{where}: 'parameters' must be an object with \"type\": \"dict\""]
    properties, required = params.get("properties"), params.get("required")
    if not isinstance(properties, dict):
        return [*problems, f"{where}: 'parameters.properties' must be an object"]
    if not isinstance(required, list) or not all(r in properties for r in required):
        problems.append(f"{where}: 'parameters.required' must list properties")
    for name, param in properties.items():
        problems += check_parameter(param, f"{where}.{name}")
    return problems


def check_question(item: Any) -> list[str]:
    """Problems with one line of a question file (empty when it is valid)."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return ["a question needs a string 'id'"]
    where = item["id"]
    problems = []
    turns = item.get("question")
    if not (isinstance(turns, list) and turns and all(isinstance(t, list) and t for t in turns)
            and all(isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                    and isinstance(m.get("content"), str) for t in turns for m in t)):
        problems.append(f"{where}: 'question' must be a list of turns, each a list of {{role, content}} messages")
    functions = item.get("function")
    if not isinstance(functions, list) or not functions:
        return [*problems, f"{where}: 'function' must be a non-empty list"]
    for i, function in enumerate(functions):
        problems += check_function(function, f"{where}: function {i}")
    return problems


def _value_ok(value: Any, param: dict[str, Any]) -> bool:
    kind = param.get("type", "any")
    if kind == "dict" and isinstance(value, dict):
        return all(isinstance(v, list) and v for v in value.values())
    if kind in ("array", "tuple") and isinstance(value, list) and (param.get("items") or {}).get("type") == "dict":
        return all(_value_ok(v, {"type": "dict"}) for v in value)
    if isinstance(value, bool) and kind != "boolean":
        return False
    return isinstance(value, _VALUE_TYPES.get(str(kind), (object,)))


def check_answer(answer: Any, question: dict[str, Any]) -> list[str]:
    """Problems with one possible answer against its question (empty when it is valid)."""
    where = question.get("id", "?")
    if not isinstance(answer, dict) or answer.get("id") != where:
        return [f"{where}: the possible answer's id does not match the question"]
    truth = answer.get("ground_truth")
    if not isinstance(truth, list) or not truth:
        return [f"{where}: 'ground_truth' must be a non-empty list"]
    functions = {f["name"]: f for f in question.get("function", []) if isinstance(f, dict) and "name" in f}
    problems = []
    for call in truth:
        if not (isinstance(call, dict) and len(call) == 1):
            problems.append(f"{where}: a ground-truth call must be {{name: {{param: [values]}}}}")
            continue
        ((name, params),) = call.items()
        if name not in functions:
            problems.append(f"{where}: {name!r} is not an offered function")
            continue
        parameters = functions[name].get("parameters") or {}
        spec = {"properties": parameters.get("properties") or {}, "required": parameters.get("required") or []}
        for param, values in params.items():
            if param not in spec["properties"]:
                problems.append(f"{where}: {name}.{param} is not a parameter of the function")
            elif not isinstance(values, list) or not values:
                problems.append(f"{where}: {name}.{param}: acceptable values must be a non-empty list")
            elif param in spec["required"] and "" in values:
                problems.append(f"{where}: {name}.{param} is required but may be left out")
            elif not all(v == "" or _value_ok(v, spec["properties"][param]) for v in values):
                problems.append(f"{where}: {name}.{param}: a value is not of type {spec['properties'][param].get('type')}")
        problems += [f"{where}: required {name}.{r} has no acceptable value" for r in spec["required"] if r not in params]
    return problems


def _read(path: Path) -> list[Any]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def check_directory(root: Path) -> list[str]:
    """Every question file ``BFCL_v4_*.json`` under ``root`` and its possible-answer file
    (irrelevance categories have none): the problems found, empty when all is valid."""
    problems: list[str] = []
    files = sorted(root.glob("BFCL_v4_*.json"))
    if not files:
        return [f"{root}: no BFCL_v4_*.json question file"]
    for path in files:
        questions = _read(path)
        for q in questions:
            problems += [f"{path.name}: {p}" for p in check_question(q)]
        answer_file = root / "possible_answer" / path.name
        if "irrelevance" in path.name:
            if answer_file.exists():
                problems.append(f"{path.name}: irrelevance items have no possible-answer file")
            continue
        if not answer_file.is_file():
            problems.append(f"{path.name}: no possible_answer/{path.name}")
            continue
        answers = {a.get("id"): a for a in _read(answer_file) if isinstance(a, dict)}
        for q in questions:
            if isinstance(q, dict) and q.get("id") not in answers:
                problems.append(f"{path.name}: {q.get('id')}: no possible answer")
            elif isinstance(q, dict):
                problems += [f"possible_answer/{path.name}: {p}" for p in check_answer(answers[q["id"]], q)]
    return problems
