"""The dataset on disk: one :class:`~toolgrad.records.Sample` per JSONL line, and the run that fills it.

What a caller may rely on:

* **Canonical lines.** A line is ``strict_canonical_json(sample.model_dump(mode="json"))``
  plus ``\\n``; ``Sample.id`` is the sha256 of that JSON without the ``id`` key. Records hold no
  timings, hosts or dates, so the same seeds and settings give the same bytes, whatever the
  concurrency or ``PYTHONHASHSEED``.
* **Seeds ascending.** Samples complete in any order and are written in seed order (completions
  that arrive early wait in a bounded buffer). A failed seed (no successful update) is not
  written; the run summary lists it.
* **Crash-safe and resumable.** The file grows by :class:`~toolgrad.dataset.files.LineFile` commits
  (``os.replace`` of a finished copy), so ``kill -9`` at any moment leaves only whole lines.
  Rerunning with the same output resumes: seeds already in the file are skipped, and since
  lines are written in seed order, a requested seed below the file's highest one that is absent
  failed before and is not retried. A trailing partial line (a file written by other means,
  or a power loss) is truncated with a warning.
* **One writer.** A run holds an exclusive lock on ``<output>.lock`` (its pid inside); a second
  run on the same output stops at once with an error naming that pid. The kernel drops the lock
  when the holder exits or dies.
* **Lean lines, sidecars.** Schema 3: each sample's iteration trace is a line of
  ``data.traces.jsonl`` (same order; the sample's ``trace_sha256`` hashes it) and the tools'
  OpenAI specs are stored once, in ``data.tools.json`` (:mod:`toolgrad.dataset.lines`). The
  sidecar grows with the data (:class:`~toolgrad.dataset.files.LineFiles`, sidecar first), and
  resuming cuts the sidecar lines a kill left beyond the data's.
* **Beside the data.** ``data.summary.json`` (the :class:`~toolgrad.records.RunSummary`: what
  varies run to run) and ``data.schema.json`` (the record's JSON Schema), both written
  atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from simulator.environments.environment import shipped_environments
from toolgrad.backends.base import EndpointError
from toolgrad.events import EventSink, Notice, RunFinished, RunStarted, SampleDone
from toolgrad.executors import WorkerLost, check_placement, in_process, ordered_map, pickle_problem
from toolgrad.loop.policy import Policy
from toolgrad.records import SCHEMA_VERSION, Provenance, RunSummary, Sample
from toolgrad.settings import GenerateSettings, RunIncomplete, ToolgradError, sidecar
from toolgrad.toolbox import Toolbox

from .files import LineFiles, OutputLocked, exclusive_writer, write_bytes_atomic, write_json_atomic
from .lines import (
    complete_lines,
    repair_traces,
    tool_table_bytes,
    tools_path,
    traces_path,
    truncate_partial,
)
from .provenance import make_provenance
from .seed_order import PolicyFactory, SeedJob, SeedLines, SeedStopped, Workers

SUMMARY_SUFFIX = ".summary.json"
SCHEMA_SUFFIX = ".schema.json"

__all__ = ["SCHEMA_SUFFIX", "SUMMARY_SUFFIX", "generate_dataset", "open_existing", "sole_writer"]

# -- the file -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Existing:
    seeds: list[int] = field(default_factory=list)
    first: Provenance | None = None
    truncated: int = 0  # bytes of a partial last line removed
    dropped_traces: int = 0  # sidecar lines beyond the data's (a kill between the two commits) removed


def open_existing(path: Path) -> Existing:
    """Read what a previous run left, one line at a time; truncate a trailing partial line and
    make the traces sidecar match the data (:func:`~toolgrad.dataset.lines.repair_traces`)."""
    found = Existing()
    if not path.exists():  # the sidecar commits first: a kill before the first data commit leaves traces alone
        found.dropped_traces = repair_traces(path, [])
        return found
    found.truncated = truncate_partial(path)
    digests: list[str] = []
    fingerprints: dict[str, Any] = {}  # a line names only the environments its chains call
    for number, line in complete_lines(path):
        try:
            record = orjson.loads(line)
            found.seeds.append(int(record["seed"]))
            if record.get("schema_version") != SCHEMA_VERSION:
                raise ToolgradError(f"{path}:{number}: a schema {record.get('schema_version')} record; this toolgrad "
                                    f"writes schema {SCHEMA_VERSION}: write to a new output file")
            digests.append(str(record["trace_sha256"]))
            if found.first is None:
                found.first = Provenance.model_validate(record["provenance"])
            fingerprints.update(record["provenance"]["environments"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ToolgradError(f"{path}:{number}: not a dataset record ({exc}); use a new output file") from exc
    if found.seeds != sorted(found.seeds) or len(set(found.seeds)) != len(found.seeds):
        raise ToolgradError(f"{path}: seeds are not strictly ascending; it was not written by toolgrad generate")
    if found.first is not None:
        found.first = found.first.model_copy(update={"environments": fingerprints})
    found.dropped_traces = repair_traces(path, digests)
    return found


# -- the run ------------------------------------------------------------------------------------


def policy_factory_for(settings: GenerateSettings) -> PolicyFactory:
    if settings.llm == "offline":
        from toolgrad.policies.offline.policy import OfflinePolicy

        return OfflinePolicy
    if not settings.model:
        raise ToolgradError("--llm openai needs --model (or TOOLGRAD_MODEL)")
    try:
        from toolgrad.backends.preflight import check_endpoint
        from toolgrad.policies.model.policy import make_llm_policy  # noqa: F401  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise ToolgradError(f"--llm openai is not available: toolgrad.policies.model.policy.make_llm_policy "
                            f"could not be imported ({exc})") from exc
    if not settings.replay_only:
        try:
            check_endpoint(settings.base_url, settings.model)
        except EndpointError as exc:
            raise ToolgradError(f"the model endpoint is not usable: {exc}") from None

    cache = str(Path(settings.cache).resolve()) if settings.cache else None  # workers may run elsewhere
    return ModelPolicyFactory(settings.model, settings.base_url, cache, settings.replay_only, settings.temperature)


@dataclass(frozen=True, slots=True)
class ModelPolicyFactory:
    """toolbox -> a fresh model policy; picklable, so worker processes and Ray tasks make their own
    client (the record/replay cache is shared through its directory: one file per exchange,
    written atomically, so processes never tear or double an entry)."""

    model: str
    base_url: str
    cache: str | None
    replay_only: bool
    temperature: float

    def __call__(self, toolbox: Toolbox) -> Policy:
        from toolgrad.policies.model.policy import make_llm_policy  # type: ignore[import-not-found,unused-ignore]

        policy: Policy = make_llm_policy(model=self.model, base_url=self.base_url, cache_dir=self.cache,
                                         replay_only=self.replay_only, temperature=self.temperature)
        return policy


def environment_refs(settings: GenerateSettings) -> list[str]:
    refs = list(settings.envs) or shipped_environments()
    if not refs:
        raise ToolgradError("no environment: pass --env NAME|DIR|SPEC (no shipped environments were found)")
    return refs


def generate_dataset(
    settings: GenerateSettings, *, events: EventSink | None = None, policy_factory: PolicyFactory | None = None,
) -> RunSummary:
    """Generate (or resume) the dataset ``settings.output``; returns the run summary, also
    written beside it. ``policy_factory`` (toolbox -> policy, called once per sample) overrides
    the policy that ``settings.llm`` names. One writer at a time: the run holds
    ``<output>.lock``, and a second run on the same output raises :class:`ToolgradError` naming
    the holder's pid."""
    out = Path(settings.output)
    if out.parent and not out.parent.exists():
        raise ToolgradError(f"output directory {out.parent} does not exist")
    with sole_writer(out):
        return _generate_locked(settings, events, policy_factory)


