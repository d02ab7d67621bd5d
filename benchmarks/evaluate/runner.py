"""Evaluating a tool-using model: run it as an agent on each sample's fresh sandboxes, score it.

Per sample and trial the model gets the query and the sample's candidate tools; its tool calls
are made for real in a fresh session and the results go back to it, until it answers or reaches
the step limit. The reference chains are replayed on another fresh session for the reference
state. Scoring is :mod:`benchmarks.evaluate.metrics`; this module gathers its inputs and yields one
:class:`TrialEvent` per trial, so a caller can show progress; :func:`benchmarks.evaluate.report.build_report`
makes the on-disk report. ``toolgrad eval-calls`` (single-turn call lists, BFCL-style) is
:mod:`benchmarks.evaluate.call_lists`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from benchmarks.certify.replay import (
    BenchmarkError,
    Dataset,
    DatasetLine,
    Divergence,
    parse_sample,
    resolve_tool,
)
from benchmarks.certify.sandboxes import ProviderPlan, SandboxProvider
from simulator.canonical import canonical_json
from toolgrad.agent_prompt import AGENT_SYSTEM_PROMPT
from toolgrad.backends.base import ChatModel, EndpointError, ModelError
from toolgrad.executors import in_process, ordered_map, pickle_problem, process_local
from toolgrad.records import Sample
from toolgrad.toolbox import Toolbox

from .metrics import (
    Attempt,
    Call,
    Reference,
    TrialScore,
    key_values,
    score_trial,
)

REPORT_VERSION = "1"
SYSTEM_PROMPT = AGENT_SYSTEM_PROMPT  # one text for evaluation and training data
JUDGE_MAX_TOKENS = 512
MAX_TOKENS = 1024  # per model reply, by default: a model that loops stops here, not at the context size

JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 100}, "reason": {"type": "string"}},
    "required": ["score", "reason"],
    "additionalProperties": False,
}
JUDGE_PROMPT = (
    "You grade an assistant's final answer to a user's request that needed tool calls. The "
    "reference answer was written from the real tool outputs and is correct. Score the "
    "assistant's answer from 0 to 100 for how well it fulfils the request: correct and complete "
    "facts compared with the reference (most weight), no invented facts, and clarity. Reply as "
    'JSON: {"score": <0-100>, "reason": "<one sentence>"}.'
)
# consecutive model errors, with no completion ever received, after which the run stops:
# the server is down or the model name is wrong, and scoring zeros would hide that
FATAL_MODEL_ERRORS = 3


class EvaluationAborted(BenchmarkError):
    """The run cannot go on: the model server fails every request, or a sample's environment
    differs from the installed one."""


@dataclass(frozen=True, slots=True)
class EvalSettings:
    k: int = 1  # trials per sample
    max_steps: int = 10  # tool calls per trial
    temperature: float = 0.0
    max_tokens: int = MAX_TOKENS


# --- the agent -----------------------------------------------------------------------------------


@dataclass(slots=True)
class AgentRun:
    calls: list[Call] = field(default_factory=list)
    answer: str = ""
    stop: str = "answered"
    error: str = ""
    endpoint_error: bool = False  # the model error was the endpoint failing (toolgrad.backends.base.EndpointError)
    messages: list[dict[str, Any]] = field(default_factory=list)
    completions: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def run_agent(model: ChatModel, query: str, tools: list[dict[str, Any]], toolbox: Toolbox, session: str,
              *, max_steps: int, temperature: float = 0.0, max_tokens: int | None = None) -> AgentRun:
    """Let ``model`` work on ``query`` with ``tools``, its calls made in ``session``.

    Stops when the model answers without a tool call, when it has made ``max_steps`` calls (a
    call beyond that is answered with an error and ends the run) or when the model fails
    (:class:`ModelError`). A bad call (unknown tool, arguments that are not a JSON object, a 4xx)
    is not an error of the run: the model sees the result and may try again.
    """
    trial = TrialCalls(toolbox, session, offered_tools(tools), max_steps)
    run = AgentRun(calls=trial.calls,
                   messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": query}])
    while True:
        try:
            completion = model.complete(run.messages, tools=tools or None, temperature=temperature,
                                        max_tokens=max_tokens)
        except ModelError as exc:
            run.stop, run.error, run.endpoint_error = "model_error", str(exc), isinstance(exc, EndpointError)
            return run
        run.completions += 1
        run.prompt_tokens += completion.prompt_tokens
        run.completion_tokens += completion.completion_tokens
        if not completion.tool_calls:
            run.answer = completion.content
            run.messages.append({"role": "assistant", "content": completion.content})
            return run
        run.messages.append({
            "role": "assistant", "content": completion.content or None,
            "tool_calls": [{"id": tc.id, "type": "function",
                            "function": {"name": tc.name, "arguments": tc.arguments}}
                           for tc in completion.tool_calls],
        })
        for tc in completion.tool_calls:
            content = trial.call(tc.name, parse_arguments(tc.arguments))
            run.messages.append({"role": "tool", "tool_call_id": tc.id, "content": content})
        if trial.step_limit:
            run.stop, run.answer = "step_limit", completion.content
            return run


def offered_specs(sample: Sample, toolbox: Toolbox) -> list[dict[str, Any]]:
    """The OpenAI specs of the sample's candidate tools: inline in a schema-1 or -2 line, else
    the installed tools' (the sample's environments, checked against its fingerprints, give
    the specs its generator stored in the dataset's tool table)."""
    return list(sample.legacy_tool_specs) or toolbox.openai_tools(sample.candidate_tools)


