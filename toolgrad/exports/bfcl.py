"""The BFCL export: the Berkeley Function-Calling Leaderboard's own file layout.

BFCL (``bfcl-eval``) keeps one question file per category, ``BFCL_v4_<category>.json``
(JSON lines ``{"id", "question": [[messages]], "function": [{"name", "description",
"parameters": {"type": "dict", "properties", "required"}}]}``), and beside it
``possible_answer/BFCL_v4_<category>.json`` (``{"id", "ground_truth": [{function: {param:
[acceptable values]}}]}``, ``""`` among the values meaning "may be left out"). Parameter types
are BFCL's Python names: ``dict``, ``float``, ``integer``, ``string``, ``boolean``, ``array``,
``any``. A dict value's acceptable values are ``{key: [values]}`` objects, a list's are lists.

What goes where:

* an irrelevance negative (``round(negatives * N)`` samples by hash; the relevant tools are
  removed from the offer) -> ``irrelevance`` (no possible answer, as in BFCL);
* a sample whose every argument is stated in the question (:func:`stated_in_question`):
  one call -> ``multiple`` (``simple_python`` when only one function is offered), several calls
  -> ``parallel_multiple`` (BFCL's checker matches those in any order);
* anything else is left out and counted in ``manifest.json`` with the reason: values taken
  from earlier responses need BFCL's multi-turn layout, which executes BFCL's own Python
  classes and cannot run these APIs; argument objects nested deeper than BFCL's checker reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from toolgrad.dataset.files import files_atomic, write_json_atomic
from toolgrad.dataset.lines import read_samples
from toolgrad.records import Sample
from toolgrad.settings import ExportSettings, ToolgradError
from toolgrad.validity.checks import check_solvable

from .openai import candidates_for, negative_ids, scan_dataset

PREFIX = "BFCL_v4_"
CATEGORIES = ("simple_python", "multiple", "parallel_multiple", "irrelevance")
_JSON_TO_BFCL = {"object": "dict", "number": "float", "integer": "integer", "string": "string",
                 "boolean": "boolean", "array": "array"}


class NotExpressible(ValueError):
    """An argument value BFCL's possible-answer format cannot express."""


# --- eligibility ---------------------------------------------------------------------------------


def stated_in_question(sample: Sample) -> bool:
    """BFCL single-turn eligibility: no argument of any step comes from an earlier response
    (``Step.sources``), and every argument value is stated in the query, by the same rule as
    certification's *solvable* check (:func:`toolgrad.validity.checks.check_solvable`, with no schema
    exemptions: a BFCL item carries no spec to take a default from)."""
    if any(step.sources for step in sample.steps()):
        return False
    return check_solvable(sample.chains, sample.query, lambda step: None) is None


# --- functions -----------------------------------------------------------------------------------


def _bfcl_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None:
        if "properties" in schema:
            kind = "object"
        elif "items" in schema:
            kind = "array"
        elif schema.get("enum"):
            first = schema["enum"][0]
            kind = {bool: "boolean", int: "integer", float: "number"}.get(type(first), "string")
        else:
            for branch in schema.get("anyOf") or schema.get("oneOf") or []:
                if isinstance(branch, dict) and branch.get("type") not in (None, "null"):
                    return _bfcl_type(branch)
            return "any"
    return _JSON_TO_BFCL.get(str(kind), "any")


def bfcl_parameter(schema: Any) -> dict[str, Any]:
    """A JSON Schema (an OpenAI tool parameter) in BFCL's parameter vocabulary."""
    schema = schema if isinstance(schema, dict) else {}
    kind = _bfcl_type(schema)
    out: dict[str, Any] = {"type": kind}
    description = str(schema.get("description", "")).strip()
    if schema.get("format"):
        description = f"{description} (format: {schema['format']})".strip()
    if description:
        out["description"] = description
    if isinstance(schema.get("enum"), list):
        out["enum"] = [v for v in schema["enum"] if v is not None]
    if "default" in schema:
        out["default"] = schema["default"]
    if kind == "array":
        out["items"] = bfcl_parameter(schema.get("items"))
    if kind == "dict" and isinstance(schema.get("properties"), dict):
        out["properties"] = {k: bfcl_parameter(v) for k, v in schema["properties"].items()}
        out["required"] = [r for r in schema.get("required") or [] if r in out["properties"]]
    return out


