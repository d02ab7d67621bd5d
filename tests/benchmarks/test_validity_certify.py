"""Certification checks validity, not only replay: each way a sample can replay byte for byte and
still be invalid is caught, named by its check, step, place and value; and on fresh seeds of
every shipped environment the generator's samples pass every check."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from benchmarks.certify.certificate import Certificate, SampleVerdict, certify_file
from benchmarks.certify.replay import record_id
from benchmarks.cli.app import app
from simulator.environments.environment import shipped_environments
from toolgrad.dataset.lines import record_lines
from toolgrad.dataset.provenance import make_provenance
from toolgrad.dataset.runner import generate_dataset
from toolgrad.json_values import leaves
from toolgrad.loop.policy import Workflow
from toolgrad.loop.sample import SampleOutcome
from toolgrad.loop.sources import detect_sources
from toolgrad.records import Chain, Cost, Step, Trace
from toolgrad.settings import GenerateSettings
from toolgrad.toolbox import Toolbox

Record = dict[str, Any]


def records_of(path: Path) -> list[Record]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rewrite(path: Path, records: list[Record]) -> Path:
    """The records written back, each id recomputed: the replay's id check then passes, as it
    would for anyone who edits a line and rehashes it."""
    for record in records:
        record["id"] = record_id(record)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def only_failure(cert: Certificate, line: int) -> SampleVerdict:
    bad = [s for s in cert.samples if not s.ok]
    assert [s.line for s in bad] == [line], [(s.line, s.checks) for s in bad]
    return bad[0]


def failed_checks(verdict: SampleVerdict) -> list[str]:
    return [name for name, check in verdict.checks.items() if not check.ok]


def test_a_quoted_answer_value_no_response_holds_fails_grounded(dataset_path: Path, tmp_path: Path) -> None:
    records = records_of(dataset_path)
    index = next(i for i, r in enumerate(records) if re.search(r"'[^']+'", r["answer"]))
    records[index]["answer"] = re.sub(r"'[^']+'", "'Not-In-Any-Response-42'", records[index]["answer"], count=1)
    cert = certify_file(rewrite(tmp_path / "answer.jsonl", records))
    verdict = only_failure(cert, index + 1)
    assert failed_checks(verdict) == ["grounded"], "it replays: only the answer is wrong"
    grounded = verdict.checks["grounded"]
    assert (grounded.at, grounded.value) == ("answer", "Not-In-Any-Response-42")
    assert "no response" in grounded.reason


def _stated_leaf(records: list[Record]) -> tuple[int, int, int, str, str]:
    """(record, chain, step, pointer, value) of a string argument the query quotes exactly once
    and that no source feeds."""
    for i, record in enumerate(records):
        for ci, chain in enumerate(record["chains"]):
            for si, step in enumerate(chain["steps"]):
                for pointer, value in leaves(step["arguments"]):
                    if (isinstance(value, str) and len(value) >= 3 and pointer not in step["sources"]
                            and record["query"].count(value) == 1 and f"'{value}'" in record["query"]):
                        return i, ci, si, pointer, value
    raise AssertionError("no sample quotes an argument value in its query")


def test_an_argument_value_removed_from_the_query_fails_solvable(dataset_path: Path, tmp_path: Path) -> None:
    records = records_of(dataset_path)
    i, ci, si, pointer, value = _stated_leaf(records)
    records[i]["query"] = records[i]["query"].replace(f"'{value}'", "the usual one")
    cert = certify_file(rewrite(tmp_path / "query.jsonl", records))
    verdict = only_failure(cert, i + 1)
    assert verdict.checks["replay"].ok and "solvable" in failed_checks(verdict)
    solvable = verdict.checks["solvable"]
    assert (solvable.chain, solvable.step, solvable.at, solvable.value) == (ci, si, pointer, value)
    assert "neither stated in the query nor taken from an earlier response" in solvable.reason


def _scalars(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _scalars(value)]
    if isinstance(node, list):
        return [len(node)] + [leaf for value in node for leaf in _scalars(value)]
    return [node]


def test_a_number_only_a_timestamps_digits_hold_fails_grounded_and_its_date_restated_passes(
        dataset_path: Path, tmp_path: Path) -> None:
    # bad input: an answer stating a number that the responses hold only as the minutes of a
    # date-time (as a count changed to "12 result(s)" was grounded by "23:12:12Z")
    records = records_of(dataset_path)
    found = None
    for i, record in enumerate(records):
        scalars = [leaf for chain in record["chains"] for step in chain["steps"]
                   for leaf in _scalars(step["response"])] + [step["status"] for chain in record["chains"]
                                                              for step in chain["steps"]]
        stamps = [s for s in scalars if isinstance(s, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s)]
        words = {w.strip(".,;:()'\"") for s in scalars if isinstance(s, str) for w in s.split()}
        for stamp in stamps:
            minutes = int(stamp[14:16])
            calendar = {int(part) for s in stamps for part in (s[:4], s[5:7], s[8:10])}
            if minutes >= 10 and minutes not in calendar and str(minutes) not in words and not any(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and v == minutes for v in scalars):
                found = (i, stamp, minutes)
                break
        if found:
            break
    assert found, "no sample's responses hold a date-time whose minutes no other value holds"
    i, stamp, minutes = found
    months = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December"]
    restated = f"{months[int(stamp[5:7]) - 1]} {int(stamp[8:10])}, {stamp[:4]}"
    answer = records[i]["answer"]
    records[i]["answer"] = f"{answer} It was on {restated}."
    cert = certify_file(rewrite(tmp_path / "restated.jsonl", records))
    assert cert.passed == len(records), "a date-time's year, month and day restated in words are grounded"
    records[i]["answer"] = f"{answer} It took {minutes} minutes."
    verdict = only_failure(certify_file(rewrite(tmp_path / "minutes.jsonl", records)), i + 1)
    assert failed_checks(verdict) == ["grounded"]
    assert (verdict.checks["grounded"].at, verdict.checks["grounded"].value) == ("answer", str(minutes))


def test_a_duplicated_line_fails_unique_and_the_cli_exits_1(dataset_path: Path, tmp_path: Path) -> None:
    lines = dataset_path.read_text().splitlines(keepends=True)
    copy = tmp_path / "twice.jsonl"
    copy.write_text("".join(lines) + lines[2])
    cert = certify_file(copy)
    verdict = only_failure(cert, len(lines) + 1)
    assert failed_checks(verdict) == ["unique"]
    assert (verdict.checks["unique"].at, verdict.checks["unique"].reason) == ("id", "the same id as line 3")
    assert cert.checks["unique"] == len(lines) and cert.passed == len(lines) and not cert.ok
    result = CliRunner().invoke(app, ["certify", str(copy), "-o", str(tmp_path / "c.json")])
    assert result.exit_code == 1 and "unique" in result.stdout and "the same id as line 3" in result.stdout


def _two_item_sample(toolbox: Toolbox) -> bytes:
    """A real petstore chain: list pets, then update the first one's record with the second one's
    name (declared sources into two items of one list response)."""
    session = "two-items"
    toolbox.reset(session)
    for tool, listing in [("petstore__findPetsByTags", {}),
                          *(("petstore__findPetsByStatus", {"status": s}) for s in ("available", "pending", "sold"))]:
        found = toolbox.call(session, tool, listing)  # whichever list holds two pets in this world
        pets = [p for p in found.body or [] if isinstance(p, dict) and "id" in p and "name" in p]
        if found.ok and len(pets) >= 2:
            break
    first, second = pets[0], pets[1]
    arguments = {"id": first["id"], "name": second["name"], "photoUrls": ["https://example.org/a.png"]}
    updated = toolbox.call(session, "petstore__updatePet", arguments)
    assert found.ok and updated.ok, (found.status, updated.status)
    listed = Step(env="petstore", tool=found.tool, operation_id=found.tool.split("__")[1], arguments=found.arguments,
                  status=found.status, response=found.body, state_hash=found.state_hash)
    declared = {"/id": (0, 0, f"/{found.body.index(first)}/id"),
                "/name": (0, 0, f"/{found.body.index(second)}/name")}
    sources = detect_sources(arguments, [(0, 0, found.body)], declared)
    renamed = Step(env="petstore", tool=updated.tool, operation_id="updatePet", arguments=arguments, sources=sources,
                   status=updated.status, response=updated.body, state_hash=updated.state_hash)
    toolbox.drop(session)
    said = f" with status '{listing['status']}'" if listing else ""
    query = (f"Show me some pets{said} and give the first the second one's name, "
             "with photo 'https://example.org/a.png'.")
    answer = f"Pet {first['id']} is now called '{second['name']}'."
    workflow = Workflow(chains=[Chain(steps=[listed, renamed])], query=query, answer=answer)
    outcome = SampleOutcome(0, workflow, Trace(), Cost(tool_calls=2), [], toolbox.openai_tools([listed.tool]))
    provenance = make_provenance(GenerateSettings(envs=["petstore"]), toolbox, "offline")
    return record_lines(outcome, provenance)[1]


def test_a_step_fed_from_two_list_items_fails_coherent(tmp_path: Path) -> None:
    toolbox = Toolbox.in_process(["petstore"])
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(_two_item_sample(toolbox))
    verdict = only_failure(certify_file(path), 1)
    assert verdict.checks["replay"].ok and "coherent" in failed_checks(verdict)
    coherent = verdict.checks["coherent"]
    assert (coherent.chain, coherent.step) == (0, 1) and "2 different items" in coherent.reason
    assert set(coherent.at.split(", ")) == {"/id", "/name"}
    # "the first" and "the second" name nothing: solvable says which value cannot be known
    assert "which the query does not name" in verdict.checks["solvable"].reason


@pytest.mark.timeout(300)
def test_fresh_seeds_of_every_shipped_environment_pass_every_check(tmp_path: Path) -> None:
    envs = shipped_environments()
    assert len(envs) >= 8
    for env in envs:
        out = tmp_path / f"{env}.jsonl"
        summary = generate_dataset(GenerateSettings(envs=[env], n=3, seed=1000, output=str(out)))
        cert = certify_file(out)
        assert summary.samples == cert.sample_count > 0, env
        assert cert.ok and cert.checks == dict.fromkeys(("replay", "solvable", "grounded", "coherent", "unique", "trace"),
                                                        cert.sample_count), (env, cert.checks)