def offered_tools(tools: Sequence[dict[str, Any]]) -> set[str]:
    """The names of OpenAI function-calling tool specs."""
    return {str(t.get("function", {}).get("name")) for t in tools}


class TrialCalls:
    """The tool calls of one trial, made in ``session`` as the model asks for them: what the
    metrics score (:attr:`calls`) and what the model is shown. After ``max_steps`` calls every
    further call is answered with an error and :attr:`step_limit` is set (the run then ends).
    Shared by ``toolgrad eval`` and the inspect task, so one transcript scores the same in both."""

    def __init__(self, toolbox: Toolbox, session: str, allowed: set[str], max_steps: int) -> None:
        self.toolbox, self.session, self.allowed, self.max_steps = toolbox, session, allowed, max_steps
        self.calls: list[Call] = []
        self.step_limit = False
        self._hashes = toolbox.state_hashes(session)

    def call(self, name: str, arguments: Any) -> str:
        """Make one call (``arguments`` as parsed: None when they were not JSON); its result text."""
        if len(self.calls) >= self.max_steps:
            self.step_limit = True
            return orjson.dumps({"error": f"step limit of {self.max_steps} tool calls reached"}).decode()
        call, content = make_call(self.toolbox, self.session, name, arguments, self.allowed, self._hashes)
        self.calls.append(call)
        return content


def parse_arguments(raw: str) -> Any:
    """A tool call's arguments as the model wrote them: the JSON value ({} when blank), or None
    when they are not JSON."""
    try:
        return orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return None


def make_call(toolbox: Toolbox, session: str, name: str, arguments: Any, allowed: set[str],
              hashes: dict[str, str]) -> tuple[Call, str]:
    """Make one tool call of a model's in ``session``: the :class:`Call` the metrics score and
    the text the model is shown. ``allowed`` are the tools offered; ``hashes`` (env -> state
    hash, updated here) tell whether the call wrote."""
    if name not in allowed or name not in toolbox.tools:
        error = f"unknown tool {name!r}"
        return Call(name, {}, 0, error=error, known=False), orjson.dumps({"error": error}).decode()
    if not isinstance(arguments, dict):
        error = "arguments must be a JSON object"
        return Call(name, {}, 0, env=toolbox.tools[name].env, error=error), orjson.dumps({"error": error}).decode()
    result = toolbox.call(session, name, arguments)
    env = toolbox.tools[name].env
    wrote = bool(result.state_hash) and result.state_hash != hashes.get(env)
    if result.state_hash:
        hashes[env] = result.state_hash
    call = Call(name, arguments, result.status, env=env, wrote=wrote, error=result.error)
    return call, result.content()


# --- the reference -------------------------------------------------------------------------------


def reference_run(sample: Sample, toolbox: Toolbox, session: str) -> tuple[Reference, Divergence | None]:
    """Replay the reference chains in ``session`` (fresh): the reference calls, the final state
    per environment, the key values of the answer; and the first step (if any) whose replayed
    status or state hash differs from the record (an uncertified sample)."""
    start = toolbox.state_hashes(session)
    hashes = dict(start)
    calls: list[Call] = []
    divergence: Divergence | None = None
    for ci, chain in enumerate(sample.chains):
        for si, step in enumerate(chain.steps):
            name = resolve_tool(toolbox, step) or step.tool
            result = toolbox.call(session, name, step.arguments)
            if divergence is None and (result.status, result.state_hash) != (step.status, step.state_hash):
                divergence = Divergence(ci, si, "status" if result.status != step.status else "state_hash",
                                        step.status, result.status)
            before = hashes.get(step.env, "")
            calls.append(Call(step.tool, dict(step.arguments), step.status, env=step.env,
                              wrote=step.state_hash != before))
            hashes[step.env] = step.state_hash
    responses = [s.response for s in sample.steps() if 200 <= s.status < 300]
    state = toolbox.state_hashes(session)
    reference = Reference(tuple(calls), state, sample.answer, key_values(responses, sample.answer),
                          as_recorded=divergence is None)
    return reference, divergence


