"""The query-first baseline: ToolBench's DFSDT (depth-first search over tool calls) on the simulator.

Per seed, with the same model backend and the same validator as the answer-first loop:

1. **Query.** A pool of ``pool_size`` tools is drawn from ``sha256(seed)``; the query writer
   picks 2-4 of them and writes the request *before any call is made*. With a model: one
   structured-output call (the request and the tools it needs; one rewrite turn when it names an
   API, as the updater gets). Offline: 2-4 tools of the pool drawn from ``sha256(seed)``, listed
   producers first, the request templated from their summaries with the offline policy's
   phrases, quoting values for required free arguments (which the solver must then use).
2. **Solve.** Depth-first search. Expanding a node asks the backend for one more child: the
   next call, or "finish" (give up here). With a model: one call per expansion, shown the path so
   far and the children already tried at this node (DFSDT's diversity prompt). Offline: the
   offline policy's proposals restricted to the query's tools not yet called, ranked once per
   node, one per expansion, with its argument filling. Each call runs in a fork of the node's
   session; the loop's rule-based validator (:func:`toolgrad.loop.failure_reason`) prunes a failed
   call. A node has at most ``candidates`` children and the path at most ``max_depth`` calls; the
   search backtracks past them, and stops at the first node whose path has called every query
   tool successfully, or when the budget is spent: ``max_expansions``, or ``max_model_calls``
   decisions (model calls with a model; query + expansions + answer offline), one kept for the answer.
3. **Answer.** Written from the solved chain: one structured-output call, or the offline
   policy's answer template.

An unsolved seed is a failure: counted (``failed_seeds``), not written. A solved one is a
:class:`~toolgrad.records.Sample` with one chain (the path from the root), written with
toolgrad's dataset writer, with the search in its trace (iteration 0 the query, then one
iteration per expansion, the last the answer) and ``provenance.generator["method"] == "dfs"``,
so the certifier checks both generators alike. ``cost.tool_calls`` counts every call made,
pruned ones included, as the loop counts its forks' calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field

from simulator.environment import shipped_environments
from toolgrad.dataset import (
    SCHEMA_SUFFIX,
    SUMMARY_SUFFIX,
    Event,
    RunFinished,
    RunStarted,
    SampleDone,
    build_sample,
    encode_sample,
    git_revision,
    package_versions,
    sole_writer,
)
from toolgrad.files import LineFile, write_json_atomic
from toolgrad.llm import prompts
from toolgrad.llm.base import ChatModel, Completion, ModelError
from toolgrad.llm.openai_backend import CacheMiss
from toolgrad.loop import SampleOutcome, api_names, failure_reason
from toolgrad.offline import OfflinePolicy
from toolgrad.offline_catalog import tool_info
from toolgrad.offline_text import as_words, say, sequence
from toolgrad.offline_values import plausible
from toolgrad.policy import CallFn, Context, ExecutedCall, StageError, Workflow, named_apis
from toolgrad.records import (
    Chain,
    Cost,
    Execution,
    Iteration,
    Proposal,
    Provenance,
    RunSummary,
    Sample,
    Selection,
    Step,
    Trace,
)
from toolgrad.sampling import stable_int, stable_sample
from toolgrad.settings import ToolgradError, sidecar
from toolgrad.sources import detect_sources
from toolgrad.toolbox import Toolbox, ToolResult

METHOD = "dfs"
_KIND_ORDER = {"list": 0, "create": 1, "read": 2, "action": 3, "replace": 4, "update": 4, "delete": 5}
_PINNED_LOCATIONS = ("path", "query", "header", "cookie")


class DFSSettings(BaseModel):
    """One DFS run. ``envs``, ``n``, ``seed``, ``llm`` ... ``output`` mean what they mean for
    ``toolgrad generate``; the rest is the search and its budget (per sample)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    envs: list[str] = Field(default_factory=list)  # [] = every shipped environment
    n: int = Field(default=10, ge=0)
    seed: int = 0
    llm: Literal["offline", "openai"] = "offline"
    model: str = ""
    base_url: str = ""
    cache: str | None = None
    replay_only: bool = False
    pool_size: int = Field(default=8, ge=2)  # tools the query writer is shown
    candidates: int = Field(default=3, ge=1)  # children per node
    max_depth: int = Field(default=6, ge=1)  # calls per path
    max_expansions: int = Field(default=40, ge=1)
    max_model_calls: int = Field(default=60, ge=3)  # decisions per sample, the answer's included
    output: str = "dfs.jsonl"

    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.n))

    def generator(self) -> dict[str, Any]:
        """What goes in ``provenance.generator`` (besides the environments)."""
        return {"method": METHOD, "pool_size": self.pool_size, "candidates": self.candidates,
                "max_depth": self.max_depth, "max_expansions": self.max_expansions,
                "max_model_calls": self.max_model_calls}


