"""The certificate's record types (versioned pydantic models) and the bytes it is written as.

A certificate lists one :class:`SampleVerdict` per sample; :func:`certificate_text` writes it a
sample at a time, the same bytes as ``pretty_json`` of the whole.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

import benchmarks
import simulator
import toolgrad
from simulator.canonical import pretty_json
from toolgrad.validity.checks import CHECKS, Finding

# 2: per-sample results of every check (replay, solvable, grounded, coherent, unique[, judge])
# 3: the trace check of schema-3 samples against <data>.traces.jsonl; traces, traces_sha256
CERTIFICATE_VERSION = "3"
ORDER = (*CHECKS, "trace", "judge")  # the order of a sample's checks

VerdictKind = Literal["pass", "diverged", "fingerprint_mismatch", "environment_missing", "id_mismatch"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckResult(_Record):
    """One check of one sample: passed, or why not, at the first offending step and value."""

    ok: bool
    reason: str = ""
    chain: int | None = None  # the first offending step (None: the sample as a whole)
    step: int | None = None
    at: str = ""  # a pointer into that step's arguments, "answer", a replay field, "id" or "seed"
    value: Any = None  # the offending value

    @classmethod
    def of(cls, finding: Finding | None) -> CheckResult:
        if finding is None:
            return PASSED
        return cls(ok=False, reason=finding.reason, chain=finding.chain, step=finding.step, at=finding.at,
                   value=finding.value)


# One shared instance for every passed check (results are never changed in place, only copied):
# a long certification keeps a verdict per sample, and most of their checks pass.
PASSED = CheckResult(ok=True)


class SampleVerdict(_Record):
    line: int  # 1-based line of the sample in the dataset
    id: str
    seed: int
    ok: bool  # every check passed
    verdict: VerdictKind  # the replay's verdict
    steps: int  # steps recorded
    replayed: int  # steps re-executed before the verdict
    first_divergence: dict[str, Any] | None = None  # {chain, step, field, expected, got[, pointer]}
    checks: dict[str, CheckResult] = Field(default_factory=dict)  # check name -> result, for every check run


class Certificate(_Record):
    schema_version: str = CERTIFICATE_VERSION
    kind: str = "toolgrad-certificate"
    dataset_sha256: str
    # "checked": every schema-3 sample's trace line was compared by hash; "not checked: ...": the
    # sidecar is missing; "inline": schema-1 or -2 lines, the trace is part of the line
    traces: str = "inline"
    traces_sha256: str | None = None  # sha256 of <data>.traces.jsonl, when there is one
    sample_count: int
    step_count: int
    passed: int  # samples that pass every check
    pass_rate: float  # passed / sample_count, 0..1
    checks: dict[str, int]  # check name -> samples that pass it
    judge: str = ""  # the judge model, when the judge check ran
    verdicts: dict[str, int]  # replay verdict kind -> samples
    environments: list[dict[str, Any]]  # installed fingerprints the dataset was checked against
    versions: dict[str, str]
    samples: list[SampleVerdict]  # one per sample, in file order

    @property
    def ok(self) -> bool:
        return self.sample_count > 0 and self.passed == self.sample_count


def certificate_bytes(certificate: Certificate) -> bytes:
    """The certificate as written to disk: sorted keys, two-space indent, one final newline."""
    return "".join(certificate_text(certificate)).encode()


def certificate_text(certificate: Certificate, samples: Iterable[SampleVerdict] | None = None) -> Iterator[str]:
    """:func:`certificate_bytes` as text, a sample at a time (``pretty_json`` of the whole, byte
    for byte), so writing a large certificate never holds all of its text at once. ``samples``
    (its ``sample_count`` of them, in file order) stand for ``certificate.samples`` where the
    certificate was made without them (:class:`~benchmarks.certify.certificate.Tally`)."""
    listed = certificate.samples if samples is None else samples
    head = pretty_json(certificate.model_dump(mode="json", exclude={"samples"}) | {"samples": []})
    if not (certificate.samples if samples is None else certificate.sample_count):
        yield head
        return
    before, after = head.split('\n  "samples": [],\n', 1)
    yield before
    yield '\n  "samples": [\n'
    for index, sample in enumerate(listed):
        text = pretty_json(sample.model_dump(mode="json"))[:-1].replace("\n", "\n    ")
        yield ("    " if index == 0 else ",\n    ") + text
    yield "\n  ],\n" + after


def versions() -> dict[str, str]:
    # the simulator, only when a certificate is made (not to build the command tree)
    from simulator.environments.environment import faker_version

    return {
        "benchmarks": benchmarks.__version__,
        "faker": faker_version(),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "simulator": simulator.__version__,
        "toolgrad": toolgrad.__version__,
    }
