"""The benchmark as an inspect_ai task (the ``[inspect]`` extra).

    inspect eval benchmarks/evaluate/inspect_task.py -T dataset=data.jsonl --model openai/gpt-4o-mini

Each sample of a toolgrad dataset becomes an inspect :class:`~inspect_ai.dataset.Sample`: the
query is the input, the reference answer the target, the reference chains and candidate tools
are metadata. The solver gives the model the sample's candidate tools, backed by a fresh
in-process sandbox session per sample and epoch, and makes its calls exactly as ``toolgrad
eval`` does (:class:`benchmarks.evaluate.runner.TrialCalls`: same results shown, same step limit, same
system prompt and generation defaults). The scorer replays the reference chains on another fresh
session and scores with :func:`benchmarks.evaluate.metrics.score_trial`, so the same transcript gets the
same numbers under both harnesses; inspect's epochs, reducers (``--epochs-reducer
mean,pass_k_2``: pass^k on the ``passed`` key), logs and viewer work unchanged.

What the model did (calls, final state hashes, answer) is kept in the sample's store, so ``inspect
score`` can rescore a log. The LLM judge of ``toolgrad eval --judge`` is not part of this task.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset
from inspect_ai.dataset import Sample as InspectSample
from inspect_ai.model import ChatMessageTool, GenerateConfig
from inspect_ai.scorer import Score, Scorer, Target, mean, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver, system_message
from inspect_ai.tool import Tool, ToolDef, ToolParams

# absolute imports: `inspect eval benchmarks/evaluate/inspect_task.py` loads this file as a top-level module
from benchmarks.certify.replay import Divergence, read_dataset
from benchmarks.certify.sandboxes import SandboxProvider
from benchmarks.evaluate.metrics import Attempt, Call, Reference, TrialScore, score_trial
from benchmarks.evaluate.runner import (
    MAX_TOKENS,
    SYSTEM_PROMPT,
    EvaluationAborted,
    TrialCalls,
    offered_specs,
    offered_tools,
    reference_run,
)
from toolgrad.records import Sample
from toolgrad.toolbox import Toolbox

STORE_KEY = "toolgrad"
SCORE_KEYS = ("tool_recall", "tool_precision", "success_rate", "outcome_match", "argument_accuracy",
              "qor_proxy", "passed")
NAN = float("nan")  # inspect's "not scored" for one key: argument accuracy or QoR proxy undefined


class BenchmarkRun:
    """One task's dataset and sandboxes: samples by inspect id, toolboxes, cached references."""

    def __init__(self, dataset: Path) -> None:
        self.path = dataset
        self.dataset = read_dataset(dataset)
        self.samples: dict[str, Sample] = {}
        self.lines: dict[str, int] = {}
        for line, sample in zip(self.dataset.lines, self.dataset.samples(), strict=True):
            key = sample.id if sample.id not in self.samples else f"{sample.id}-{line.line}"
            self.samples[key] = sample
            self.lines[key] = line.line
        self.provider = SandboxProvider("inprocess")
        self._references: dict[str, tuple[Reference, Divergence | None]] = {}

    def inspect_samples(self) -> list[InspectSample]:
        return [InspectSample(input=sample.query, target=sample.answer, id=key, metadata={
            "line": self.lines[key],
            "reference_answer": sample.answer,
            "reference_chains": [chain.model_dump(mode="json") for chain in sample.chains],
            "candidate_tools": list(sample.candidate_tools),
            "environments": sorted(sample.provenance.environments),
        }) for key, sample in self.samples.items()]  # fmt: skip

    def toolbox(self, key: str) -> Toolbox:
        """The sample's environments, as installed; :class:`EvaluationAborted` when they differ
        from the recorded ones (the numbers would mean nothing)."""
        sample = self.samples[key]
        toolbox = self.provider.toolbox_for(sample.provenance.environments)
        if isinstance(toolbox, Divergence):
            raise EvaluationAborted(
                f"{self.path}:{self.lines[key]}: sample {sample.id[:12]} cannot be evaluated here: "
                f"{toolbox.field} is {toolbox.got!r}, the record says {toolbox.expected!r}")
        return toolbox

    def reference(self, key: str) -> tuple[Reference, Divergence | None]:
        """The reference replay on a fresh session (once per sample: it is deterministic)."""
        if key not in self._references:
            toolbox = self.toolbox(key)
            session = f"inspect-{key}-reference"
            toolbox.reset(session)
            try:
                self._references[key] = reference_run(self.samples[key], toolbox, session)
            finally:
                toolbox.drop(session)
        return self._references[key]


def benchmark_run(dataset: str) -> BenchmarkRun:
    """The run for a dataset file, shared by the task, its solver and its scorer (which inspect
    re-creates from the names and arguments in a log: ``inspect score LOG``)."""
    path = Path(dataset).resolve()
    stat = path.stat() if path.exists() else None
    return _run_for(str(path), (stat.st_mtime_ns, stat.st_size) if stat else None)