# -- the search ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    tools: tuple[str, ...]  # the tools the request needs: the search is solved when each ran
    pinned: dict[str, dict[str, Any]] = field(default_factory=dict)  # tool -> values the request states


@dataclass(slots=True)
class Node:
    session: str
    steps: list[Step]  # the path from the root, every call successful
    children: int = 0  # children tried
    tried: list[str] = field(default_factory=list)  # one line per child tried, for the diversity prompt
    plan: list[Proposal] | None = None  # the offline backend's ranked candidates


@dataclass(frozen=True, slots=True)
class Expansion:
    """One child of a node: the call the backend made, or why none was made."""

    finish: bool = False  # nothing more to try here: backtrack
    tool: str = ""
    executed: ExecutedCall | None = None
    note: str = ""  # the model's words, or why no call was made


class SearchBackend(Protocol):
    """What decides at each stage: a chat model, or the offline policy."""

    name: str

    def write_query(self, seed: int, pool: list[str]) -> Query: ...

    def expand(self, seed: int, query: Query, node: Node, call: CallFn) -> Expansion: ...

    def write_answer(self, seed: int, query: Query, steps: list[Step]) -> str: ...

    def decisions(self) -> int:
        """Decisions made so far (model calls, with a model) for this sample."""
        ...

    def cost(self) -> Cost: ...

    def cache_keys(self) -> list[str]: ...


@dataclass(slots=True)
class SearchOutcome:
    seed: int
    query: Query | None
    steps: list[Step]  # the solved path ([] when unsolved)
    answer: str
    trace: Trace
    cost: Cost
    cache_keys: list[str]
    expansions: int
    decisions: int  # model calls with a model; query + expansions + answer offline
    error: str = ""  # why it is unsolved

    @property
    def solved(self) -> bool:
        return bool(self.steps) and bool(self.answer) and not self.error


def satisfied(query: Query, steps: list[Step]) -> bool:
    return set(query.tools) <= {s.tool for s in steps}


def _step(toolbox: Toolbox, result: ToolResult, earlier: list[Step], declared: dict[str, tuple[int, int, str]]) -> Step:
    bound = toolbox.tools.get(result.tool)
    bodies = [(0, i, s.response) for i, s in enumerate(earlier)]
    return Step(env=bound.env if bound else "", tool=result.tool, operation_id=bound.tool.operation_id if bound else "",
                arguments=dict(result.arguments), sources=detect_sources(result.arguments, bodies, declared),
                status=result.status, response=result.body, state_hash=result.state_hash)


