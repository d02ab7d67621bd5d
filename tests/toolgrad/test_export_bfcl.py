"""``export --format bfcl``: BFCL's own layout (question files, possible-answer files, "dict"
parameters, acceptable values per argument), checked by a validator written from BFCL's
published data and AST checker; the validator is itself checked on real BFCL lines."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from toolgrad.dataset.lines import encode_sample, read_samples
from toolgrad.dataset.runner import generate_dataset
from toolgrad.exports.bfcl import bfcl_function, bfcl_parameter, ground_truth, stated_in_question
from toolgrad.exports.bfcl_format import check_answer, check_directory, check_question
from toolgrad.exports.openai import export_dataset
from toolgrad.records import Chain, Sample
from toolgrad.settings import ExportSettings, GenerateSettings

# Two lines of BFCL's own data (bfcl-eval 2026.3.23, BFCL_v4_simple_python.json and its
# possible answer; Apache-2.0): the validator must accept the real thing.
BFCL_QUESTION = json.loads(
    '{"id": "simple_python_0", "question": [[{"role": "user", "content": "Find the area of a triangle with a '
    'base of 10 units and height of 5 units."}]], "function": [{"name": "calculate_triangle_area", "description": '
    '"Calculate the area of a triangle given its base and height.", "parameters": {"type": "dict", "properties": '
    '{"base": {"type": "integer", "description": "The base of the triangle."}, "height": {"type": "integer", '
    '"description": "The height of the triangle."}, "unit": {"type": "string", "description": "The unit of measure '
    '(defaults to \'units\' if not specified)"}}, "required": ["base", "height"]}}]}')
BFCL_ANSWER = json.loads('{"id": "simple_python_0", "ground_truth": [{"calculate_triangle_area": '
                         '{"base": [10], "height": [5], "unit": ["units", ""]}}]}')


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    path = tmp_path_factory.mktemp("bfcl") / "data.jsonl"
    generate_dataset(GenerateSettings(envs=["petstore", "museum"], n=16, seed=0, output=str(path)))
    return list(read_samples(path))


def single_turn(sample: Sample) -> Sample:
    """The sample cut to its steps that take nothing from earlier responses, with a query that
    states every argument: what a single-turn BFCL item needs."""
    steps = [s for s in sample.steps() if not s.sources]
    stated = "; ".join(f"{s.tool} with {json.dumps(s.arguments)}" for s in steps)
    return sample.model_copy(update={"chains": [Chain(steps=steps)], "query": f"Please call {stated}."})


def write(samples: list[Sample], path: Path) -> Path:
    path.write_bytes(b"".join(encode_sample(s) for s in samples))
    return path


def read(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_the_validator_accepts_real_bfcl_data() -> None:
    assert check_question(BFCL_QUESTION) == []
    assert check_answer(BFCL_ANSWER, BFCL_QUESTION) == []


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda q, a: q["function"][0]["parameters"].update(type="object"), '"type": "dict"'),
    (lambda q, a: q["function"][0]["parameters"]["properties"]["base"].update(type="number"), "type 'number'"),
    (lambda q, a: q["function"][0]["parameters"].pop("required"), "required"),
    (lambda q, a: q.update(question=[{"role": "user", "content": "flat"}]), "list of turns"),
    (lambda q, a: a["ground_truth"][0]["calculate_triangle_area"].update(base=["", 10]), "required but may be left out"),
    (lambda q, a: a["ground_truth"][0]["calculate_triangle_area"].update(base=["ten"]), "not of type integer"),
    (lambda q, a: a["ground_truth"][0]["calculate_triangle_area"].update(colour=["red"]), "not a parameter"),
    (lambda q, a: a.update(ground_truth=[{"area": {}}]), "not an offered function"),
])
def test_the_validator_rejects_what_bfcl_cannot_read(mutate: Any, message: str) -> None:
    question, answer = copy.deepcopy(BFCL_QUESTION), copy.deepcopy(BFCL_ANSWER)
    mutate(question, answer)
    problems = check_question(question) + check_answer(answer, question)
    assert any(message in p for p in problems), problems


def test_json_schema_becomes_bfcl_types() -> None:
    schema = {"type": "object", "properties": {
        "n": {"type": "number"}, "tags": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": ["string", "null"]}}}}, "status": {"enum": ["a", "b"]}, "x": {"anyOf": [{"type": "integer"}]},
        "free": {}}, "required": ["n", "missing"]}
    function = bfcl_function({"type": "function", "function": {"name": "f", "description": "d", "parameters": schema}})
    params = function["parameters"]
    assert params["type"] == "dict" and params["required"] == ["n"]
    assert params["properties"]["n"]["type"] == "float"
    assert params["properties"]["tags"]["items"]["type"] == "dict"
    assert params["properties"]["tags"]["items"]["properties"]["name"]["type"] == "string"
    assert params["properties"]["status"] == {"type": "string", "enum": ["a", "b"]}
    assert params["properties"]["x"]["type"] == "integer" and params["properties"]["free"]["type"] == "any"
    assert check_question({"id": "f_0", "question": [[{"role": "user", "content": "q"}]], "function": [function]}) == []
    assert bfcl_parameter({"type": "string", "format": "date-time"})["description"] == "(format: date-time)"


def test_ground_truth_lists_acceptable_values() -> None:
    function = bfcl_function({"name": "f", "description": "", "parameters": {"type": "object", "properties": {
        "a": {"type": "integer"}, "b": {"type": "string", "default": "x"}, "c": {"type": "number"},
        "d": {"type": "object", "properties": {"k": {"type": "string"}}}}, "required": ["a"]}})
    ((name, answers),) = ground_truth([(function, {"a": 1, "b": "x", "d": {"k": "v"}})])[0].items()
    assert name == "f"
    assert answers == {"a": [1], "b": ["x", ""], "c": [""], "d": [{"k": ["v"]}]}


def test_stated_in_question(samples: list[Sample]) -> None:
    with_sources = [s for s in samples if any(step.sources for step in s.steps())]
    assert with_sources and not any(stated_in_question(s) for s in with_sources)
    assert all(stated_in_question(single_turn(s)) for s in samples)
    step = samples[0].steps()[0]
    silent = single_turn(samples[0]).model_copy(update={"query": "Do the usual thing."})
    assert step.arguments and not stated_in_question(silent)


def test_export_layout_validates(samples: list[Sample], tmp_path: Path) -> None:
    mixed = [single_turn(s) if i % 2 else s for i, s in enumerate(samples)]
    data = write(mixed, tmp_path / "data.jsonl")
    out = tmp_path / "bfcl"
    count = export_dataset(ExportSettings(input=str(data), format="bfcl", output=str(out), negatives=0.25))
    assert check_directory(out) == []
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert count == sum(manifest["counts"].values())
    assert manifest["counts"]["irrelevance"] == round(0.25 * len(mixed))
    assert sum(manifest["counts"].values()) + sum(manifest["left_out"].values()) == len(mixed)
    assert manifest["left_out"].get("values from earlier responses (multi-turn)", 0) > 0
    assert not (out / "possible_answer" / "BFCL_v4_irrelevance.json").exists()
    by_id = {s.id: s for s in mixed}
    positives = [p for p in sorted(out.glob("BFCL_v4_*.json")) if "irrelevance" not in p.name]
    assert positives
    for path in positives:
        answers = {a["id"]: a for a in read(out / "possible_answer" / path.name)}
        for question in read(path):
            sample = by_id[manifest["sample_ids"][question["id"]]]
            assert question["question"] == [[{"role": "user", "content": sample.query}]]
            truth = answers[question["id"]]["ground_truth"]
            assert [next(iter(call)) for call in truth] == [s.tool for s in sample.steps()]
            assert ("parallel" in path.name) == (len(sample.steps()) > 1)
    for question in read(out / "BFCL_v4_irrelevance.json"):
        relevant = {s.tool for s in by_id[manifest["sample_ids"][question["id"]]].steps()}
        assert not relevant & {f["name"] for f in question["function"]}


def test_export_is_deterministic(samples: list[Sample], tmp_path: Path) -> None:
    data = write([single_turn(s) for s in samples], tmp_path / "data.jsonl")
    for name in ("a", "b"):
        export_dataset(ExportSettings(input=str(data), format="bfcl", output=str(tmp_path / name)))
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.json"))
    assert files
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
