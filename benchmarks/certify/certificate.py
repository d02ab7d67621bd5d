"""Certification: re-execute every recorded chain on fresh sandboxes, check that every sample
is valid, and say, per check, where each sample first fails.

Checks (each reported separately per sample; a sample counts as passed only when all pass):

* **replay**: its recorded environment fingerprints equal the installed ones, every argument
  recorded as taken from an earlier output equals that output, every replayed step gives the
  recorded status, body (canonical JSON) and state hash, and its id is the hash of its content;
* **solvable**, **grounded**, **coherent**: :mod:`toolgrad.validity.checks` (the same functions the
  generator's loop applies to every update), against the installed tools' schemas;
* **unique**: no other line of the dataset has its id or its seed;
* **trace** (schema-3 lines, when ``<data>.traces.jsonl`` is there): the sidecar's line for the
  sample hashes to its ``trace_sha256``. Without the sidecar the chains are still replayed and
  checked, and the certificate says the traces were not checked (``traces``); schema-1 and -2
  lines hold their trace inline, where the id covers it.
* **judge** (only with a judge model, :mod:`benchmarks.certify.judge`): the model says the chain and
  answer resolve the query.

The dataset is read a line at a time (two streaming passes: its sha256, then the samples), so
memory does not grow with its size. The certificate records the dataset's sha256 and the traces
sidecar's (``traces_sha256``).

The certificate is a pure function of the dataset bytes and the installed simulator (and, with
a judge, of the judge's recorded replies): no timestamps, no paths, no timings, so the same
dataset gives the same bytes on every backend and with any number of workers.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from simulator.canonical import canonical_json
from simulator.errors import SimulatorError
from toolgrad.backends.base import ChatModel
from toolgrad.dataset.lines import TRACES_SUFFIX, trace_digest
from toolgrad.executors import in_process, ordered_map, process_local
from toolgrad.records import Sample
from toolgrad.validity.checks import Uniqueness, sample_findings

from .certificate_record import (
    CERTIFICATE_VERSION,
    ORDER,
    PASSED,
    Certificate,
    CheckResult,
    SampleVerdict,
    VerdictKind,
    certificate_bytes,
    certificate_text,
    versions,
)
from .replay import (
    Dataset,
    DatasetLine,
    Divergence,
    parse_record,
    read_dataset,
    record_id,
    recorded_env_refs,
    replay_steps,
    resolve_tool,
    sample_id,
)
from .sandboxes import ProviderPlan, SandboxProvider
from .traces import TracesSidecar

if TYPE_CHECKING:
    from toolgrad.toolbox import Toolbox
    from toolgrad.validity.tool_terms import TermsOf

__all__ = ["CERTIFICATE_VERSION", "PASSED", "Certificate", "CheckResult", "CheckedSample", "SampleVerdict",
           "build_certificate", "certificate_bytes", "certificate_text", "certify_file", "certify_line",
           "certify_sample", "iter_certify", "judge_dataset", "read_dataset", "versions", "with_trace_checks"]


# --- one sample ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckedSample:
    verdict: SampleVerdict
    fingerprints: tuple[bytes, ...]  # canonical installed fingerprints the sample was checked against
    trace_sha256: str = ""  # what the line says its trace line in the sidecar hashes to (schema 3)


@dataclass(frozen=True, slots=True)
class _Replay:
    kind: VerdictKind
    replayed: int
    divergence: Divergence | None
    prints: tuple[bytes, ...] = ()
    toolbox: Toolbox | None = None  # the installed tools the sample was replayed on


def replay_sample(sample: Sample, line: int, provider: SandboxProvider,
                  record: dict[str, Any] | None = None) -> _Replay:
    """The replay check: fingerprints, sources, every step re-executed, the content id."""
    recorded = sample.provenance.environments
    for ci, chain in enumerate(sample.chains):
        for si, step in enumerate(chain.steps):
            if step.env not in recorded:
                return _Replay("fingerprint_mismatch", 0, Divergence(
                    ci, si, f"fingerprint.{step.env}", "a recorded fingerprint for the step's environment",
                    sorted(recorded)))
    toolbox = provider.toolbox_for(recorded)
    if isinstance(toolbox, Divergence):
        kind: VerdictKind = "environment_missing" if toolbox.field.startswith("environment.") \
            else "fingerprint_mismatch"
        return _Replay(kind, 0, toolbox)
    prints = tuple(sorted(_shared(canonical_json(toolbox.sandboxes[name].fingerprint())) for name in sorted(recorded)))
    session = f"certify-{line}"
    toolbox.reset(session)
    replayed = 0
    try:
        for outcome in replay_steps(sample, toolbox, session):
            replayed += 1
            if outcome.divergence is not None:
                return _Replay("diverged", replayed, outcome.divergence, prints, toolbox)
    finally:
        toolbox.drop(session)
    if record is None or record_id(record) != sample.id:
        expected_id = sample_id(sample)
        if sample.id != expected_id:
            return _Replay("id_mismatch", replayed, Divergence(None, None, "id", expected_id, sample.id), prints,
                           toolbox)
    return _Replay("pass", replayed, None, prints, toolbox)


_FINGERPRINTS: dict[bytes, bytes] = {}


def _shared(fingerprint: bytes) -> bytes:
    """One copy of each installed fingerprint (a handful) for all the samples that keep it."""
    return _FINGERPRINTS.setdefault(fingerprint, fingerprint)


def _replay_result(replay: _Replay) -> CheckResult:
    d = replay.divergence
    if d is None:
        return PASSED
    return CheckResult(ok=False, reason=replay.kind, chain=d.chain, step=d.step,
                       at=d.field + (d.pointer or ""), value=d.got)


def _no_terms(step: Any) -> None:
    return None


def certify_sample(sample: Sample, line: int, provider: SandboxProvider,
                   record: dict[str, Any] | None = None) -> CheckedSample:
    """Check one sample: replay in a fresh session of each of its environments, then the
    validity checks against the installed tools (without them, when the sample's environments
    are not installed: no schema exemptions). ``record`` (the JSON object the sample was read
    from) makes the id check cheaper."""
    from toolgrad.validity.tool_terms import toolbox_terms  # imports the simulator: only where samples replay

    replay = replay_sample(sample, line, provider, record)
    box = replay.toolbox
    terms: TermsOf = toolbox_terms(box, lambda step: resolve_tool(box, step)) if box is not None else _no_terms
    checks = {"replay": _replay_result(replay)}
    checks.update((name, CheckResult.of(f)) for name, f in
                  sample_findings(sample.chains, sample.query, sample.answer, terms).items())
    d = replay.divergence
    return CheckedSample(SampleVerdict(
        line=line, id=sample.id, seed=sample.seed, ok=all(c.ok for c in checks.values()), verdict=replay.kind,
        steps=len(sample.steps()), replayed=replay.replayed, first_divergence=None if d is None else d.to_json(),
        checks=checks,
    ), replay.prints, sample.trace_sha256)


def certify_line(line: DatasetLine, provider: SandboxProvider, path: Path | str = "") -> CheckedSample:
    """Parse and check one dataset line (:class:`DatasetError` when it is not a sample)."""
    sample, record = parse_record(line, path)
    return certify_sample(sample, line.line, provider, record)


# --- a dataset -----------------------------------------------------------------------------------


class CertifyJob:
    """``job(line)``: one line's check, in a worker process or a Ray task. Pickled, it carries
    only the provider's plan (the backend, environment references, the URLs of services the
    driver started); each worker builds its sandboxes once and reuses them."""

    def __init__(self, plan: ProviderPlan, path: Path | str) -> None:
        self.plan, self.path = plan, str(path)

    @property
    def worker_modules(self) -> tuple[str, ...]:
        """Imported once by the fork server, not by every worker (:func:`toolgrad.executors.ordered_map`)."""
        return self.plan.modules

    def __call__(self, line: DatasetLine) -> CheckedSample:
        provider = process_local(("certify-provider", self.plan), lambda: SandboxProvider.from_plan(self.plan))
        return certify_line(line, provider, self.path)


LINES_PER_TASK = 16  # a line checks in about a millisecond: fewer round trips to the workers


def iter_certify(dataset: Dataset, provider: SandboxProvider, *, workers: int = 1, executor: str = "local",
                 ray_address: str | None = None, done: Iterable[CheckedSample] = (),
                 skip: int = 0) -> Iterator[CheckedSample]:
    """Each sample's check, in file order, the dataset read a line at a time; :class:`DatasetError`
    at the first line that is not a sample. Schema-3 samples get the trace check against the
    traces sidecar, read in step (:func:`with_trace_checks`). With ``workers`` > 1 (or
    ``executor="ray"``) lines are checked in other processes (:func:`toolgrad.executors.ordered_map`,
    a bounded window of lines in flight), each with in-process sandboxes of its own or, for the
    HTTP backends, reaching the services this process started; the order and the bytes of every
    result stay the same. ``done``: the checks of the first ``skip`` samples, made by an earlier run
    (without their trace check, which is made again here); those lines are not checked again."""
    fresh = _checked(dataset, provider, workers, executor, ray_address, skip)
    yield from with_trace_checks(itertools.chain(done, fresh), dataset.traces)


def with_trace_checks(checked: Iterable[CheckedSample], sidecar: TracesSidecar | Path | None) -> Iterator[CheckedSample]:
    """Each item, with the trace check when its sample names a trace line (schema 3) and the
    sidecar is there: the sidecar's n-th line must hash to the n-th sample's ``trace_sha256``.
    The sidecar is read once, to its end, so its :attr:`~TracesSidecar.sha256` covers what was checked."""
    if isinstance(sidecar, Path):
        sidecar = TracesSidecar(sidecar)
    if sidecar is None or not sidecar.present:
        yield from checked
        return
    lines = sidecar.lines()
    for item in checked:
        line = next(lines, None)
        if not item.trace_sha256:
            yield item
            continue
        got = None if line is None else trace_digest(line)
        result = PASSED if got == item.trace_sha256 else CheckResult(
            ok=False, reason="trace_mismatch" if got else "trace_missing", at="trace_sha256", value=got)
        # in place: the verdict was made for this item alone (a copy costs ~1 KB a sample, kept to the end)
        item.verdict.checks["trace"] = result
        item.verdict.ok = item.verdict.ok and result.ok
        yield item
    for _ in lines:  # the rest, so that the digest covers the whole file
        pass


def _checked(dataset: Dataset, provider: SandboxProvider, workers: int, executor: str,
             ray_address: str | None, skip: int = 0) -> Iterator[CheckedSample]:
    lines = itertools.islice(dataset.lines, skip, None) if skip else dataset.lines
    if in_process(workers, executor):
        yield from ordered_map(lambda line: certify_line(line, provider, dataset.path), lines)
        return
    if provider.backend != "inprocess":  # start every service once, here; workers reach them by URL
        provider.prepare(k for k in environment_keys(dataset) if _installed(provider, k))
    yield from ordered_map(CertifyJob(provider.plan(), dataset.path), lines, workers=workers,
                           executor=executor, ray_address=ray_address, chunksize=LINES_PER_TASK)


def environment_keys(dataset: Dataset) -> set[tuple[str, int | None]]:
    """Every (environment, seed) the dataset's provenance names (read without full validation)."""
    keys: set[tuple[str, int | None]] = set()
    for line in dataset.lines:
        try:
            envs = orjson.loads(line.text)["provenance"]["environments"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # the worker that parses it reports the error
        for name, fp in envs.items() if isinstance(envs, dict) else ():
            seed = fp.get("seed") if isinstance(fp, dict) else None
            keys.add((str(name), seed if isinstance(seed, int) and not isinstance(seed, bool) else None))
    return keys


def _installed(provider: SandboxProvider, key: tuple[str, int | None]) -> bool:
    try:
        provider.environment(key)
    except SimulatorError:
        return False
    return True


def build_certificate(dataset_sha256: str, checked: Iterable[CheckedSample],
                      judged: Mapping[int, CheckResult] | None = None, judge: str = "",
                      *, traces_sha256: str | None = None) -> Certificate:
    """The certificate for a dataset's checks (in file order): the per-sample checks (with the
    trace check when the items carry it: :func:`iter_certify`), the dataset's unique check, and
    the judge's results by line when a judge ran. ``traces_sha256``: the traces sidecar's."""
    tally = Tally()
    samples = [tally.add(c, result if judged is None else with_judge(result, judged))
               for c, result in with_unique(checked)]
    return tally.certificate(dataset_sha256, judge, traces_sha256, samples)


def with_unique(checked: Iterable[CheckedSample]) -> Iterator[tuple[CheckedSample, SampleVerdict]]:
    """Each item (in file order) with its verdict as the certificate lists it but for a judge:
    the unique check added (it depends only on the lines before), the checks in :data:`ORDER`."""
    unique = Uniqueness()
    for c in checked:
        finding = unique.finding(c.verdict.line, c.verdict.id, c.verdict.seed)
        yield c, _with_checks(c.verdict, {"unique": CheckResult.of(finding)})


def with_judge(verdict: SampleVerdict, judged: Mapping[int, CheckResult]) -> SampleVerdict:
    """A verdict of :func:`with_unique` with the judge's result for its line added."""
    return _with_checks(verdict, {"judge": judged.get(verdict.line, CheckResult(ok=False, reason="not judged"))})


def _with_checks(verdict: SampleVerdict, added: dict[str, CheckResult]) -> SampleVerdict:
    checks = {**verdict.checks, **added}
    ordered = {name: checks[name] for name in ORDER if name in checks}
    return verdict.model_copy(update={"checks": ordered, "ok": all(r.ok for r in ordered.values())})


SHOWN_FAILURES = 20  # the failed samples a summary names


class Tally:
    """What a certificate says besides its samples, counted a sample at a time (file order), so
    that a certificate can be written from verdicts streamed from disk; and, for a summary, the
    seeds' range and the first failed samples."""

    def __init__(self) -> None:
        self.count = self.steps = self.passed = 0
        self.check_passes: dict[str, int] = {}  # every check some sample ran -> samples that pass it
        self.verdicts: dict[str, int] = {}
        self.prints: set[bytes] = set()
        self.lean = False  # some sample names a trace line (schema 3)
        self.seeds: tuple[int, int] | None = None  # the lowest and highest
        self.failed: list[SampleVerdict] = []  # the first SHOWN_FAILURES

    def add(self, checked: CheckedSample, result: SampleVerdict) -> SampleVerdict:
        """Count ``result`` (the final verdict of ``checked``); returns it."""
        self.count += 1
        self.steps += result.steps
        self.passed += result.ok
        for name, check in result.checks.items():
            self.check_passes[name] = self.check_passes.get(name, 0) + check.ok
        self.verdicts[result.verdict] = self.verdicts.get(result.verdict, 0) + 1
        self.prints.update(checked.fingerprints)
        self.lean = self.lean or bool(checked.trace_sha256)
        self.seeds = (result.seed, result.seed) if self.seeds is None else \
            (min(self.seeds[0], result.seed), max(self.seeds[1], result.seed))
        if not result.ok and len(self.failed) < SHOWN_FAILURES:
            self.failed.append(result)
        return result

    def certificate(self, dataset_sha256: str, judge: str, traces_sha256: str | None,
                    samples: list[SampleVerdict]) -> Certificate:
        """The certificate, with ``samples`` as its list (empty when they are written from a stream:
        :func:`certificate_text` takes them apart)."""
        traces = "inline" if not self.lean else "checked" if traces_sha256 is not None else \
            f"not checked: {TRACES_SUFFIX.lstrip('.')} is missing beside the dataset"
        return Certificate(
            dataset_sha256=dataset_sha256,
            traces=traces,
            traces_sha256=traces_sha256,
            sample_count=self.count,
            step_count=self.steps,
            passed=self.passed,
            pass_rate=self.passed / self.count if self.count else 0.0,
            checks={n: self.check_passes[n] for n in ORDER if n in self.check_passes},
            judge=judge,
            verdicts=dict(sorted(self.verdicts.items())),
            environments=[json.loads(fp) for fp in sorted(self.prints)],
            versions=versions(),
            samples=samples,
        )


def judge_dataset(dataset: Dataset, chat: ChatModel,
                  on_sample: Callable[[int], None] | None = None) -> dict[int, CheckResult]:
    """The judge check of every line (:mod:`benchmarks.certify.judge`): passed when the model says the
    chain and answer resolve the query; ``reason`` is its rationale, ``value`` the cache key of
    the exchange."""
    from .judge import judge_sample

    results: dict[int, CheckResult] = {}
    for line in dataset.lines:
        verdict = judge_sample(chat, parse_record(line, dataset.path)[0])
        results[line.line] = CheckResult(ok=verdict.resolved, reason=verdict.rationale, at="judge",
                                         value=verdict.cache_key or None)
        if on_sample is not None:
            on_sample(line.line)
    return results


def certify_file(
    path: Path,
    *,
    backend: str = "inprocess",
    env_refs: dict[str, str] | None = None,
    workers: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    on_sample: Callable[[CheckedSample], None] | None = None,
    judge: ChatModel | None = None,
) -> Certificate:
    """Read, check and certify a dataset file (with ``judge``, the judge check too); ``workers``,
    ``executor`` and ``ray_address`` say where lines are checked (:func:`iter_certify`)."""
    dataset = read_dataset(path)
    checked: list[CheckedSample] = []
    with SandboxProvider(backend, recorded_env_refs(dataset) | dict(env_refs or {})) as provider:
        for item in iter_certify(dataset, provider, workers=workers, executor=executor, ray_address=ray_address):
            checked.append(item)
            if on_sample is not None:
                on_sample(item)
    judged = judge_dataset(dataset, judge) if judge is not None else None
    return build_certificate(dataset.sha256, checked, judged, judge.model if judge is not None else "",
                             traces_sha256=dataset.traces_sha256)
