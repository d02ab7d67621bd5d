"""The dataset's record format: versioned pydantic models, one :class:`Sample` per JSONL line.

Everything in a record is a pure function of (environments, seed, generator config, model
replies): no timings, no hostnames, no dates. What varies run to run goes in the run summary.
``toolgrad generate`` publishes the JSON Schema (``Sample.model_json_schema()``) beside the data.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from .json_values import argument_pointer

# 2: argument sources are keyed by a JSON pointer into the arguments ("/body/name"), so a value
# deep in a body can be traced; version-1 lines (keyed by top-level argument name) are read with
# their keys turned into pointers ("petId" -> "/petId"), which names the same thing.
# 3: lean lines. The iteration trace moved to the sidecar ``<data>.traces.jsonl`` (one
# :class:`TraceLine` per sample, same order); the line keeps ``trace_sha256``, the sha256 of that
# sidecar line (without its newline). Candidate tools are named; their OpenAI specs are stored once,
# in ``<data>.tools.json``. Version-1 and -2 lines (``trace`` and tool specs inline) are read.
# 4: ``provenance.environments`` holds the fingerprints of the environments the sample's chains
# call, not of every environment of the run (8 fingerprints were 3.3 KB of a 15.6 KB line); the
# run's environments stay named in ``provenance.generator["environments"]``. Same fields as 3.
SCHEMA_VERSION = "4"
READABLE_VERSIONS = ("1", "2", "3", "4")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArgumentSource(_Record):
    """Where an argument value came from: an earlier step's response body."""

    chain: int  # index of the chain in Sample.chains
    step: int  # index of the step in that chain
    pointer: str  # JSON pointer into that step's response body


class Step(_Record):
    env: str
    tool: str  # qualified tool name, as the model saw it
    operation_id: str
    arguments: dict[str, Any]
    # JSON pointer into ``arguments`` ("/petId", "/body/dashboard_id") -> where that value came from
    sources: dict[str, ArgumentSource] = Field(default_factory=dict)
    status: int
    response: Any  # parsed JSON body (or text, or null)
    state_hash: str  # the env's session state after this step

    @field_validator("sources", mode="before")
    @classmethod
    def _pointer_keys(cls, value: Any) -> Any:
        """Schema 1 keyed sources by argument name; a pointer always starts with "/"."""
        if isinstance(value, dict) and any(isinstance(k, str) and not k.startswith("/") for k in value):
            return {(k if k.startswith("/") else argument_pointer(k)): v for k, v in value.items()}
        return value


class Chain(_Record):
    steps: list[Step]


class Proposal(_Record):
    instruction: str
    tools: list[str]


class Execution(_Record):
    proposal: int  # index in the iteration's proposals
    ok: bool
    steps: list[Step]  # the calls the agent made (chain/step indices in sources are provisional)
    reason: str = ""  # why the validator failed it


class Selection(_Record):
    proposal: int | None  # None: all rejected
    action: str  # "extend" | "new" | "reject"
    chain: int | None = None  # the chain extended
    rationale: str  # the textual "gradient"


class Iteration(_Record):
    iteration: int
    batch: list[str]  # the mini-batch of tools
    proposals: list[Proposal] = Field(default_factory=list)
    executions: list[Execution] = Field(default_factory=list)
    selection: Selection | None = None
    query: str | None = None  # after the update
    answer: str | None = None
    failed_stage: str | None = None  # "propose" | "execute" | "select" | "update"
    error: str = ""


class Trace(_Record):
    iterations: list[Iteration] = Field(default_factory=list)


class Cost(_Record):
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: int = 0


