"""Evaluation end to end: scripted agents on real sandboxes, scored against the reference."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from benchmarks.certify.certificate import read_dataset
from benchmarks.certify.sandboxes import SandboxProvider
from benchmarks.cli.app import app
from benchmarks.evaluate.call_lists import load_call_items, run_call_eval
from benchmarks.evaluate.report import (
    build_report,
    load_report,
    render_html,
    render_markdown,
    trace_record,
    write_run,
)
from benchmarks.evaluate.runner import (
    EvalSettings,
    EvaluationAborted,
    evaluate_dataset,
)
from tests.support import scripted_server as scripted
from toolgrad.backends.base import Completion, ModelError, ToolCall
from toolgrad.exports.openai import export_dataset
from toolgrad.records import Sample
from toolgrad.settings import ExportSettings


class ReplayAgent:
    """A perfect agent: makes the reference calls one per turn, then gives the reference answer.
    It finds its place by the query and counts the tool results it has seen."""

    model = "replay-agent"
    base_url = "scripted://"

    def __init__(self, samples: list[Sample]) -> None:
        self.by_query = {s.query: s for s in samples}

    def complete(self, messages: list[dict[str, Any]], **_: Any) -> Completion:
        sample = self.by_query[next(m["content"] for m in messages if m["role"] == "user")]
        done = sum(1 for m in messages if m["role"] == "tool")
        steps = sample.steps()
        if done < len(steps):
            step = steps[done]
            return Completion("", (ToolCall(f"call_{done}", step.tool, orjson.dumps(step.arguments).decode()),))
        return Completion(sample.answer)


class BadAgent:
    """Calls a tool that does not exist, then a reference tool with arguments that are not JSON,
    then answers."""

    model = "bad-agent"
    base_url = "scripted://"

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                 **_: Any) -> Completion:
        done = sum(1 for m in messages if m["role"] == "tool")
        if done == 0:
            return Completion("", (ToolCall("c0", "no_such_tool", "{}"),))
        if done == 1 and tools:
            return Completion("", (ToolCall("c1", tools[0]["function"]["name"], "{not json"),))
        return Completion("I could not do it.")


class DownAgent:
    model = "down"
    base_url = "http://127.0.0.1:9/v1"

    def complete(self, messages: list[dict[str, Any]], **_: Any) -> Completion:
        raise ModelError("connection refused")


def run(dataset_path: Path, model: Any, **settings: Any) -> Any:
    dataset = read_dataset(dataset_path)
    config = EvalSettings(**settings)
    with SandboxProvider("inprocess") as provider:
        events = list(evaluate_dataset(dataset, model, provider, config))
        prints = provider.installed_fingerprints()
    report = build_report(dataset, events, model=model.model, base_url=model.base_url, settings=config,
                          backend="inprocess", environments=prints)
    return report, events


def test_a_perfect_agent_scores_one(dataset_path: Path) -> None:
    dataset = read_dataset(dataset_path)
    report, events = run(dataset_path, ReplayAgent(list(dataset.samples())), max_steps=20)
    m = report.metrics
    assert (m["tool_recall"], m["success_rate"], m["outcome_match"]) == (1.0, 1.0, 1.0)
    assert m["argument_accuracy"] == 1.0 and m["tool_precision"] == 1.0
    assert all(s.reference_certified for s in report.samples)
    # a synthesised dataset may record failed calls on purpose, so pass^1 counts 2xx reference tools only
    assert set(report.per_env) == {"petstore", "museum"}
    assert all(e.run.stop == "answered" for e in events)
    assert report.errors["wrong_tool"] == 0 and report.errors["missing_write"] == 0


def test_each_line_is_parsed_once_and_each_set_of_environments_checked_once(
        dataset_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.evaluate import runner

    parsed: list[int] = []
    checked: list[tuple[str, ...]] = []
    real_parse, real_toolbox = runner.parse_sample, SandboxProvider.toolbox_for
    monkeypatch.setattr(runner, "parse_sample", lambda line, path="": parsed.append(line.line) or real_parse(line, path))
    monkeypatch.setattr(SandboxProvider, "toolbox_for",
                        lambda self, fps: checked.append(tuple(sorted(fps))) or real_toolbox(self, fps))
    dataset = read_dataset(dataset_path)
    envs = {tuple(sorted(s.provenance.environments)) for s in dataset.samples()}
    _, events = run(dataset_path, BadAgent())
    assert len(events) == len(dataset.lines) and sorted(parsed) == [line.line for line in dataset.lines]
    assert sorted(checked) == sorted(envs)  # once per distinct set, not twice per sample


def test_a_line_that_is_not_a_sample_is_named(dataset_path: Path, tmp_path: Path) -> None:
    from benchmarks.certify.replay import DatasetError

    lines = dataset_path.read_bytes().splitlines(keepends=True)
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"".join(lines[:2]) + b'{"seed": 2, "not": "a sample"}\n' + b"".join(lines[3:]))  # bad: line 3
    with pytest.raises(DatasetError, match=r"broken\.jsonl:3: "):
        run(broken, BadAgent())


def test_a_bad_agent_scores_lower_with_the_right_errors(dataset_path: Path) -> None:
    report, events = run(dataset_path, BadAgent())
    m = report.metrics
    assert m["success_rate"] == 0.0 and m["tool_recall"] < 1.0
    n = len(events)
    assert report.errors["wrong_tool"] >= n  # every trial called no_such_tool
    assert report.errors["bad_arguments"] == n  # and one candidate tool with arguments that are not JSON
    assert report.errors["stopped_early"] == n and report.errors["extra_write"] == 0
    assert report.errors["missing_write"] > 0  # the dataset has writes the agent never made
    first = trace_record(events[0])
    assert first["calls"][0]["error"].startswith("unknown tool") and first["stop"] == "answered"


def test_step_limit_and_pass_hat_k(dataset_path: Path) -> None:
    dataset = read_dataset(dataset_path)
    report, events = run(dataset_path, ReplayAgent(list(dataset.samples())), max_steps=1, k=2)
    assert all(e.run.stop == "step_limit" for e in events)
    assert report.errors["step_limit"] == len(events) == 2 * len(dataset.lines)
    assert "pass^2" in report.metrics and report.metrics["pass^2"] <= report.metrics["pass^1"]


def test_an_unreachable_model_stops_the_run(dataset_path: Path) -> None:
    with pytest.raises(EvaluationAborted, match="connection refused"):
        run(dataset_path, DownAgent())


def test_reports_render_and_compare(dataset_path: Path, tmp_path: Path) -> None:
    dataset = read_dataset(dataset_path)
    good, events = run(dataset_path, ReplayAgent(list(dataset.samples())), max_steps=20)
    bad, _ = run(dataset_path, BadAgent())
    paths = write_run(tmp_path / "good", good, (trace_record(e) for e in events))
    assert "<svg" in paths["report.html"].read_text() and "<script" not in paths["report.html"].read_text()
    markdown = paths["report.md"].read_text()
    assert "| metric | replay-agent |" in markdown and "| success rate | 1.000 [1.000, 1.000] |" in markdown
    assert good.intervals["success_rate"] == {"mean": 1.0, "low": 1.0, "high": 1.0, "n": len(dataset.lines)}
    traces = [json.loads(line) for line in paths["traces.jsonl"].read_text().splitlines()]
    assert len(traces) == len(dataset.lines) and traces[0]["messages"][1]["role"] == "user"
    assert load_report(paths["report.json"]) == good

    write_run(tmp_path / "bad", bad, [])
    html = render_html([good, bad])
    assert html.count("<svg") >= 4 and "bad-agent" in html and "replay-agent" in html
    compared = render_markdown([good, bad])
    assert "| metric | replay-agent | bad-agent |" in compared
    # a paired t-test per metric: the bad agent against the perfect one, on the same samples
    assert "## Paired t-test: bad-agent against replay-agent" in compared
    row = next(line for line in compared.splitlines() if line.startswith("| success rate | 1.000 | 0.000 |"))
    assert f"| -1.000 [-1.000, -1.000] | n/a | n/a (no spread) | {len(dataset.lines)} |" in row
    assert "Paired t-test" in html
    out = tmp_path / "compare.html"
    result = CliRunner().invoke(app, ["report", str(tmp_path / "good"), str(tmp_path / "bad" / "report.json"),
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "<svg" in out.read_text()
    result = CliRunner().invoke(app, ["report", str(dataset_path), "-o", str(out)])
    assert result.exit_code == 2 and "not a toolgrad evaluation report" in result.output


def test_call_list_evaluation_of_a_perfect_and_a_silent_model(dataset_path: Path) -> None:
    items = load_call_items(dataset_path)

    class AllAtOnce:
        def complete(self, messages: list[dict[str, Any]], **_: Any) -> Completion:
            item = next(i for i in items if i.messages[-1]["content"] == messages[-1]["content"])
            return Completion("", tuple(ToolCall(f"c{n}", c["name"], json.dumps(c["arguments"]))
                                        for n, c in enumerate(item.reference)))

    class Silent:
        def complete(self, messages: list[dict[str, Any]], **_: Any) -> Completion:
            return Completion("No calls needed.")

    perfect = run_call_eval(items, AllAtOnce(), model_name="all", base_url="")  # type: ignore[arg-type]
    assert perfect["metrics"]["exact_match"] == 1.0 and perfect["metrics"]["call_match"] == 1.0
    silent = run_call_eval(items, Silent(), model_name="silent", base_url="")  # type: ignore[arg-type]
    assert silent["metrics"]["exact_match"] == 0.0 and silent["metrics"]["name_recall"] == 0.0


# --- the real openai client against the scripted OpenAI-compatible server -------------------------


def replay_handler(samples: list[Sample]) -> Any:
    """The server side of a perfect agent: the next reference call, then the reference answer."""
    by_query = {s.query: s for s in samples}

    def handle(request: dict[str, Any]) -> Any:
        messages = request["messages"]
        sample = by_query[next(m["content"] for m in messages if m["role"] == "user")]
        done = sum(1 for m in messages if m["role"] == "tool")
        steps = sample.steps()
        if done < len(steps):
            return scripted.tool_call_reply((steps[done].tool, steps[done].arguments))
        return scripted.text_reply(sample.answer)

    return handle


def wrong_tool_handler(request: dict[str, Any]) -> Any:
    """A bad agent: a tool that is not offered, then a 4xx from a real tool, then it answers."""
    done = sum(1 for m in request["messages"] if m["role"] == "tool")
    if done == 0:
        return scripted.tool_call_reply(("made_up_tool", {"x": 1}))
    if done == 1:
        name = request["tools"][0]["function"]["name"]
        return scripted.tool_call_reply((name, {"no_such_argument": True, "petId": "not-a-number"}))
    return scripted.text_reply("Done.")


@pytest.fixture(scope="module")
def openai_server() -> Iterator[Any]:
    with scripted.ScriptedOpenAI() as server:
        yield server


def test_eval_with_the_openai_client_perfect_and_bad_agents(
        dataset_path: Path, tmp_path: Path, openai_server: Any) -> None:
    samples = list(read_dataset(dataset_path).samples())
    openai_server.reset()
    openai_server.script(replay_handler(samples))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["eval", str(dataset_path), "--model", "scripted-model", "--base-url",
                                      openai_server.base_url, "--max-steps", "20", "--json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    m = report["metrics"]
    assert (m["tool_recall"], m["success_rate"], m["outcome_match"]) == (1.0, 1.0, 1.0)
    assert m["argument_accuracy"] == 1.0 and m["qor_proxy"] == 1.0 and m["pass^1"] == 1.0
    assert sum(report["errors"].values()) == 0
    assert {"report.json", "report.md", "report.html", "traces.jsonl"} <= {p.name for p in out.iterdir()}
    # the model saw each tool's real result
    tool_messages = [m for r in openai_server.requests for m in r["messages"] if m["role"] == "tool"]
    assert tool_messages and all('"status":' in m["content"] for m in tool_messages)
    # every reply is capped: a model that loops stops at max_tokens, not at its context size
    assert {r.get("max_tokens") for r in openai_server.requests} == {1024}
    assert report["settings"]["max_tokens"] == 1024

    openai_server.reset()
    openai_server.script(wrong_tool_handler)
    result = CliRunner().invoke(app, ["eval", str(dataset_path), "--model", "scripted-model", "--base-url",
                                      openai_server.base_url, "--max-tokens", "64", "--json"])
    assert result.exit_code == 0, result.output
    assert {r.get("max_tokens") for r in openai_server.requests} == {64}
    bad = json.loads(result.stdout)
    n = bad["metrics"]["trials"]
    assert bad["metrics"]["success_rate"] < 1.0 and bad["metrics"]["outcome_match"] < 1.0
    assert bad["errors"]["wrong_tool"] >= n and bad["errors"]["stopped_early"] == n
    assert bad["errors"]["bad_arguments"] >= 1 and bad["errors"]["missing_write"] > 0


def test_eval_cli_errors_a_user_can_act_on(dataset_path: Path, tmp_path: Path, openai_server: Any) -> None:
    openai_server.reset()
    openai_server.script(lambda request: scripted.http_error(404, "model 'nope' not found"))
    result = CliRunner().invoke(app, ["eval", str(dataset_path), "--model", "nope", "--base-url",
                                      openai_server.base_url])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "does not serve the model 'nope' (it serves: scripted-model)" in result.output, result.output
    assert openai_server.requests == [], "the endpoint check stops it before any trial"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    result = CliRunner().invoke(app, ["eval", str(bad), "--model", "scripted-model", "--base-url",
                                      openai_server.base_url])
    assert result.exit_code == 2 and "bad.jsonl:1:" in result.output


def test_eval_of_an_unreachable_endpoint_exits_2_within_seconds(dataset_path: Path) -> None:
    """Bad input: --base-url names a port nothing listens on (127.0.0.1:9)."""
    started = time.monotonic()
    result = CliRunner().invoke(app, ["eval", str(dataset_path), "--model", "m", "--base-url",
                                      "http://127.0.0.1:9/v1", "--limit", "2"])
    assert result.exit_code == 2 and time.monotonic() - started < 10, result.output
    assert "cannot reach http://127.0.0.1:9/v1" in result.output and "check --base-url" in result.output


def test_eval_exits_1_when_the_endpoint_fails_on_a_trial(dataset_path: Path, tmp_path: Path,
                                                         openai_server: Any) -> None:
    """The server answers the first sample's trial with HTTP 500 on every retry, the others well:
    the report is written, and the exit code and stderr say that a trial measured the server."""
    samples = list(read_dataset(dataset_path).samples())[:3]
    perfect = replay_handler(samples)

    def flaky(request: dict[str, Any]) -> Any:
        user = next(m["content"] for m in request["messages"] if m["role"] == "user")
        return scripted.http_error(500, "the GPU fell over") if user == samples[0].query else perfect(request)

    openai_server.reset()
    openai_server.script(flaky)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["eval", str(dataset_path), "--model", "scripted-model", "--base-url",
                                      openai_server.base_url, "--limit", "3", "--max-steps", "20", "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "the model endpoint failed on 1 of 3 trial(s)" in result.output and "HTTP 500" in result.output
    assert (out / "report.json").is_file(), "the report is written before the exit"


def test_eval_calls_on_the_bfcl_export_with_the_openai_client(
        dataset_path: Path, tmp_path: Path, openai_server: Any) -> None:
    bfcl = tmp_path / "bfcl.jsonl"
    export_dataset(ExportSettings.model_validate(
        {"input": str(dataset_path), "format": "calls", "output": str(bfcl), "negatives": 0.25}))
    rows = [json.loads(line) for line in bfcl.read_text().splitlines()]
    targets = {r["messages"][1]["content"]: r["target"] for r in rows}
    assert any(r["negative"] for r in rows) and any(r["target"] for r in rows)

    def perfect(request: dict[str, Any]) -> Any:
        query = next(m["content"] for m in request["messages"] if m["role"] == "user")
        return scripted.text_reply("```json\n" + json.dumps(targets[query]) + "\n```")

    def first_call_only(request: dict[str, Any]) -> Any:
        query = next(m["content"] for m in request["messages"] if m["role"] == "user")
        return scripted.text_reply(json.dumps(targets[query][:1]))

    openai_server.reset()
    openai_server.script(perfect)
    result = CliRunner().invoke(app, ["eval-calls", str(bfcl), "--model", "scripted-model", "--base-url",
                                      openai_server.base_url, "--json"])
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)["metrics"]
    assert m["exact_match"] == 1.0 and m["call_match"] == 1.0 and m["irrelevance"] == 1.0
    # the prompt is the export's own (functions listed in the system prompt), not native tools
    assert "tools" not in openai_server.requests[0] and openai_server.requests[0]["messages"][0]["role"] == "system"

    openai_server.reset()
    openai_server.script(first_call_only)
    result = CliRunner().invoke(app, ["eval-calls", str(bfcl), "--model", "scripted-model", "--base-url",
                                      openai_server.base_url, "--json"])
    partial = json.loads(result.stdout)
    assert partial["metrics"]["exact_match"] < 1.0 and partial["metrics"]["call_match"] < 1.0
    assert partial["metrics"]["irrelevance"] == 1.0
    assert any("not called" in e for item in partial["items"] for e in item["errors"])


def test_a_judge_scores_quality_of_response(dataset_path: Path, openai_server: Any) -> None:
    samples = list(read_dataset(dataset_path).samples())
    agent = replay_handler(samples)

    def handle(request: dict[str, Any]) -> Any:
        if "You grade" in str(request["messages"][0].get("content")):
            return scripted.json_reply({"score": 85, "reason": "matches the reference"})
        return agent(request)

    openai_server.reset()
    openai_server.script(handle)
    result = CliRunner().invoke(app, ["eval", str(dataset_path), "--model", "scripted-model", "--base-url",
                                      openai_server.base_url, "--judge", "scripted-model", "--limit", "2",
                                      "--max-steps", "20", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["metrics"]["qor_judge"] == 85.0 and report["judge"] == "scripted-model"
    assert report["dataset"]["samples"] == 2


def test_outcome_of_a_sample_whose_reference_diverged_is_not_evaluated(dataset_path: Path, tmp_path: Path) -> None:
    """Bad input: line 1's first step records a status the simulator does not give (299)."""
    lines = dataset_path.read_text().splitlines(keepends=True)
    record = orjson.loads(lines[0])
    record["chains"][0]["steps"][0]["status"] = 299
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(orjson.dumps(record) + b"\n" + "".join(lines[1:]).encode())
    report, _ = run(tampered, ReplayAgent(list(read_dataset(tampered).samples())), max_steps=20)
    first = report.samples[0]
    assert not first.reference_certified and first.metrics["outcome_match"] is None
    assert all(t.scores["outcome_match"] is None and not t.passed for t in first.trials)
    assert all(s.reference_certified and s.metrics["outcome_match"] == 1.0 for s in report.samples[1:])
    assert report.metrics["outcome_match"] == 1.0 and report.metrics["outcome_not_evaluated"] == 1
    text = render_markdown([report])
    assert f"outcome match not evaluated for 1 of {len(report.samples)} samples" in text
    assert "| not evaluated |" in text