def search_sample(toolbox: Toolbox, backend: SearchBackend, seed: int, settings: DFSSettings) -> SearchOutcome:
    """Write the query for ``seed``, search for a chain that solves it, write the answer."""
    session = f"dfs-{seed}"
    toolbox.reset(session)
    trace = Trace()
    made: list[str] = [session]
    tool_calls = 0
    expansions = 0

    def outcome(query: Query | None, steps: list[Step], answer: str, error: str) -> SearchOutcome:
        cost = backend.cost().model_copy(update={"tool_calls": tool_calls})
        return SearchOutcome(seed, query, steps, answer, trace, cost, backend.cache_keys(), expansions,
                             backend.decisions(), error)

    pool = stable_sample(toolbox.names(), settings.pool_size, "dfs-pool", seed)
    first = Iteration(iteration=0, batch=pool)
    trace.iterations.append(first)
    try:
        try:
            query = backend.write_query(seed, pool)
        except CacheMiss:  # a replay that misses is a broken run, not a failed stage
            raise
        except (StageError, ModelError) as exc:
            first.failed_stage, first.error = "propose", _reason(exc)
            return outcome(None, [], "", f"query: {first.error}")
        first.proposals = [Proposal(instruction=query.text, tools=list(query.tools))]
        first.query = query.text

        stack = [Node(session, [])]
        solved: list[Step] = []
        while stack and not solved:
            if expansions >= settings.max_expansions or backend.decisions() >= settings.max_model_calls - 1:
                break
            node = stack[-1]
            if len(node.steps) >= settings.max_depth or node.children >= settings.candidates:
                stack.pop()
                continue
            node.children += 1
            expansions += 1
            child = f"{session}/{expansions}"
            log: list[ToolResult] = []

            def call(name: str, arguments: dict[str, Any], parent: str = node.session, child: str = child,
                     log: list[ToolResult] = log) -> ToolResult:
                args = arguments if isinstance(arguments, dict) else {}
                if log:  # one call per expansion
                    return ToolResult(name, args, 0, None, "", "one call per expansion")
                toolbox.fork(parent, child)
                made.append(child)
                log.append(toolbox.call(child, name, args))
                return log[0]

            record = Iteration(iteration=expansions, batch=list(query.tools))
            trace.iterations.append(record)
            try:
                expansion = backend.expand(seed, query, node, call)
            except CacheMiss:
                raise
            except (StageError, ModelError) as exc:
                expansion = Expansion(note=_reason(exc))
            tool_calls += len(log)
            depth = len(node.steps)
            if expansion.finish:
                record.selection = Selection(proposal=None, action="reject", rationale=(
                    f"depth {depth}: finish ({expansion.note or 'nothing more to try'}); backtrack"))
                node.children = settings.candidates
                continue
            record.proposals = [Proposal(instruction=f"expand depth {depth}, child {node.children}",
                                         tools=[expansion.tool] if expansion.tool else [])]
            result = log[0] if log else None
            reason = failure_reason(result) if result is not None else (expansion.note or "no call made")
            steps = [] if result is None else [_step(toolbox, result, node.steps, _declared(expansion))]
            record.executions = [Execution(proposal=0, ok=not reason, steps=steps, reason=reason)]
            node.tried.append(_tried_line(expansion.tool, result, reason))
            if reason:
                record.failed_stage, record.error = "execute", reason
                record.selection = Selection(proposal=None, action="reject", rationale=f"pruned: {reason}")
                continue
            path = [*node.steps, *steps]
            if satisfied(query, path):
                solved = path
                why = f"solved at depth {len(path)}: every tool the request needs has run"
            else:
                stack.append(Node(child, path))
                missing = [t for t in query.tools if t not in {s.tool for s in path}]
                why = f"descend to depth {len(path)}; still needed: {', '.join(missing)}"
            record.selection = Selection(proposal=0, action="extend", chain=0, rationale=why)

        if not solved:
            spent = "expansions" if expansions >= settings.max_expansions else (
                "model calls" if backend.decisions() >= settings.max_model_calls - 1 else "search tree")
            return outcome(query, [], "", f"unsolved: {spent} exhausted after {expansions} expansion(s)")
        last = Iteration(iteration=expansions + 1, batch=list(query.tools))
        trace.iterations.append(last)
        try:
            answer = backend.write_answer(seed, query, solved).strip()
        except CacheMiss:
            raise
        except (StageError, ModelError) as exc:
            last.failed_stage, last.error = "update", _reason(exc)
            return outcome(query, [], "", f"answer: {last.error}")
        if not answer:
            last.failed_stage, last.error = "update", "empty answer"
            return outcome(query, [], "", "answer: empty")
        last.query, last.answer = query.text, answer
        return outcome(query, solved, answer, "")
    finally:
        for name in made:
            toolbox.drop(name)


def _declared(expansion: Expansion) -> dict[str, tuple[int, int, str]]:
    return dict(expansion.executed.sources) if expansion.executed is not None else {}