# --- the judge -----------------------------------------------------------------------------------


def judge_answer(judge: ChatModel, query: str, reference_answer: str, answer: str) -> tuple[float | None, str]:
    """Quality of Response, 0..100, from an LLM judge; (None, why) when it gives no usable score."""
    user = orjson.dumps({"request": query, "reference_answer": reference_answer,
                         "assistant_answer": answer}, option=orjson.OPT_INDENT_2).decode()
    try:
        completion = judge.complete([{"role": "system", "content": JUDGE_PROMPT}, {"role": "user", "content": user}],
                                    json_schema=JUDGE_SCHEMA, temperature=0.0, max_tokens=JUDGE_MAX_TOKENS)
        verdict = orjson.loads(completion.content)
        score = float(verdict["score"])
    except (ModelError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        return None, f"judge gave no score: {exc}"
    return max(0.0, min(100.0, score)), str(verdict.get("reason", ""))


# --- the run -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrialEvent:
    """One finished trial: which sample, which trial, its score and its full trace."""

    index: int  # the sample's position in the dataset
    line: int
    sample: Sample
    trial: int
    score: TrialScore
    run: AgentRun
    reference: Reference
    reference_divergence: Divergence | None
    judge_reason: str = ""  # the judge's one-sentence reason, when a judge scored the answer


@dataclass(frozen=True, slots=True)
class ModelEndpoint:
    """A model at an OpenAI-compatible endpoint, as settings: what a worker process or a Ray task
    connects from (its API key from its own environment: ``TOOLGRAD_API_KEY`` or ``OPENAI_API_KEY``)."""

    model: str
    base_url: str

    def connect(self) -> ChatModel:
        from toolgrad.backends.openai import OpenAIChat

        chat: ChatModel = OpenAIChat(model=self.model, base_url=self.base_url, api_key=endpoint_api_key())
        return chat


def endpoint_api_key() -> str:
    """The API key for a model endpoint, from the environment only (a local server needs none)."""
    return os.environ.get("TOOLGRAD_API_KEY") or os.environ.get("OPENAI_API_KEY") or "sk-no-key-required"


Model = ChatModel | ModelEndpoint
SampleItem = tuple[int, DatasetLine, Sample]  # (position in the dataset, its line, the sample)


def _connected(model: Model) -> ChatModel:
    if isinstance(model, ModelEndpoint):
        return process_local(("eval-chat", model), model.connect)
    return model


def evaluate_sample(item: SampleItem, toolbox: Toolbox, model: Model, settings: EvalSettings,
                    judge: Model | None = None) -> list[TrialEvent]:
    """Every trial of one sample, on fresh sessions of ``toolbox`` (its environments, checked)."""
    index, line, sample = item
    ref_session = f"eval-{line.line}-reference"
    toolbox.reset(ref_session)
    try:
        reference, divergence = reference_run(sample, toolbox, ref_session)
    finally:
        toolbox.drop(ref_session)
    events = []
    for trial in range(settings.k):
        session = f"eval-{line.line}-{trial}"
        toolbox.reset(session)
        try:
            run = run_agent(_connected(model), sample.query, offered_specs(sample, toolbox), toolbox, session,
                            max_steps=settings.max_steps, temperature=settings.temperature,
                            max_tokens=settings.max_tokens)
            state = toolbox.state_hashes(session)
        finally:
            toolbox.drop(session)
        score = score_trial(reference, Attempt(tuple(run.calls), state, run.answer, run.stop))
        reason = ""
        if judge is not None and run.stop != "model_error":
            qor, reason = judge_answer(_connected(judge), sample.query, sample.answer, run.answer)
            score = replace(score, qor_judge=qor)
        events.append(TrialEvent(index, line.line, sample, trial, score, run, reference, divergence, reason))
    return events


class EvalJob:
    """``job(item)``: one sample's trials in a worker process or a Ray task. Pickled, it carries
    the provider's plan and the models as :class:`ModelEndpoint` settings; each worker builds its
    sandboxes and clients once."""

    def __init__(self, plan: ProviderPlan, model: Model, judge: Model | None, settings: EvalSettings) -> None:
        self.plan, self.model, self.judge, self.settings = plan, model, judge, settings

    def __call__(self, item: SampleItem) -> list[TrialEvent]:
        provider = process_local(("eval-provider", self.plan), lambda: SandboxProvider.from_plan(self.plan))
        toolbox = provider.toolbox_for(item[2].provenance.environments)
        if isinstance(toolbox, Divergence):  # the driver checked it: an installation that changed meanwhile
            raise EvaluationAborted(f"line {item[1].line}: {toolbox.field} is {toolbox.got!r} in a worker")
        return evaluate_sample(item, toolbox, self.model, self.settings, self.judge)


def _check_environments(dataset: Dataset, provider: SandboxProvider) -> dict[bytes, Toolbox]:
    """Every line's environments checked before the first model call (a streaming pass that
    reads only each line's provenance; the samples are parsed once, when their trials run):
    the toolbox of each distinct set of recorded fingerprints, by its canonical JSON."""
    toolboxes: dict[bytes, Toolbox] = {}
    for line in dataset.lines:
        try:
            record = orjson.loads(line.text)
            environments = record["provenance"]["environments"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # not a sample: parsing it for its trials names the line
        key = canonical_json(environments)
        if not isinstance(environments, dict) or key in toolboxes:
            continue
        toolbox = provider.toolbox_for(environments)
        if isinstance(toolbox, Divergence):
            raise EvaluationAborted(
                f"{dataset.path}:{line.line}: sample {str(record.get('id', ''))[:12]} cannot be evaluated here: "
                f"{toolbox.field} is {toolbox.got!r}, the record says {toolbox.expected!r}; "
                "run `toolgrad certify` on the dataset to see every sample's verdict")
        toolboxes[key] = toolbox
    return toolboxes


def evaluate_dataset(dataset: Dataset, model: Model, provider: SandboxProvider, settings: EvalSettings,
                     *, judge: Model | None = None, workers: int = 1, executor: str = "local",
                     ray_address: str | None = None) -> Iterator[TrialEvent]:
    """Run every sample ``settings.k`` times, yielding each trial (file order, whoever ran it).

    With ``workers`` > 1 or ``executor="ray"`` samples run in other processes
    (:func:`toolgrad.executors.ordered_map`): ``model`` and ``judge`` are then
    :class:`ModelEndpoint` settings each worker connects from. Raises
    :class:`EvaluationAborted` before any model call when a sample's environment is not the
    recorded one, and when the first trials all fail on the model server.
    """
    def items() -> Iterator[SampleItem]:  # a line at a time, however large the dataset; each parsed once
        for index, line in enumerate(dataset.lines):
            yield index, line, parse_sample(line, dataset.path)

    toolboxes = _check_environments(dataset, provider)
    if in_process(workers, executor):
        def one(item: SampleItem) -> list[TrialEvent]:
            toolbox = toolboxes.get(canonical_json(item[2].provenance.environments)) \
                or provider.toolbox_for(item[2].provenance.environments)
            assert not isinstance(toolbox, Divergence)  # every line's environments were checked
            return evaluate_sample(item, toolbox, model, settings, judge)

        per_sample = ordered_map(one, items())
    else:
        job = EvalJob(provider.plan(), model, judge, settings)
        problem = pickle_problem(job)
        if problem is not None:
            raise BenchmarkError(f"--workers > 1 and --executor ray need the models as ModelEndpoint settings "
                                 f"(a connected client cannot be sent to another process): {problem}")
        per_sample = ordered_map(job, items(), workers=workers, executor=executor, ray_address=ray_address)
    yield from _stop_on_a_dead_endpoint(event for events in per_sample for event in events)


def _stop_on_a_dead_endpoint(events: Iterator[TrialEvent]) -> Iterator[TrialEvent]:
    """The trials, in order, until the first :data:`FATAL_MODEL_ERRORS` all failed without a
    completion (the server is down or the model name is wrong: zeros would hide that)."""
    failures = 0
    answered_once = False
    for event in events:
        run = event.run
        if run.stop == "model_error" and run.completions == 0:
            failures += 1
            if not answered_once and failures >= FATAL_MODEL_ERRORS:
                raise EvaluationAborted(
                    f"the model failed on each of the first {failures} trials: {run.error}\n"
                    "  fix: check --base-url, --model and that the server is running")
        else:
            answered_once = True
        yield event