@contextmanager
def sole_writer(out: Path) -> Iterator[None]:
    """Hold ``out``'s writer lock (:func:`toolgrad.dataset.files.exclusive_writer`) for the block;
    :class:`ToolgradError` naming the holder's pid when another live process writes it."""
    try:
        with exclusive_writer(out):
            yield
    except OutputLocked as exc:
        raise ToolgradError(str(exc)) from None


def _generate_locked(
    settings: GenerateSettings, events: EventSink | None, policy_factory: PolicyFactory | None,
) -> RunSummary:
    emit = events or (lambda event: None)
    started = time.perf_counter()
    refs = environment_refs(settings)
    factory = policy_factory or policy_factory_for(settings)
    first_box = Toolbox.in_process(refs)
    provenance = make_provenance(settings, first_box, factory(first_box).name)
    config = settings.generator_config()
    out = Path(settings.output)
    plan = _resume_plan(out, settings, provenance, emit)
    write_json_atomic(sidecar(out, SCHEMA_SUFFIX), Sample.model_json_schema())
    write_bytes_atomic(tools_path(out), tool_table_bytes(first_box))
    emit(RunStarted(str(out), settings.seed, len(plan.requested), len(plan.pending),
                    len(plan.requested) - len(plan.pending) - len(plan.skipped), sorted(first_box.environments)))

    check_placement(settings.workers, settings.executor, settings.ray_address)
    job = SeedJob(refs, factory, config, provenance, Workers(refs, first_box))
    workers = min(settings.workers, max(1, len(plan.pending)))
    if not in_process(workers, settings.executor):
        _check_picklable(job)
    outcomes = ordered_map(job, plan.pending, workers=workers, executor=settings.executor,
                           ray_address=settings.ray_address, threads=settings.concurrency)
    tally = _Tally(failed=list(plan.skipped))
    writer = LineFiles([traces_path(out), out])  # the sidecar first: see LineFiles
    stopped: SeedStopped | None = None
    try:
        _write_outcomes(outcomes, writer, tally, emit)
    except SeedStopped as exc:
        stopped = exc
    except WorkerLost as exc:
        raise WorkerLost(f"{exc}: {out} keeps the {tally.written} sample(s) written before it, in seed order, "
                         "and the same command resumes from there") from None
    finally:
        writer.close()
    wall = time.perf_counter() - started
    ran = plan.pending if stopped is None else [s for s in plan.pending if s < stopped.seed]
    seeds = sorted(plan.done | {s for s in ran if s not in tally.failed})
    summary = RunSummary(
        dataset=str(out), samples=len(seeds), seeds=seeds, new_samples=tally.written,
        failed_seeds=sorted(tally.failed), stopped=str(stopped or ""),
        wall_seconds=round(wall, 3), samples_per_second=round(tally.written / wall, 3) if wall > 0 else 0.0,
        config={**settings.model_dump(mode="json"), "generator": config.to_json(),
                "environments": sorted(first_box.environments), "schema": str(sidecar(out, SCHEMA_SUFFIX))},
        **tally.totals, **tally.traffic,
    )
    write_json_atomic(sidecar(out, SUMMARY_SUFFIX), summary.model_dump(mode="json"))
    emit(RunFinished(summary))
    if stopped is not None:
        resume = "" if stopped.exit_code == 2 else ", and the same command resumes from there"
        incomplete = RunIncomplete(f"the run stopped at {stopped}; {out} keeps the {tally.written} sample(s) "
                                   f"written before it{resume}")
        incomplete.exit_code = stopped.exit_code
        raise incomplete from stopped
    return summary


