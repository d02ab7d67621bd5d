"""The benchmark as an inspect_ai task, run by inspect itself with its scripted mock model, and
checked against `toolgrad eval` on the same transcripts."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from inspect_ai import Epochs
from inspect_ai import eval as inspect_eval
from inspect_ai.log import EvalLog, read_eval_log
from inspect_ai.model import ChatMessage, ChatMessageAssistant, ModelOutput, ModelUsage, get_model
from inspect_ai.tool import ToolCall as InspectToolCall

from benchmarks.certify.certificate import certify_file
from benchmarks.certify.replay import read_dataset
from benchmarks.certify.sandboxes import SandboxProvider
from benchmarks.evaluate.inspect_task import SCORE_KEYS, score_values
from benchmarks.evaluate.runner import EvalSettings, evaluate_dataset
from tests.support import scripted_server as scripted
from toolgrad.backends.base import Completion, ToolCall
from toolgrad.dataset.runner import generate_dataset
from toolgrad.records import Sample
from toolgrad.settings import GenerateSettings

pytestmark = [
    pytest.mark.slow,
    # inspect's own retry set-up, not ours
    pytest.mark.filterwarnings("ignore:The 'initial' parameter is deprecated:DeprecationWarning"),
]
ROOT = Path(__file__).resolve().parents[2]
TASK = str(ROOT / "benchmarks" / "evaluate" / "inspect_task.py") + "@toolgrad"
INSPECT = Path(sys.executable).with_name("inspect")
NOT_JSON = "{not json"


@dataclass(frozen=True)
class Turn:
    """One model reply: text and tool calls (name, arguments; a str is arguments that are not JSON)."""

    content: str
    calls: tuple[tuple[str, dict[str, Any] | str], ...] = ()


Script = Callable[[Sample, int], Turn]  # (the sample, replies so far) -> the next reply


def reference_calls(sample: Sample, turn: int) -> Turn:
    """The reference chain, one call per reply, then the reference answer."""
    steps = sample.steps()
    if turn < len(steps):
        return Turn("", ((steps[turn].tool, dict(steps[turn].arguments)),))
    return Turn(sample.answer)


def no_calls(sample: Sample, turn: int) -> Turn:
    return Turn("I cannot do that.")


def clumsy(sample: Sample, turn: int) -> Turn:
    """An unknown tool and unparseable arguments in one reply, then the first reference call with
    no arguments (a 4xx where it requires one: dropping only its first argument was a good call
    when that was an optional page size), then the first step right, then half an answer."""
    first = sample.steps()[0]
    if turn == 0:
        return Turn("trying", (("no_such_tool", {}), (first.tool, NOT_JSON)))
    if turn == 1:
        return Turn("", ((first.tool, {}),))
    if turn == 2:
        return Turn("", ((first.tool, dict(first.arguments)),))
    return Turn(sample.answer[: len(sample.answer) // 2])


class ScriptedChatModel:
    """The script as a `toolgrad eval` model (the openai-style ChatModel protocol)."""

    model = "scripted"
    base_url = "scripted://"

    def __init__(self, samples: list[Sample], script: Script) -> None:
        self.by_query = {s.query: s for s in samples}
        self.script = script

    def complete(self, messages: list[dict[str, Any]], **_: Any) -> Completion:
        sample = self.by_query[next(m["content"] for m in messages if m["role"] == "user")]
        turn = self.script(sample, sum(1 for m in messages if m["role"] == "assistant"))
        calls = tuple(ToolCall(f"call_{i}", name, args if isinstance(args, str) else orjson.dumps(args).decode())
                      for i, (name, args) in enumerate(turn.calls))
        return Completion(turn.content, calls)


def mock_outputs(samples: list[Sample], script: Script) -> Callable[..., ModelOutput]:
    """The script as inspect's mockllm custom outputs (a function of the conversation so far, so
    concurrent samples and epochs each get their own turn)."""
    by_query = {s.query: s for s in samples}

    def output(messages: list[ChatMessage], *_: Any) -> ModelOutput:
        sample = by_query[next(m.text for m in messages if m.role == "user")]
        turn = script(sample, sum(1 for m in messages if isinstance(m, ChatMessageAssistant)))
        calls = [InspectToolCall(id=f"call_{i}", function=name, arguments={} if isinstance(args, str) else args,
                                 parse_error=f"not JSON: {args}" if isinstance(args, str) else None)
                 for i, (name, args) in enumerate(turn.calls)]
        result = ModelOutput.from_content("mockllm/model", turn.content)
        result.choices[0].message.tool_calls = calls or None
        # a usage figure keeps mockllm from counting tokens with tiktoken (which would download its tables)
        result.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return result

    return output


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Sample]]:
    """Four samples over petstore and crm from the offline generator, certified."""
    path = tmp_path_factory.mktemp("inspect") / "data.jsonl"
    generate_dataset(GenerateSettings.model_validate({"envs": ["petstore", "crm"], "n": 4, "seed": 0,
                                                      "output": str(path)}))
    certificate = certify_file(path)
    assert certificate.ok and certificate.passed == certificate.sample_count == 4
    return path, list(read_dataset(path).samples())


def run_inspect(path: Path, samples: list[Sample], script: Script, log_dir: Path, **options: Any) -> EvalLog:
    task_args = {"dataset": str(path), "max_steps": options.pop("max_steps", 10)}
    (log,) = inspect_eval(TASK, task_args=task_args, log_dir=str(log_dir), display="none",
                          model=get_model("mockllm/model", custom_outputs=mock_outputs(samples, script)), **options)
    assert log.status == "success", log.error
    return log


def metric(log: EvalLog, name: str, reducer: str | None = None) -> float:
    assert log.results is not None
    (found,) = [s for s in log.results.scores if s.name == name and (reducer is None or s.reducer == reducer)]
    return float(found.metrics["mean"].value)


def test_reference_calls_score_one(certified: tuple[Path, list[Sample]], tmp_path: Path) -> None:
    path, samples = certified
    log = run_inspect(path, samples, reference_calls, tmp_path, epochs=Epochs(2, ["mean", "pass_k_2"]))
    assert metric(log, "tool_recall", "mean") == 1.0
    assert metric(log, "outcome_match", "mean") == 1.0
    assert metric(log, "success_rate", "mean") == 1.0
    assert metric(log, "passed", "pass_k_2") == 1.0  # pass^2: both epochs pass on every sample
    assert log.samples is not None and len(log.samples) == 2 * len(samples)
    first = log.samples[0]
    assert first.metadata["reference_answer"] == first.target
    assert first.metadata["reference_chains"] and first.store["toolgrad"]["stop"] == "answered"


def test_a_model_that_calls_nothing_scores_zero(certified: tuple[Path, list[Sample]], tmp_path: Path) -> None:
    path, samples = certified
    log = run_inspect(path, samples, no_calls, tmp_path)
    assert metric(log, "tool_recall") == 0.0
    assert metric(log, "success_rate") == 0.0
    assert metric(log, "outcome_match") == 0.0  # every sample writes, and nothing was written
    assert metric(log, "passed") == 0.0


@pytest.mark.parametrize(("script", "max_steps"), [(reference_calls, 10), (no_calls, 10), (clumsy, 10),
                                                   (reference_calls, 2)])  # fmt: skip
def test_toolgrad_eval_scores_the_same_transcripts_the_same(certified: tuple[Path, list[Sample]], tmp_path: Path,
                                                            script: Script, max_steps: int) -> None:
    path, samples = certified
    log = run_inspect(path, samples, script, tmp_path, max_steps=max_steps)
    assert log.samples is not None
    by_id = {s.id: s for s in log.samples}
    with SandboxProvider("inprocess") as provider:
        events = list(evaluate_dataset(read_dataset(path), ScriptedChatModel(samples, script), provider,
                               EvalSettings(k=1, max_steps=max_steps)))
    assert len(events) == len(samples) == len(by_id)
    for event in events:
        scored = by_id[event.sample.id].scores
        assert scored is not None
        inspect_score = scored["toolgrad_scorer"]
        expected = score_values(event.score)
        assert set(inspect_score.value) == set(expected) == set(SCORE_KEYS)  # type: ignore[arg-type]
        for key, value in expected.items():
            got = inspect_score.value[key]  # type: ignore[index]
            undefined = got is None or math.isnan(got)  # NaN; some inspect versions log it as null
            assert (math.isnan(value) and undefined) or got == value, (key, got, value)
        assert inspect_score.metadata is not None
        assert inspect_score.metadata["errors"] == event.score.errors
        assert inspect_score.metadata["stop"] == event.run.stop
        assert inspect_score.answer == event.run.answer
    if script is clumsy:  # the error paths were exercised, not just the happy one
        assert all(e.score.errors["wrong_tool"] >= 1 and e.score.errors["bad_arguments"] >= 2 for e in events)
    if max_steps == 2:
        assert all(e.run.stop == "step_limit" for e in events)


def scripted_handler(samples: list[Sample], script: Script) -> Callable[[dict[str, Any]], Any]:
    """The script as the scripted OpenAI-compatible server's handler."""
    by_query = {s.query: s for s in samples}

    def handle(request: dict[str, Any]) -> Any:
        messages = request["messages"]
        query = next(m["content"] for m in messages if m["role"] == "user")
        if isinstance(query, list):  # content parts
            query = "".join(part.get("text", "") for part in query)
        turn = script(by_query[query], sum(1 for m in messages if m["role"] == "assistant"))
        if turn.calls:
            return scripted.tool_call_reply(*turn.calls, content=turn.content or None)
        return scripted.text_reply(turn.content)

    return handle


