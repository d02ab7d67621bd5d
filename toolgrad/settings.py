"""Typed settings for ``toolgrad generate`` and ``toolgrad export``, and toolgrad's root error.

Each CLI flag is one field here and one ``TOOLGRAD_*`` environment variable
(:data:`GENERATE_ENV`, :data:`EXPORT_ENV`); the library entry points take these objects, so a
program and the CLI configure a run the same way. Secrets (an API key) are not settings: the
model backend reads them from the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:  # the loop loads when a run needs it: every `toolgrad` command imports this module
    from toolgrad.loop.sample import GeneratorConfig

LLMS = ("offline", "openai")
EXPORT_FORMATS = ("openai", "calls", "bfcl", "hf")


class ToolgradError(Exception):
    """Root of the errors toolgrad raises on purpose: bad settings, an incompatible dataset, a
    missing optional dependency. The CLI prints the message and exits with :attr:`exit_code`
    (2: the input or the setup is wrong), never a traceback."""

    exit_code = 2


class RunIncomplete(ToolgradError):
    """A run that started but could not finish what it was asked (the model endpoint failed, a
    replay missed the cache, no seed gave a sample). What it wrote is kept and valid; the CLI
    exits 1."""

    exit_code = 1


class _Settings(BaseModel):
    # validators are built at the first validation, not at import: every `toolgrad` command and
    # worker process imports this module, and most (certify, report, the workers) never validate
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class GenerateSettings(_Settings):
    envs: list[str] = Field(default_factory=list)  # names, env directories or spec files; [] = all shipped
    n: int = Field(default=10, ge=0)
    seed: int = 0
    llm: Literal["offline", "openai"] = "offline"
    model: str = ""
    base_url: str = ""
    cache: str | None = None  # the model backend's record/replay cache directory
    replay_only: bool = False
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)  # the model's sampling temperature (paper: 1.0)
    concurrency: int = Field(default=1, ge=1, le=512)  # samples in flight per worker, as threads (model waits)
    # processes running samples: the CLI's default is the core count, the library's 1 (in this
    # process, so a policy factory need not be picklable)
    workers: int = Field(default=1, ge=1, le=4096)
    executor: Literal["local", "ray"] = "local"  # where workers run: this machine, or a Ray cluster
    ray_address: str | None = None  # a running Ray cluster (`ray start --head` prints it); none: a local Ray
    iterations: int = Field(default=10, ge=1)
    batch_size: int = Field(default=50, ge=1)
    proposals: int = Field(default=3, ge=1)
    output: str = "data.jsonl"

    def generator_config(self) -> GeneratorConfig:
        from toolgrad.loop.sample import GeneratorConfig

        return GeneratorConfig(iterations=self.iterations, batch_size=self.batch_size, proposals=self.proposals)

    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.n))


class ExportSettings(_Settings):
    input: str
    format: Literal["openai", "calls", "bfcl", "hf"]
    output: str
    negatives: float = Field(default=0.2, ge=0.0, le=1.0)  # share of irrelevance negatives (calls, bfcl)
    distractors: int = Field(default=4, ge=0)  # tools offered beside the relevant ones
    seed: int = 0


def _env_names(model: type[_Settings], prefix: str) -> dict[str, str]:
    return {name: prefix + name.upper() for name in model.model_fields}


GENERATE_ENV = {**_env_names(GenerateSettings, "TOOLGRAD_"), "envs": "TOOLGRAD_ENV"}
EXPORT_ENV = _env_names(ExportSettings, "TOOLGRAD_EXPORT_")


def from_environment(settings_type: type[_Settings], names: Mapping[str, str],
                     environ: Mapping[str, str] | None = None, /, *, flags: Mapping[str, str] | None = None,
                     **given: Any) -> Any:
    """Settings from ``given`` (None means not given), then ``TOOLGRAD_*`` variables, then
    defaults. Raises :class:`ToolgradError` naming the flag (``flags[field]``, else
    ``--field-name``) and, when the value came from one, its variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    from_var: set[str] = set()
    for field, var in names.items():
        if given.get(field) is not None:
            values[field] = given[field]
        elif var in environ:
            raw = environ[var]
            values[field] = raw.replace(",", " ").split() if field == "envs" else raw
            from_var.add(field)
    try:
        return settings_type(**values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"][:1])
            flag = (flags or {}).get(field) or "--" + field.replace("_", "-")
            if err["type"] == "missing":
                problems.append(f"{flag} is required")
            elif field in from_var:
                problems.append(f"{flag} (from {names[field]}={environ[names[field]]!r}): {err['msg']}")
            else:
                problems.append(f"{flag}: {err['msg']}")
        raise ToolgradError("; ".join(problems)) from None


def sidecar(output: str | Path, suffix: str) -> Path:
    """``data.jsonl`` -> ``data<suffix>`` (``data.summary.json``, ``data.schema.json``)."""
    path = Path(output)
    base = path.with_suffix("") if path.suffix == ".jsonl" else path
    return base.with_name(base.name + suffix)