class Provenance(_Record):
    # env name -> fingerprint: schema 4, of each environment the sample's chains call (what replay
    # needs); schema 1-3, of every environment of the run
    environments: dict[str, dict[str, Any]]
    generator: dict[str, Any]  # the generator config (iterations, batch size, proposals, ...)
    llm: str  # "offline" or "openai"
    model: str = ""
    base_url: str = ""
    cache_keys: list[str] = Field(default_factory=list)
    versions: dict[str, str] = Field(default_factory=dict)  # package versions
    git_revision: str = ""
    # env name -> its folder (or spec file), relative to the dataset's folder, for environments not
    # found by name (your own API): certify and eval find them again with no flag. Absent when empty.
    environment_paths: dict[str, str] = Field(default_factory=dict, exclude_if=lambda paths: not paths)

    @field_validator("generator")
    @classmethod
    def _environments_are_names(cls, generator: dict[str, Any]) -> dict[str, Any]:
        """The run's environments (``generator["environments"]``, read by the exports to find
        distractor tools) are a list of names, when present."""
        names = generator.get("environments")
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise ValueError(f"generator.environments must be a list of environment names, not {names!r:.80}")
        return generator


class Sample(_Record):
    schema_version: str = SCHEMA_VERSION
    id: str  # sha256 of the canonical record without the id
    seed: int
    query: str
    answer: str
    chains: list[Chain]
    # qualified names of the tools the query was written for (their OpenAI specs: <data>.tools.json);
    # schema 1 and 2 held the specs here: read as their names, the specs kept in legacy_tool_specs
    candidate_tools: list[str]
    # schema 1 and 2: the trace of every iteration, inline; schema 3: absent (in the sidecar)
    trace: Trace | None = Field(default=None, exclude_if=lambda trace: trace is None)
    # schema 3: sha256 of the sample's line in <data>.traces.jsonl (its canonical JSON, no newline)
    trace_sha256: str = Field(default="", exclude_if=lambda digest: not digest)
    provenance: Provenance
    cost: Cost

    _legacy_specs: list[dict[str, Any]] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _inline_specs(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Sample:
        """Schema 1 and 2 held each candidate tool's OpenAI spec: read as names, specs kept aside."""
        specs: list[dict[str, Any]] = []
        tools = data.get("candidate_tools") if isinstance(data, dict) else None
        if isinstance(tools, list) and tools and all(isinstance(t, dict) for t in tools):
            specs = tools
            data = {**data, "candidate_tools": [str((t.get("function") or {}).get("name", "")) for t in tools]}
        sample: Sample = handler(data)
        if specs:
            sample._legacy_specs = specs
        return sample

    @property
    def legacy_tool_specs(self) -> list[dict[str, Any]]:
        """A schema-1 or -2 line's inline OpenAI tool specs (empty for schema 3: see the tool table)."""
        return self._legacy_specs

    @field_validator("schema_version")
    @classmethod
    def _readable(cls, value: str) -> str:
        if value not in READABLE_VERSIONS:
            raise ValueError(f"schema version {value!r} is not one this toolgrad reads "
                             f"({', '.join(READABLE_VERSIONS)}); upgrade toolgrad or regenerate the dataset")
        return value

    def steps(self) -> list[Step]:
        return [s for c in self.chains for s in c.steps]


class TraceLine(_Record):
    """One line of ``<data>.traces.jsonl``: the trace of the dataset's sample on the same line."""

    schema_version: str = SCHEMA_VERSION
    seed: int  # the sample's seed (the sidecar is in the dataset's order: seeds ascending)
    trace: Trace


class RunSummary(BaseModel):
    """Beside the dataset (``<data>.summary.json``): what varies run to run."""

    dataset: str
    samples: int
    seeds: list[int]
    new_samples: int
    failed_seeds: list[int] = Field(default_factory=list)
    wall_seconds: float
    samples_per_second: float
    model_calls: int
    prompt_tokens: int
    completion_tokens: int
    tool_calls: int
    model_requests: int = 0  # HTTP requests sent to the model server: 0 when replayed from the cache
    cache_hits: int = 0  # model calls answered from the record/replay cache
    stopped: str = ""  # why the run stopped before its last seed ("" when every seed ran)
    config: dict[str, Any]