def test_the_documented_inspect_command_runs_the_task(certified: tuple[Path, list[Sample]], tmp_path: Path) -> None:
    """`inspect eval benchmarks/evaluate/inspect_task.py -T dataset=...` with inspect's OpenAI-compatible
    provider (the real openai client) against a scripted server on 127.0.0.1."""
    path, samples = certified
    with scripted.ScriptedOpenAI(scripted_handler(samples, reference_calls)) as server:
        environ = {**os.environ, "SCRIPTED_API_KEY": "sk-test", "SCRIPTED_BASE_URL": server.base_url}
        result = subprocess.run(
            [str(INSPECT), "eval", "benchmarks/evaluate/inspect_task.py", "-T", f"dataset={path}",
             "--model", "openai-api/scripted/scripted-model", "--log-dir", str(tmp_path), "--display", "none"],
            cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        # the log first: once (in a slow-tier run sharing two cores) inspect exited 0 having sent
        # no request, and only the log says why
        (log_file,) = tmp_path.glob("*.eval")
        log = read_eval_log(str(log_file))
        assert log.status == "success", (log.status, log.error, result.stderr[-2000:])
        assert len(server.requests) == sum(len(s.steps()) + 1 for s in samples)
    assert metric(log, "tool_recall") == metric(log, "outcome_match") == metric(log, "passed") == 1.0

    # the store keeps what the model did, so inspect can rescore the log without the model
    rescored_file = tmp_path / "rescored.eval"
    rescore = subprocess.run(
        [str(INSPECT), "score", str(log_file), "--action", "overwrite", "--output-file", str(rescored_file)],
        cwd=ROOT, env={**environ, "SCRIPTED_BASE_URL": "http://127.0.0.1:9/v1"}, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert rescore.returncode == 0, rescore.stdout[-2000:] + rescore.stderr[-2000:]
    rescored = read_eval_log(str(rescored_file))
    assert rescored.samples is not None and log.samples is not None
    assert [s.scores for s in rescored.samples] == [s.scores for s in log.samples]
