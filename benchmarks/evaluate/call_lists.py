"""Single-turn call lists (``toolgrad eval-calls``, BFCL-style): the tasks, the model's answer, the score.

An item is one prompt with its offered functions and a reference call list (from a dataset
sample, from ``toolgrad export --format bfcl``, or from BFCL's own layout with its lists of
acceptable values). The model is asked once; its calls are matched order-free against the
reference by BFCL's AST rule (:func:`check_call`), and the run reports exact match, call match,
name recall and, on the negative items, irrelevance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks.certify.certificate import versions
from benchmarks.certify.replay import DatasetError, parse_sample, read_lines
from toolgrad.backends.base import ChatModel, Completion, ModelError
from toolgrad.dataset.lines import read_tool_table, tool_specs
from toolgrad.records import Sample
from toolgrad.settings import ToolgradError

from .metrics import mean, values_match
from .runner import FATAL_MODEL_ERRORS, MAX_TOKENS, REPORT_VERSION, EvaluationAborted

CALLS_SYSTEM_PROMPT = (
    "You plan tool calls. Given the user's request and the tools, call every tool needed to "
    "fulfil it, all at once, with the arguments you can determine. If no tool fits, call none. "
    "Do not answer in prose."
)


@dataclass(frozen=True, slots=True)
class CallItem:
    """One single-turn task: the prompt, the tools offered natively (if any), the reference
    call list, and each function's parameter schema (for the required/unexpected checks)."""

    id: str
    messages: list[dict[str, Any]]  # sent as is (a system prompt first)
    tools: list[dict[str, Any]]  # OpenAI tool specs passed natively; [] when the prompt lists them
    reference: list[dict[str, Any]]  # [{"name": ..., "arguments": {...}}]; [] for a negative
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    negative: bool = False  # an irrelevance item: no offered tool fits, the right answer is no call