def bfcl_function(tool: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI tool spec as a BFCL function (``parameters.type`` is ``dict``, ``required``
    always present: BFCL's checker reads both)."""
    function = tool.get("function", tool)
    params = function.get("parameters") if isinstance(function.get("parameters"), dict) else {}
    properties = {k: bfcl_parameter(v) for k, v in (params.get("properties") or {}).items()}
    return {"name": str(function.get("name", "")), "description": str(function.get("description", "")),
            "parameters": {"type": "dict", "properties": properties,
                           "required": [r for r in params.get("required") or [] if r in properties]}}


# --- possible answers ----------------------------------------------------------------------------


def _answer_value(value: Any, param: dict[str, Any]) -> Any:
    """One acceptable value in BFCL's possible-answer form for a parameter of type ``param``."""
    kind = param.get("type")
    if kind == "dict" and isinstance(value, dict):
        if any(isinstance(v, dict) or (isinstance(v, list) and any(isinstance(i, dict) for i in v))
               for v in value.values()):
            raise NotExpressible("an argument object nested more than one level deep")
        return {k: [v] for k, v in value.items()}
    if kind == "array" and isinstance(value, list) and any(isinstance(i, dict) for i in value):
        items = param.get("items") or {}
        return [_answer_value(i, items if items.get("type") == "dict" else {"type": "dict"}) for i in value]
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def ground_truth(calls: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """``[{name: {param: [acceptable values]}}]`` for (BFCL function, arguments) pairs: the
    reference value of every given parameter (or ``""`` too when it equals the default of an
    optional one), ``[""]`` (plus the default, if any) for every parameter it leaves out."""
    truth = []
    for function, arguments in calls:
        params = function["parameters"]["properties"]
        required = set(function["parameters"]["required"])
        answers: dict[str, list[Any]] = {}
        for name, param in params.items():
            if name in arguments:
                accepted = [_answer_value(arguments[name], param)]
                if name not in required and "default" in param and param["default"] == arguments[name]:
                    accepted.append("")
            else:
                accepted = [""] + ([param["default"]] if "default" in param else [])
            answers[name] = accepted
        unknown = sorted(set(arguments) - set(params))
        if unknown:
            raise NotExpressible(f"arguments outside the function's parameters: {', '.join(unknown)}")
        truth.append({function["name"]: answers})
    return truth


# --- the export ----------------------------------------------------------------------------------


def _question(sample: Sample) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": sample.query}]]


def classify(sample: Sample, functions: list[dict[str, Any]], negative: bool) -> tuple[str, str]:
    """(category, "") for an exported item, ("", reason) for one left out."""
    if negative:
        return "irrelevance", ""
    if not stated_in_question(sample):
        if any(step.sources for step in sample.steps()):
            return "", "values from earlier responses (multi-turn)"
        return "", "an argument value the question does not state"
    if len(sample.steps()) > 1:
        return "parallel_multiple", ""
    return ("simple_python" if len(functions) == 1 else "multiple"), ""


def bfcl_items(samples: Iterable[Sample], pool: dict[str, dict[str, Any]], negatives: set[str],
               settings: ExportSettings, manifest: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any],
                                                                                 dict[str, Any] | None]]:
    """(category, question, possible answer) for each sample exported, one sample at a time
    (``pool``: the distractor pool, ``negatives``: the ids of irrelevance negatives); what was
    left out and why is counted into ``manifest`` as the samples go by."""
    counts: dict[str, int] = {c: 0 for c in CATEGORIES}
    left_out: dict[str, int] = manifest["left_out"]
    ids: dict[str, str] = manifest["sample_ids"]
    for sample in samples:
        manifest["samples"] += 1
        negative = sample.id in negatives
        tools = candidates_for(sample, pool, settings.distractors, settings.seed, negative=negative)
        functions = [bfcl_function(t) for t in tools]
        category, reason = classify(sample, functions, negative)
        answer = None
        if category and category != "irrelevance":
            by_name = {f["name"]: f for f in functions}
            try:
                answer = {"ground_truth": ground_truth([(by_name[s.tool], s.arguments) for s in sample.steps()])}
            except NotExpressible as exc:
                category, reason = "", str(exc)
        if not category:
            left_out[reason] = left_out.get(reason, 0) + 1
            continue
        item_id = f"{category}_{counts[category]}"
        counts[category] += 1
        ids[item_id] = sample.id
        yield category, {"id": item_id, "question": _question(sample), "function": functions}, \
            None if answer is None else {"id": item_id, **answer}
    manifest["counts"] = {c: n for c, n in counts.items() if n}


def _line(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value) + b"\n"


def export_bfcl(settings: ExportSettings) -> dict[str, Any]:
    """Write ``OUT/BFCL_v4_<category>.json``, ``OUT/possible_answer/BFCL_v4_<category>.json``
    and ``OUT/manifest.json`` (returned). The dataset is read in two streaming passes (ids and
    the distractor pool, then the items, written as they come): memory does not grow with its
    lines."""
    source, out = Path(settings.input), Path(settings.output)
    if not source.is_file():
        raise ToolgradError(f"{source}: no such dataset file")
    if not out.parent.is_dir():
        raise ToolgradError(f"output directory {out.parent} does not exist")
    ids, pool = scan_dataset(source)
    negatives = negative_ids(ids, settings.negatives, settings.seed)
    manifest: dict[str, Any] = {"format": "BFCL v4 (bfcl-eval) question and possible-answer files",
                                "counts": {}, "left_out": {}, "samples": 0, "sample_ids": {},
                                "negatives": settings.negatives, "distractors": settings.distractors,
                                "seed": settings.seed}
    (out / "possible_answer").mkdir(parents=True, exist_ok=True)
    questions = [out / f"{PREFIX}{c}.json" for c in CATEGORIES]
    answers = [out / "possible_answer" / f"{PREFIX}{c}.json" for c in CATEGORIES if c != "irrelevance"]
    with files_atomic([*questions, *answers], skip_empty=True) as handles:  # a category with no item: no file
        question_of = dict(zip(CATEGORIES, handles, strict=False))
        answer_of = dict(zip([c for c in CATEGORIES if c != "irrelevance"], handles[len(questions):], strict=True))
        for category, question, answer in bfcl_items(read_samples(source), pool, negatives, settings, manifest):
            question_of[category].write(_line(question))
            if answer is not None:
                answer_of[category].write(_line(answer))
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


__all__ = ["CATEGORIES", "bfcl_function", "bfcl_parameter", "export_bfcl", "ground_truth",
           "stated_in_question"]