@lru_cache(maxsize=8)
def _run_for(path: str, version: tuple[int, int] | None) -> BenchmarkRun:
    return BenchmarkRun(Path(path))


@task(name="toolgrad")
def toolgrad_task(dataset: str, max_steps: int = 10) -> Task:
    """A toolgrad dataset (``-T dataset=data.jsonl``) as an agentic tool-use benchmark."""
    run = benchmark_run(dataset)
    return Task(
        dataset=MemoryDataset(run.inspect_samples(), name=run.path.stem, location=str(run.path)),
        solver=[system_message(SYSTEM_PROMPT), sandbox_agent(str(run.path), max_steps)],
        scorer=toolgrad_scorer(str(run.path)),
        config=GenerateConfig(temperature=0.0, max_tokens=MAX_TOKENS),  # toolgrad eval's defaults
        metadata={"dataset_sha256": run.dataset.sha256, "max_steps": max_steps},
    )


def candidate_tools(specs: list[dict[str, Any]], trial: TrialCalls) -> list[Tool]:
    """The sample's OpenAI tool specs as inspect tools whose calls go through ``trial``."""
    tools = []
    for spec in specs:
        function = spec.get("function", {})
        name = str(function.get("name"))
        parameters = ToolParams.model_validate(function.get("parameters") or {"type": "object"})
        for argument, schema in parameters.properties.items():
            schema.description = schema.description or argument  # inspect insists on one (as its MCP tools do)
        tools.append(ToolDef(_caller(trial, name), name=name, description=str(function.get("description") or name),
                             parameters=parameters).as_tool())
    return tools


def _caller(trial: TrialCalls, name: str) -> Any:
    async def execute(**kwargs: Any) -> str:
        return trial.call(name, kwargs)

    return execute


@solver
def sandbox_agent(dataset: str, max_steps: int = 10) -> Solver:
    """The model works on the query with the sample's tools in a fresh session until it answers
    without a tool call or passes ``max_steps`` calls (``toolgrad eval``'s agent loop)."""
    run = benchmark_run(dataset)

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        key = str(state.sample_id)
        sample, toolbox = run.samples[key], run.toolbox(key)
        session = f"inspect-{key}-{state.epoch}"
        toolbox.reset(session)
        specs = offered_specs(sample, toolbox)
        trial = TrialCalls(toolbox, session, offered_tools(specs), max_steps)
        state.tools = candidate_tools(specs, trial)
        stop = "model_error"  # until a completion ends the run (inspect stops on a model error or a limit)
        try:
            while True:
                state = await generate(state, tool_calls="none")
                message = state.output.message
                if not message.tool_calls:
                    stop = "answered"
                    break
                for tc in message.tool_calls:
                    content = trial.call(tc.function, None if tc.parse_error else tc.arguments)
                    state.messages.append(ChatMessageTool(content=content, tool_call_id=tc.id, function=tc.function))
                if trial.step_limit:
                    stop = "step_limit"
                    break
        finally:
            state.store.set(STORE_KEY, {"calls": [asdict(c) for c in trial.calls], "stop": stop,
                                        "state": toolbox.state_hashes(session), "answer": state.output.completion})
            toolbox.drop(session)
        return state

    return solve


def attempt_from_store(record: dict[str, Any]) -> Attempt:
    return Attempt(tuple(Call(**c) for c in record["calls"]), dict(record["state"]), str(record["answer"]),
                   str(record["stop"]))


def score_values(trial: TrialScore) -> dict[str, float]:
    """A trial's metrics as one inspect score value (undefined ones NaN: left out of means)."""
    values = {name: getattr(trial, name) for name in SCORE_KEYS if name != "passed"}
    return {**{k: NAN if v is None else float(v) for k, v in values.items()}, "passed": float(trial.passed)}


@scorer(metrics={name: [mean()] for name in SCORE_KEYS})
def toolgrad_scorer(dataset: str) -> Scorer:
    """toolgrad's metrics for one trial (see docs/metrics.md), against a fresh reference replay."""
    run = benchmark_run(dataset)

    async def score(state: TaskState, target: Target) -> Score:
        key = str(state.sample_id)
        attempt = attempt_from_store(state.store.get(STORE_KEY))
        reference, divergence = run.reference(key)
        trial = score_trial(reference, attempt)
        errors = {kind: n for kind, n in trial.errors.items() if n}
        return Score(value=score_values(trial), answer=attempt.answer,
                     explanation=f"stop: {attempt.stop}; errors: {errors or 'none'}",
                     metadata={"errors": trial.errors, "env_outcome": trial.env_outcome, "stop": attempt.stop,
                               "reference_divergence": divergence.to_json() if divergence else None})

    return score