def _schemas(functions: Sequence[Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for f in functions:
        spec = f.get("function", f) if isinstance(f, dict) else {}
        if isinstance(spec, dict) and spec.get("name"):
            params = spec.get("parameters")
            out[str(spec["name"])] = params if isinstance(params, dict) else {}
    return out


def call_item_from_sample(sample: Sample, table: Mapping[str, dict[str, Any]] | None = None,
                          where: str = "") -> CallItem:
    """A dataset sample as a call-list task: its query, its candidate tools offered natively
    (their specs: inline in a schema-1 or -2 line, else from ``table``, the dataset's tool table)."""
    try:
        specs = tool_specs(sample, table or {}, where)
    except ToolgradError as exc:
        raise DatasetError(str(exc)) from None
    return CallItem(
        id=sample.id,
        messages=[{"role": "system", "content": CALLS_SYSTEM_PROMPT}, {"role": "user", "content": sample.query}],
        tools=specs,
        reference=[{"name": s.tool, "arguments": dict(s.arguments)} for s in sample.steps()],
        schemas=_schemas(specs),
    )


def _listed_functions(system: str) -> list[Any]:
    """The JSON list of functions a system prompt ends with ("... in JSON format:\n[...]")."""
    start = system.find("\n[")
    while start != -1:
        try:
            listed = orjson.loads(system[start + 1:])
        except orjson.JSONDecodeError:
            start = system.find("\n[", start + 1)
            continue
        return listed if isinstance(listed, list) else []
    return []


def call_item_from_bfcl(data: Any, where: str) -> CallItem:
    """One line of ``toolgrad export --format bfcl`` (``{"id", "messages", "tools", "target",
    "negative"}``: the prompt lists the functions, the last message is the reference answer),
    or of BFCL's own layout (``question``, ``function``, ``ground_truth`` as
    ``[{name: {param: [acceptable values]}}]``, "" meaning the parameter may be left out)."""
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: expected a JSON object")
    if "messages" in data and "target" in data:
        messages = [m for m in data["messages"] if isinstance(m, dict)]
        if messages and messages[-1].get("role") == "assistant":
            messages = messages[:-1]  # the reference answer
        target = data["target"]
        if not isinstance(target, list) or not all(isinstance(c, dict) and "name" in c for c in target):
            raise DatasetError(f"{where}: 'target' must be a list of {{name, arguments}} calls")
        system = next((str(m.get("content", "")) for m in messages if m.get("role") == "system"), "")
        return CallItem(str(data.get("id", where)), messages, [],
                        [{"name": c["name"], "arguments": dict(c.get("arguments") or {})} for c in target],
                        _schemas(_listed_functions(system)), bool(data.get("negative", not target)))
    question = data.get("question")
    if isinstance(question, list) and question and isinstance(question[0], list):
        turns = [m for turn in question for m in turn]
    elif isinstance(question, list):
        turns = list(question)
    elif isinstance(question, str):
        turns = [{"role": "user", "content": question}]
    else:
        raise DatasetError(f"{where}: neither a toolgrad bfcl export line (messages, target) nor a BFCL "
                           "item (question, function, ground_truth)")
    functions = data.get("function") or data.get("functions") or []
    tools = [f if isinstance(f, dict) and f.get("type") == "function" else {"type": "function", "function": f}
             for f in functions]
    truth = data.get("ground_truth")
    if not isinstance(truth, list):
        raise DatasetError(f"{where}: no 'ground_truth' list in the BFCL item (export it with the answers)")
    reference: list[dict[str, Any]] = []
    for entry in truth:
        if not (isinstance(entry, dict) and len(entry) == 1):
            raise DatasetError(f"{where}: a ground-truth entry must be {{name: {{param: [values]}}}}")
        ((name, params),) = entry.items()
        params = params if isinstance(params, dict) else {}
        reference.append({"name": name,
                          "arguments": {k: v[0] if isinstance(v, list) and v else v for k, v in params.items()},
                          "alternatives": {k: v if isinstance(v, list) else [v] for k, v in params.items()}})
    messages = [{"role": "system", "content": CALLS_SYSTEM_PROMPT}, *turns]
    return CallItem(str(data.get("id", where)), messages, tools, reference, _schemas(functions), not reference)


def predicted_calls(completion: Completion) -> list[dict[str, Any]]:
    """The calls a completion lists: its tool calls, else a JSON list of ``{"name", "arguments"}``
    objects in its text (arguments that are not a JSON object become ``None``)."""
    calls: list[dict[str, Any]] = []
    for tc in completion.tool_calls:
        try:
            args = orjson.loads(tc.arguments) if tc.arguments.strip() else {}
        except orjson.JSONDecodeError:
            args = None
        calls.append({"name": tc.name, "arguments": args if isinstance(args, dict) else None})
    if calls or not completion.content:
        return calls
    text = completion.content.strip()
    start, end = text.find("["), text.rfind("]")
    if start == -1 or end <= start:
        return []
    try:
        listed = orjson.loads(text[start:end + 1])
    except orjson.JSONDecodeError:
        return []
    if not isinstance(listed, list):
        return []
    return [{"name": str(c.get("name")), "arguments": c.get("arguments") if isinstance(c.get("arguments"), dict)
             else None} for c in listed if isinstance(c, dict) and "name" in c]


def run_call_item(model: ChatModel, item: CallItem) -> tuple[list[dict[str, Any]], str]:
    """Ask once; the predicted call list and the model error ("" when the model answered)."""
    try:
        completion = model.complete(item.messages, tools=item.tools or None, temperature=0.0,
                                    max_tokens=MAX_TOKENS)
    except ModelError as exc:
        return [], str(exc)
    return predicted_calls(completion), ""


def load_call_items(path: Path) -> list[CallItem]:
    """Items from a dataset (Sample lines) or a bfcl file (toolgrad's export or BFCL's layout)."""
    lines = read_lines(path)
    if not lines:
        raise DatasetError(f"{path}: no items")
    items = []
    table = read_tool_table(path)
    for line in lines:
        try:
            data = orjson.loads(line.text)
        except orjson.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{line.line}: not JSON: {exc}") from exc
        if isinstance(data, dict) and "chains" in data:
            items.append(call_item_from_sample(parse_sample(line, path), table, f"{path}:{line.line}"))
        else:
            items.append(call_item_from_bfcl(data, f"{path}:{line.line}"))
    return items


def run_call_eval(items: Sequence[CallItem], model: ChatModel, *, model_name: str, base_url: str,
                  on_item: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Ask the model for each item's call list and score it (:func:`score_call_list`).

    Raises :class:`EvaluationAborted` when the first items all fail on the model server."""
    results: list[dict[str, Any]] = []
    for n, item in enumerate(items):
        predicted, error = run_call_item(model, item)
        if error and n + 1 >= FATAL_MODEL_ERRORS and all(r["model_error"] for r in results):
            raise EvaluationAborted(f"the model failed on each of the first {n + 1} items: {error}\n"
                                    "  fix: check --base-url, --model and that the server is running")
        score = score_call_list(predicted, item.reference, item.schemas)
        call_match = score.matched / score.reference if score.reference else float(not predicted)
        result = {"id": item.id, "negative": item.negative, "exact": score.exact, "call_match": call_match,
                  "name_recall": score.name_recall, "predicted": predicted, "reference": item.reference,
                  "errors": list(score.errors), "model_error": error}
        results.append(result)
        if on_item is not None:
            on_item(result)
    return {"schema_version": REPORT_VERSION, "kind": "toolgrad-call-eval", "model": model_name,
            "base_url": base_url, "metrics": call_list_metrics(results), "items": results, "versions": versions()}


# --- scoring (BFCL-style AST match) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallListScore:
    exact: bool  # every reference call matched one predicted call and nothing extra was predicted
    name_recall: float  # share of reference calls whose name was predicted (multiset)
    matched: int  # reference calls matched by name and arguments
    reference: int
    predicted: int
    errors: tuple[str, ...] = ()  # why it is not exact, one line each


def check_call(predicted: Mapping[str, Any], reference: Mapping[str, Any],
               schema: Mapping[str, Any] | None = None) -> str | None:
    """BFCL's AST check of one call: same function name, every required parameter present, no
    parameter the function does not take, and every reference argument equal after type
    normalisation. Returns why it fails, or None."""
    if predicted.get("name") != reference.get("name"):
        return f"name {predicted.get('name')!r} is not {reference.get('name')!r}"
    args = predicted.get("arguments")
    if not isinstance(args, dict):
        return f"{reference.get('name')}: arguments are not an object"
    name = str(reference.get("name"))
    problem = _schema_problem(name, args, schema or {})
    if problem:
        return problem
    alternatives = reference.get("alternatives")
    if isinstance(alternatives, dict):
        return _alternatives_problem(name, args, alternatives)
    return _arguments_problem(name, args, reference.get("arguments") or {})


def _schema_problem(function: str, args: Mapping[str, Any], schema: Mapping[str, Any]) -> str | None:
    """A required parameter missing, or an argument the function does not take."""
    for name in list(schema.get("required") or []):
        if name not in args:
            return f"{function}: required argument {name!r} missing"
    params = schema.get("properties")
    if isinstance(params, dict):
        for name in args:
            if name not in params:
                return f"{function}: unexpected argument {name!r}"
    return None


def _alternatives_problem(function: str, args: Mapping[str, Any], alternatives: Mapping[str, Any]) -> str | None:
    """BFCL's possible answers: a list of acceptable values per parameter, "" = may be left out."""
    for name, accepted in alternatives.items():
        if name not in args:
            if "" not in accepted:
                return f"{function}: argument {name!r} missing"
        elif not any(values_match(v, args[name]) for v in accepted if v != ""):
            return f"{function}: argument {name!r} is {args[name]!r}, expected one of {accepted!r}"
    return _extra_argument(function, args, alternatives)


def _arguments_problem(function: str, args: Mapping[str, Any], ref_args: Mapping[str, Any]) -> str | None:
    """Every reference argument given and equal after normalisation, and no other."""
    for name, value in ref_args.items():
        if name not in args:
            return f"{function}: argument {name!r} missing"
        if not values_match(value, args[name]):
            return f"{function}: argument {name!r} is {args[name]!r}, expected {value!r}"
    return _extra_argument(function, args, ref_args)


def _extra_argument(function: str, args: Mapping[str, Any], reference: Mapping[str, Any]) -> str | None:
    extra = next((name for name in args if name not in reference), None)
    return None if extra is None else f"{function}: argument {extra!r} is not in the reference call"


def score_call_list(predicted: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]],
                    schemas: Mapping[str, Mapping[str, Any]] | None = None) -> CallListScore:
    """Compare a predicted call list with the reference, order-free (BFCL's parallel-multiple
    rule): each reference call takes the first unused predicted call that passes
    :func:`check_call`."""
    schemas = schemas or {}
    used: set[int] = set()
    errors: list[str] = []
    matched = 0
    for ref in reference:
        hit = None
        reasons = []
        for i, call in enumerate(predicted):
            if i in used:
                continue
            why = check_call(call, ref, schemas.get(str(ref.get("name"))))
            if why is None:
                hit = i
                break
            if call.get("name") == ref.get("name"):
                reasons.append(why)
        if hit is None:
            errors.append(reasons[0] if reasons else f"{ref.get('name')}: not called")
        else:
            used.add(hit)
            matched += 1
    extra = [p for i, p in enumerate(predicted) if i not in used]
    errors.extend(f"{p.get('name')}: not in the reference" for p in extra
                  if not any(p.get("name") == r.get("name") for r in reference))
    ref_names = [str(r.get("name")) for r in reference]
    pool = [str(p.get("name")) for p in predicted]
    hits = 0
    for name in ref_names:
        if name in pool:
            pool.remove(name)
            hits += 1
    return CallListScore(
        exact=matched == len(reference) and len(predicted) == len(reference),
        name_recall=hits / len(ref_names) if ref_names else 1.0,
        matched=matched, reference=len(reference), predicted=len(predicted), errors=tuple(errors),
    )


def call_list_metrics(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over items; ``irrelevance`` is the exact-match rate on negative items alone."""
    positives = [r for r in results if not r["negative"]]
    negatives = [r for r in results if r["negative"]]
    return {
        "items": len(results),
        "negatives": len(negatives),
        "exact_match": mean(float(r["exact"]) for r in results) or 0.0,
        "call_match": mean(r["call_match"] for r in positives),
        "name_recall": mean(r["name_recall"] for r in positives),
        "irrelevance": mean(float(r["exact"]) for r in negatives),
        "model_errors": sum(1 for r in results if r["model_error"]),
    }