def _tried_line(tool: str, result: ToolResult | None, reason: str) -> str:
    args = prompts.compact_json(result.arguments, 120) if result is not None else ""
    outcome = reason or (f"{result.status}, kept" if result is not None else "")
    return f"{tool or '(no tool)'}({args}) -> {outcome}"


def _reason(exc: Exception) -> str:
    return exc.reason if isinstance(exc, StageError) else f"{type(exc).__name__}: {exc}"


# -- the offline backend ------------------------------------------------------------------------


class OfflineBackend:
    """The offline policy's planning and argument filling, used query-first."""

    name = "offline"

    def __init__(self, toolbox: Toolbox, settings: DFSSettings) -> None:
        self.toolbox = toolbox
        self.settings = settings
        self.policy = OfflinePolicy(toolbox, target_calls=settings.max_depth)
        self._decisions = 0

    def decisions(self) -> int:
        return self._decisions

    def cost(self) -> Cost:
        return Cost()

    def cache_keys(self) -> list[str]:
        return []

    def write_query(self, seed: int, pool: list[str]) -> Query:
        self._decisions += 1
        if len(pool) < 2:
            raise StageError("propose", f"a multi-step request needs 2 tools; the pool has {len(pool)}")
        size = min(len(pool), 2 + stable_int("dfs-query-size", seed) % 3)
        infos = [tool_info(self.toolbox, n) for n in stable_sample(pool, size, "dfs-query", seed)]
        infos.sort(key=lambda i: (_KIND_ORDER.get(i.kind, 3), i.name))
        clauses: list[str] = []
        pinned: dict[str, dict[str, Any]] = {}
        for info in infos:
            said: list[str] = []
            values: dict[str, Any] = {}
            for arg in info.args:
                if not arg.required or arg.feedable or arg.location not in _PINNED_LOCATIONS or len(said) >= 3:
                    continue
                value = plausible(arg, ("dfs", seed, info.name))
                text = say(value)
                if text is not None:
                    values[arg.name] = value
                    said.append(f"{as_words(arg.name)} {text}")
            clauses.append(info.phrase + (" with " + ", ".join(said) if said else ""))
            if values:
                pinned[info.name] = values
        text = sequence(clauses, also=False) + " Tell me what you find."
        return Query(text, tuple(i.name for i in infos), pinned)

    def _context(self, seed: int, query: Query, node: Node) -> Context:
        called = {s.tool for s in node.steps}
        batch = [self.toolbox.tools[n] for n in query.tools if n not in called]
        workflow = Workflow(chains=[Chain(steps=list(node.steps))] if node.steps else [])
        return Context(seed=seed, iteration=len(node.steps), batch=batch, workflow=workflow,
                       k=self.settings.candidates, max_agent_steps=1)

    def expand(self, seed: int, query: Query, node: Node, call: CallFn) -> Expansion:
        self._decisions += 1
        ctx = self._context(seed, query, node)
        if node.plan is None:
            try:
                node.plan = self.policy.propose(ctx) if ctx.batch else []
            except StageError as exc:
                node.plan = []
                return Expansion(finish=True, note=exc.reason)
        index = node.children - 1
        if index >= len(node.plan):
            return Expansion(finish=True, note=f"no more candidates ({len(node.plan)} proposed)")
        proposal = node.plan[index]
        pins = query.pinned

        def pinned_call(name: str, arguments: dict[str, Any]) -> ToolResult:
            return call(name, {**arguments, **pins.get(name, {})})

        try:
            executed = self.policy.execute(ctx, proposal, pinned_call)
        except StageError as exc:
            return Expansion(tool=proposal.tools[0], note=exc.reason)
        return Expansion(tool=proposal.tools[0], executed=executed[0] if executed else None)

    def write_answer(self, seed: int, query: Query, steps: list[Step]) -> str:
        self._decisions += 1
        workflow = Workflow(chains=[Chain(steps=steps)], query=query.text)
        ctx = Context(seed=seed, iteration=0, batch=[], workflow=workflow, k=1, max_agent_steps=1)
        selection = Selection(proposal=0, action="extend", chain=0, rationale="")
        return self.policy.update(ctx, selection, workflow)[1]