@dataclass(frozen=True, slots=True)
class _ResumePlan:
    """The requested seeds against what the output already holds."""

    requested: list[int]
    done: set[int]  # seeds already in the file
    pending: list[int]  # seeds above the file's highest: this run makes them
    skipped: list[int]  # absent seeds below the file's highest: failed before, not retried


def _resume_plan(out: Path, settings: GenerateSettings, provenance: Provenance, emit: EventSink) -> _ResumePlan:
    existing = open_existing(out)
    if existing.truncated:
        emit(Notice(f"{out}: removed a partial last line ({existing.truncated} bytes) left by a crash"))
    if existing.dropped_traces:
        emit(Notice(f"{traces_path(out)}: removed {existing.dropped_traces} trace line(s) whose samples a kill "
                    "left uncommitted; they are made again"))
    if existing.first is not None:
        _check_compatible(out, existing.first, provenance, emit)
    done = set(existing.seeds)
    top = max(existing.seeds, default=None)
    requested = settings.seeds()
    skipped = [s for s in requested if s not in done and top is not None and s < top]
    pending = [s for s in requested if s not in done and (top is None or s > top)]
    if skipped:
        emit(Notice(f"{len(skipped)} requested seed(s) below the file's highest seed ({top}) are absent: they "
                    "failed in an earlier run (or belong to another seed range) and are not retried"))
    return _ResumePlan(requested, done, pending, skipped)


@dataclass(slots=True)
class _Tally:
    """What the run's new samples cost and how many were written or failed."""

    failed: list[int]
    written: int = 0
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("model_calls", "prompt_tokens", "completion_tokens", "tool_calls"), 0))
    traffic: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("model_requests", "cache_hits"), 0))


def _write_outcomes(outcomes: Iterator[SeedLines], writer: LineFiles, tally: _Tally, emit: EventSink) -> None:
    """Appends each successful outcome's lines (in the order given), counting into ``tally``."""
    for outcome in outcomes:
        for key in tally.totals:
            tally.totals[key] += getattr(outcome.cost, key)
        for key in tally.traffic:
            tally.traffic[key] += getattr(outcome, key)
        if outcome.lines:
            writer.append(outcome.lines)
            tally.written += 1
        else:
            tally.failed.append(outcome.seed)
        emit(SampleDone(outcome.seed, bool(outcome.lines), outcome.calls, outcome.cost.model_calls,
                        outcome.cost.prompt_tokens, outcome.cost.completion_tokens, outcome.error))


def _check_picklable(job: SeedJob) -> None:
    """Worker processes and Ray tasks get the job pickled: its policy factory must be a top-level
    class or function (a lambda or a closure is not)."""
    problem = pickle_problem(job)
    if problem is not None:
        raise ToolgradError(f"--workers > 1 and --executor ray run seeds in other processes, so the policy "
                            f"factory must be picklable (a top-level class or function): {problem}; use workers=1")


def _check_compatible(out: Path, found: Provenance, current: Provenance, emit: EventSink) -> None:
    keys = ("generator", "llm", "model", "base_url")
    differs = [k for k in keys if getattr(found, k) != getattr(current, k)]
    # the fingerprints of every environment the existing lines call (not every one of the run)
    if any(current.environments.get(name) != fp for name, fp in found.environments.items()):
        differs.insert(0, "environments")
    if differs:
        raise ToolgradError(
            f"{out} was generated with other settings ({', '.join(differs)} differ); "
            "resume with the same flags or write to a new file")
    if (found.versions, found.git_revision) != (current.versions, current.git_revision):
        emit(Notice(f"{out}: resuming with other package versions or git revision than the existing records"))