def test_eval_with_two_workers_writes_the_report_of_one(dataset_path: Path, tmp_path: Path,
                                                        openai_server: Any) -> None:
    """Samples run in two worker processes, each with its own client to the same server: the
    report and the traces are the bytes of the one-process run."""
    samples = list(read_dataset(dataset_path).samples())
    openai_server.reset()
    openai_server.script(replay_handler(samples))
    runs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        result = CliRunner().invoke(app, ["eval", str(dataset_path), "--model", "scripted-model", "--base-url",
                                          openai_server.base_url, "--max-steps", "20", "--k", "2",
                                          "--workers", workers, "-o", str(out)])
        assert result.exit_code == 0, result.output
        runs[workers] = out
    for name in ("report.json", "traces.jsonl", "report.md"):
        assert (runs["1"] / name).read_bytes() == (runs["2"] / name).read_bytes(), name
    assert json.loads((runs["2"] / "report.json").read_text())["metrics"]["success_rate"] == 1.0


def test_the_report_says_how_many_references_change_state(dataset_path: Path) -> None:
    """Outcome match of a read-only sample is 1.0 whenever the model wrote nothing: the report
    counts the samples whose reference writes, so a 1.000 over read-only samples reads as such."""
    dataset = read_dataset(dataset_path)
    report, events = run(dataset_path, ReplayAgent(list(dataset.samples())), max_steps=20)
    writes = [any(c.wrote for c in e.reference.calls) for e in events]
    assert all(writes), writes  # every sample of this fixture writes: no note
    assert [s.reference_writes for s in report.samples] == writes
    assert "the reference changes state in" not in render_markdown([report])
    # one read-only sample: the report counts it
    samples = [s.model_copy(update={"reference_writes": i != 0}) for i, s in enumerate(report.samples)]
    text = render_markdown([report.model_copy(update={"samples": samples})])
    assert f"the reference changes state in {len(samples) - 1} of {len(samples)} samples; in the others" in text
    none = [s.model_copy(update={"reference_writes": False}) for s in report.samples]
    text = render_markdown([report.model_copy(update={"samples": none})])
    assert f"the reference changes state in 0 of {len(none)} samples; so outcome match is 1.0 unless" in text
    # a report written before the field existed says nothing either way
    old = [s.model_copy(update={"reference_writes": None}) for s in report.samples]
    assert "the reference changes state in" not in render_markdown([report.model_copy(update={"samples": old})])