# -- the model backend --------------------------------------------------------------------------

QUERY_SYSTEM = ("You write realistic requests that users make to an assistant that can use web APIs. "
                "Reply with JSON only.")
SOLVER_SYSTEM = ("You solve a user's request by calling tools, one call per turn, with real values from the "
                 "request or from earlier results. Call exactly one tool now. When the request is done, or "
                 "cannot be done from here, reply without a tool call.")
ANSWER_SYSTEM = ("You write the final answer to a user's request from the API calls made for it and their real "
                 "results. State the real values. Reply with JSON only.")
ANSWER_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"answer": {"type": "string", "minLength": 1}},
                                 "required": ["answer"]}


def query_schema(tool_names: list[str]) -> dict[str, Any]:
    return {"type": "object", "required": ["query", "tools"], "properties": {
        "query": {"type": "string", "minLength": 1},
        "tools": {"type": "array", "minItems": 2, "maxItems": 4, "items": {"type": "string", "enum": tool_names}},
    }}


def query_messages(tools_text: str) -> list[dict[str, Any]]:
    user = (f"Tools:\n{tools_text}\n\nWrite one request a user might make that needs 2 to 4 of these tools "
            "used one after another (a multi-step task), with the concrete values the user would know. Do not "
            "name tools, APIs, functions or endpoints. Give the request and the names of the tools it needs.\n"
            'JSON: {"query": "...", "tools": ["tool name", "tool name"]}')
    return [{"role": "system", "content": QUERY_SYSTEM}, {"role": "user", "content": user}]


def query_rewrite_request(named: list[str]) -> str:
    return (f"The request names {', '.join(named)}. Rewrite it as a person would say it, without naming any "
            'API or tool. JSON: {"query": "...", "tools": ["tool name", "tool name"]}')


def solver_messages(query: str, steps: list[Step], tried: list[str], output_chars: int) -> list[dict[str, Any]]:
    lines = [prompts.step_line(f"[step {i}]", s, output_chars) for i, s in enumerate(steps)] or ["(none yet)"]
    user = f"Request: {query}\n\nCalls so far:\n" + "\n".join(lines)
    if tried:
        user += ("\n\nAlready tried at this point (do something different):\n"
                 + "\n".join(f"- {prompts.clip(t, 200)}" for t in tried))
    return [{"role": "system", "content": SOLVER_SYSTEM}, {"role": "user", "content": user}]


def answer_messages(query: str, steps: list[Step], budget: int) -> list[dict[str, Any]]:
    calls = prompts.render_workflow(Workflow(chains=[Chain(steps=steps)]), budget)
    user = f"Request: {query}\n\nCalls and results:\n{calls}\n\nWrite the final answer.\n" + 'JSON: {"answer": "..."}'
    return [{"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": user}]


