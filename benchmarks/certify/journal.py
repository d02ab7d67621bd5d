"""A certification's checks so far, on disk: ``toolgrad certify`` appends each sample's check to
``<certificate>.partial`` as it comes, instead of holding it, and writes the certificate from
that file at the end; ``--resume`` continues a run that was killed from its last whole line.

What a caller may rely on:

* **Flat memory.** A sample's checks (2-3 KB as objects) are written, not kept: what stays in
  memory per sample is its id and seed (the unique check) and, with a judge, the judge's result.
* **Crash-safe.** The file is a header line (``kind``, ``key``) and one JSON line per sample, in
  file order, each written whole and flushed; a kill at any moment leaves every line before the
  last one whole, and a torn last line is ignored. The certificate itself is written atomically
  once every sample is checked, and the journal is removed after it.
* **Resumed only when it is the same run.** :func:`journal_key` names the run: the dataset's
  sha256, the environments asked for, and the versions and source digests of the code that
  checks. A journal under another key, or whose samples were checked against environment
  fingerprints other than the installed ones, is not resumed: the run starts over. The trace
  and unique checks of resumed samples are made again (the trace against the sidecar as it is now).
* **One run at a time.** Each run writes its own ``.next`` file until it holds what it resumed;
  a run whose journal another run replaced meanwhile (the same certificate path) stops with an
  error when it reads the journal back, instead of writing a certificate of another run's lines.
* **Opt-in.** A journal is a file beside the certificate, so whoever can write there can forge
  one: it is read only with ``--resume`` (the user's own killed run); without it a leftover
  journal is replaced.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from simulator.canonical import canonical_sha256, json_bytes

from .certificate import CheckedSample
from .certificate_record import SampleVerdict, versions
from .errors import BenchmarkError

JOURNAL_SUFFIX = ".partial"
_KIND = "toolgrad-certify-journal"


def journal_path(certificate: Path) -> Path:
    return certificate.with_name(certificate.name + JOURNAL_SUFFIX)


def journal_key(dataset_sha256: str, env_refs: Mapping[str, str]) -> str:
    """What a journal must have been written under to be resumed: the same dataset bytes, the
    same environment references and the same checking code (versions and source digests)."""
    import benchmarks
    import simulator
    import toolgrad

    return canonical_sha256({
        "dataset_sha256": dataset_sha256,
        "env_refs": dict(sorted(env_refs.items())),
        "versions": versions(),
        "code_sha256": {package.__name__: _sources_sha256(Path(str(package.__file__)).parent)
                        for package in (simulator, toolgrad, benchmarks)},
    })


def _sources_sha256(package: Path) -> str:
    """sha256 over the ``*.py`` files under ``package``, each named by its path within it."""
    digest = hashlib.sha256()
    for source in sorted(package.resolve().rglob("*.py")):
        digest.update(f"{source.relative_to(package.resolve()).as_posix()}\0".encode())
        digest.update(hashlib.sha256(source.read_bytes()).digest())
    return digest.hexdigest()


class VerdictJournal:
    """The journal of one certification at ``path`` (see the module docstring)."""

    def __init__(self, path: Path, key: str) -> None:
        self.path, self.key = path, key
        self._next = path.with_name(f"{path.name}.{os.getpid()}.next")
        self._file: IO[bytes] | None = None
        self._written = 0
        self._keep = 0  # lines of the journal at `path` to copy before the new one replaces it

    # -- an earlier run ---------------------------------------------------------------------------

    def earlier(self) -> tuple[int, set[bytes]]:
        """(how many samples an earlier run under this key checked, the fingerprints they were
        checked against); (0, empty) when there is no journal, or one of another run."""
        count, prints = 0, set[bytes]()
        for item in self._read(self.path):
            count += 1
            prints.update(item.fingerprints)
        return count, prints

    def resumed(self, count: int) -> Iterator[CheckedSample]:
        """The first ``count`` samples' checks from the earlier run, their trace and unique checks
        taken out (:func:`~benchmarks.certify.certificate.with_trace_checks` and
        :func:`~benchmarks.certify.certificate.with_unique` make them again)."""
        for index, item in enumerate(self._read(self.path)):
            if index >= count:
                return
            checks = {name: check for name, check in item.verdict.checks.items() if name not in ("trace", "unique")}
            item.verdict.checks = checks
            item.verdict.ok = all(check.ok for check in checks.values())
            yield item

    # -- this run ----------------------------------------------------------------------------------

    def open(self, keep: int = 0) -> None:
        """Start this run's journal; it replaces the one at ``path`` once it holds the first
        ``keep`` samples (copied from there as :meth:`resumed` gives them), at once when 0."""
        self._keep, self._written = keep, 0
        try:
            self._file = open(self._next, "wb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise BenchmarkError(f"{self.path.parent}: cannot write the certificate there "
                                 f"({exc.strerror or exc})") from exc
        self._file.write(json_bytes({"kind": _KIND, "key": self.key}) + b"\n")
        if keep == 0:
            self._replace()

    def add(self, item: CheckedSample, verdict: SampleVerdict) -> None:
        """Append one sample's checks (whole, flushed): ``verdict``, the item's as the certificate
        lists it but for a judge (:func:`~benchmarks.certify.certificate.with_unique`)."""
        assert self._file is not None, "open() the journal first"
        self._file.write(b'{"verdict":' + verdict.model_dump_json().encode() +
                         b',"fingerprints":' + json_bytes([fp.decode() for fp in item.fingerprints]) +
                         b',"trace_sha256":' + json_bytes(item.trace_sha256) + b"}\n")
        self._file.flush()
        self._written += 1
        if self._written == self._keep:
            self._replace()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._next.unlink(missing_ok=True)  # a run that stopped before it had copied what it resumed

    def items(self, expected: int) -> Iterator[CheckedSample]:
        """Every sample's checks this run wrote (``expected`` of them), in file order, read back
        one at a time; :class:`BenchmarkError` at the end when the journal holds another number
        (another run replaced it meanwhile)."""
        count = 0
        for item in self._read(self.path):
            count += 1
            yield item
        if count != expected:
            raise BenchmarkError(f"{self.path}: the journal holds {count} of this run's {expected} samples: "
                                 "another run replaced it meanwhile; run certify again, one run at a time")

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def _replace(self) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        os.replace(self._next, self.path)

    def _read(self, path: Path) -> Iterator[CheckedSample]:
        """The whole lines of the journal at ``path`` under this key (none if it is absent, of
        another key or unreadable), up to the first line that is torn or not a check."""
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            return
        with file:
            header = _parse(file.readline())
            if not isinstance(header, dict) or header.get("kind") != _KIND or header.get("key") != self.key:
                return
            shared: dict[bytes, bytes] = {}
            for raw in file:
                item = _item(raw, shared) if raw.endswith(b"\n") else None
                if item is None:
                    return
                yield item


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


class _Line(BaseModel):
    """A journal line, as :meth:`VerdictJournal.add` writes it."""

    model_config = ConfigDict(extra="forbid")

    verdict: SampleVerdict
    fingerprints: list[str]
    trace_sha256: str


def _item(raw: bytes, shared: dict[bytes, bytes]) -> CheckedSample | None:
    try:
        line = _Line.model_validate_json(raw)
    except ValidationError:
        return None
    prints = tuple(shared.setdefault(fp, fp) for fp in (text.encode() for text in line.fingerprints))
    return CheckedSample(line.verdict, prints, line.trace_sha256)