class ModelBackend:
    """Every decision asked of a chat model: one call per query (plus one rewrite turn when it
    names an API), per expansion, and per answer."""

    name = "openai"

    def __init__(self, toolbox: Toolbox, chat: ChatModel, *, tools_budget: int = 1800, output_chars: int = 400,
                 max_tokens: int = 384) -> None:
        self.toolbox = toolbox
        scoped = getattr(chat, "scoped", None)  # its own counters: this sample's spending only
        self.chat: ChatModel = scoped() if callable(scoped) else chat
        self.tools_budget, self.output_chars, self.max_tokens = tools_budget, output_chars, max_tokens
        self.forbidden = api_names(toolbox)
        self._calls = 0
        self._completions: list[Completion] = []

    def decisions(self) -> int:
        return self._calls

    def cost(self) -> Cost:
        usage = getattr(self.chat, "usage", None)
        if callable(usage):
            spent = usage()
            return Cost(model_calls=spent.calls, prompt_tokens=spent.prompt_tokens,
                        completion_tokens=spent.completion_tokens)
        return Cost(model_calls=self._calls, prompt_tokens=sum(c.prompt_tokens for c in self._completions),
                    completion_tokens=sum(c.completion_tokens for c in self._completions))

    def cache_keys(self) -> list[str]:
        usage = getattr(self.chat, "usage", None)
        if callable(usage):
            return list(usage().cache_keys)
        return list(dict.fromkeys(c.cache_key for c in self._completions if c.cache_key))

    def _ask(self, messages: list[dict[str, Any]], **kw: Any) -> Completion:
        self._calls += 1
        completion = self.chat.complete(list(messages), temperature=0.0, max_tokens=self.max_tokens, **kw)
        self._completions.append(completion)
        return completion

    def _structured(self, stage: str, messages: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
        completion = self._ask(messages, json_schema=schema)
        try:
            document = orjson.loads(completion.content)
        except orjson.JSONDecodeError as exc:
            raise StageError(stage, f"the model's reply is not JSON: {prompts.clip(completion.content, 200)!r}") from exc
        if not isinstance(document, dict):
            raise StageError(stage, "the model's reply is not a JSON object")
        return document

    def write_query(self, seed: int, pool: list[str]) -> Query:
        tools_text, shown = prompts.render_tools(self.toolbox.openai_tools(pool), self.tools_budget)
        messages = query_messages(tools_text)
        document = self._structured("propose", messages, query_schema(shown))
        named = named_apis(str(document.get("query", "")), self.forbidden)
        if named:  # one rewrite turn, as the updater gets
            messages += [{"role": "assistant", "content": orjson.dumps(document).decode()},
                         {"role": "user", "content": query_rewrite_request(named)}]
            document = self._structured("propose", messages, query_schema(shown))
        text = str(document.get("query", "")).strip()
        tools = tuple(dict.fromkeys(t for t in document.get("tools", []) if t in shown))
        if not text:
            raise StageError("propose", "empty query")
        if named_apis(text, self.forbidden):
            raise StageError("propose", f"the query names API(s): {', '.join(named_apis(text, self.forbidden))}")
        if not 2 <= len(tools) <= 4:
            raise StageError("propose", f"the query needs {len(tools)} known tool(s); 2 to 4 were asked for")
        return Query(text, tools)

    def expand(self, seed: int, query: Query, node: Node, call: CallFn) -> Expansion:
        specs = [prompts.compact_tool_spec(s) for s in self.toolbox.openai_tools(query.tools)]
        messages = solver_messages(query.text, node.steps, node.tried, self.output_chars)
        completion = self._ask(messages, tools=specs, tool_choice="auto")
        if not completion.tool_calls:
            return Expansion(finish=True, note=prompts.clip(completion.content.strip(), 200))
        chosen = completion.tool_calls[0]
        if chosen.name not in query.tools:
            return Expansion(tool=chosen.name, note=f"unknown tool {chosen.name!r}")
        try:
            arguments = orjson.loads(chosen.arguments) if chosen.arguments.strip() else {}
        except orjson.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            return Expansion(tool=chosen.name, note="the arguments are not a JSON object")
        return Expansion(tool=chosen.name, executed=ExecutedCall(call(chosen.name, arguments)))

    def write_answer(self, seed: int, query: Query, steps: list[Step]) -> str:
        document = self._structured("update", answer_messages(query.text, steps, 1200), ANSWER_SCHEMA)
        return str(document.get("answer", ""))


# -- the run ------------------------------------------------------------------------------------

BackendFactory = Callable[[Toolbox], SearchBackend]


def backend_factory_for(settings: DFSSettings, chat: ChatModel | None = None) -> BackendFactory:
    """Offline, or a model: ``chat`` when given (a test double), else the client ``toolgrad
    generate --llm openai`` would use for the same model, base URL and cache."""
    if settings.llm == "offline" and chat is None:
        return lambda toolbox: OfflineBackend(toolbox, settings)
    if chat is None:
        if not settings.model:
            raise ToolgradError("--llm openai needs --model (or TOOLGRAD_MODEL)")
        from toolgrad.llm_policy import shared_chat

        chat = shared_chat(settings.model, settings.base_url, settings.cache, settings.replay_only)
    model: ChatModel = chat
    return lambda toolbox: ModelBackend(toolbox, model)


def make_provenance(settings: DFSSettings, toolbox: Toolbox, llm: str) -> Provenance:
    generator = {**settings.generator(), "environments": sorted(toolbox.environments)}
    return Provenance(environments=toolbox.fingerprints(), generator=generator, llm=llm,
                      model=settings.model if llm != "offline" else "",
                      base_url=settings.base_url if llm != "offline" else "",
                      versions=package_versions(), git_revision=git_revision())


def to_sample(toolbox: Toolbox, outcome: SearchOutcome, provenance: Provenance) -> Sample:
    assert outcome.query is not None and outcome.solved
    workflow = Workflow(chains=[Chain(steps=outcome.steps)], query=outcome.query.text, answer=outcome.answer)
    done = SampleOutcome(outcome.seed, workflow, outcome.trace, outcome.cost, outcome.cache_keys,
                         toolbox.openai_tools(outcome.query.tools))
    return build_sample(done, provenance)


def generate_dfs_dataset(
    settings: DFSSettings, *, chat: ChatModel | None = None, events: Callable[[Event], None] | None = None,
) -> RunSummary:
    """Run the baseline for ``settings.seeds()`` and write the solved samples to
    ``settings.output`` (replaced, not resumed), in seed order, with ``.summary.json`` and
    ``.schema.json`` beside it. Same settings and model replies, same bytes."""
    emit = events or (lambda event: None)
    started = time.perf_counter()
    refs = list(settings.envs) or shipped_environments()
    if not refs:
        raise ToolgradError("no environment: pass --env NAME|DIR|SPEC (no shipped environments were found)")
    out = Path(settings.output)
    if not out.parent.exists():
        raise ToolgradError(f"output directory {out.parent} does not exist")
    with sole_writer(out):  # one writer per output file
        toolbox = Toolbox.in_process(refs)
        factory = backend_factory_for(settings, chat)
        provenance = make_provenance(settings, toolbox, factory(toolbox).name)
        seeds = settings.seeds()
        emit(RunStarted(str(out), settings.seed, len(seeds), len(seeds), 0, sorted(toolbox.environments)))
        out.unlink(missing_ok=True)
        write_json_atomic(sidecar(out, SCHEMA_SUFFIX), Sample.model_json_schema())
        totals = Cost()
        written: list[int] = []
        failed: list[int] = []
        expansions = decisions = 0
        writer = LineFile(out)
        try:
            for seed in seeds:
                try:
                    outcome = search_sample(toolbox, factory(toolbox), seed, settings)
                finally:
                    toolbox.forget_snapshots()
                expansions += outcome.expansions
                decisions += outcome.decisions
                totals = Cost(**{k: getattr(totals, k) + getattr(outcome.cost, k) for k in Cost.model_fields})
                error = outcome.error
                if outcome.solved:
                    try:
                        writer.append(encode_sample(to_sample(toolbox, outcome, provenance)))
                        written.append(seed)
                    except TypeError as exc:  # e.g. an integer wider than 64 bits
                        error = f"the record cannot be written as canonical JSON: {exc}"
                if error:
                    failed.append(seed)
                emit(SampleDone(seed, not error, len(outcome.steps), outcome.cost.model_calls,
                                outcome.cost.prompt_tokens, outcome.cost.completion_tokens, error))
        finally:
            writer.close()
            toolbox.close()
        wall = time.perf_counter() - started
        summary = RunSummary(
            dataset=str(out), samples=len(written), seeds=written, new_samples=len(written), failed_seeds=failed,
            wall_seconds=round(wall, 3), samples_per_second=round(len(written) / wall, 3) if wall > 0 else 0.0,
            model_calls=totals.model_calls, prompt_tokens=totals.prompt_tokens,
            completion_tokens=totals.completion_tokens, tool_calls=totals.tool_calls,
            config={**settings.model_dump(mode="json"), "generator": settings.generator(),
                    "environments": sorted(provenance.environments), "expansions": expansions,
                    "decisions": decisions,
                    "schema": str(sidecar(out, SCHEMA_SUFFIX))},
        )
        write_json_atomic(sidecar(out, SUMMARY_SUFFIX), summary.model_dump(mode="json"))
        emit(RunFinished(summary))
        return summary
