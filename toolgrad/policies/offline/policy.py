"""OfflinePolicy: the four ToolGrad modules as a deterministic algorithm, no model needed.

What it is: a schema-driven planner that builds chains in which earlier outputs feed later
inputs, run for real against the (simulated) services.

* **Propose.** Each tool is analysed once from its spec: what it does to which resource
  (:func:`simulator.environments.resources.infer_resources`: list, create, read, update, delete, action),
  which argument addresses an existing record (``petId`` of ``GET /pet/{petId}``, or the id
  field of a ``PUT /pet`` body), which arguments name other records (``petId`` in an order),
  and which fields its success response carries. A tool is callable when its addressing
  argument can be fed from a record already seen, or takes few enough values to guess (an
  enum, a small integer range): a guessed id of a writable resource would be a 404. Proposals
  are sequences of up to three tools in which each later tool consumes something an earlier
  one produces, scored by: tools new to the workflow, arguments fed from outputs already in
  the workflow or from the proposal's earlier calls, writes over reads. The ``k`` best with
  distinct first tools are proposed; ties break on ``sha256(seed, iteration, tool)``.
* **Execute.** Arguments are filled in order: from earlier outputs by name and type (``petId``
  <- the ``id`` of a pet record, ``username`` <- ``username``, ``dashboard_id`` <- a dashboard's
  ``id``; all arguments of a call prefer the record the first one came from; deleted records are
  skipped), then required ones from the schema: enum members, examples and defaults, or
  :func:`simulator.datagen.generate.generate_value` seeded by (seed, iteration, tool, argument), objects
  pruned to their required fields. A write gets one optional scalar more (a short one), and a
  list that takes a page size (``limit``, ``per_page``...) asks for a small page of 2 to 4
  records (a chain uses the first few, and a short response keeps the sample short): every
  value chosen here is one the query must state. When a value comes from a step already in the
  workflow, its source (chain, step, JSON pointer) is declared. The agent stops at the first
  failed call (the validator fails it anyway).
* **Select.** The successful execution that extends the workflow most: new tools, arguments
  fed from earlier outputs, writes, length; repeats of earlier calls count against, and a
  candidate that only repeats is rejected. It extends the chain it consumes from, else starts
  a new one, and the rationale says why, with the other candidates' scores.
* **Update.** Query and answer from templates over all chains
  (:mod:`toolgrad.policies.offline.query`): each step's summary (or the first sentence of its
  description) as an imperative clause, every value the user must supply quoted, a value taken
  from an earlier result referred to by what identifies its record ("the pet ID of the pet with
  name 'doggie' from the previous result"), never by list position; the answer cites key fields
  (ids, names, statuses, counts) of the real responses. Tool and operation names never appear,
  and the text passes the loop's validity checks by construction.

What it is not: it does not read descriptions for meaning, plan towards a goal, or write
varied prose: queries are templated and read like it ("First, find Pets by status with status
'sold'. Then, ..."). Sample length is drawn per seed between 3 and 6 calls
(``target_calls`` fixes it). It exists so the pipeline, its tests and the quick start run with
no model, and as a floor to compare model-generated data with.

This module is the policy's decisions; what it knows of each tool is in
:mod:`toolgrad.policies.offline.catalog`, the values seen so far in :mod:`toolgrad.policies.offline.facts`, its
search for plans in :mod:`toolgrad.policies.offline.plans`, how it
picks values in :mod:`toolgrad.policies.offline.values` and how it words things in
:mod:`toolgrad.policies.offline.query` (the query) and :mod:`toolgrad.policies.offline.text` (phrases, the answer).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from simulator.service.handlers import LIMIT_PARAMS
from toolgrad.loop.policy import CallFn, Context, ExecutedCall, StageError, Workflow
from toolgrad.loop.stages import THIS_EXECUTION
from toolgrad.loop.validator import failure_reason
from toolgrad.records import Cost, Proposal, Selection, Step
from toolgrad.sampling import stable_hash, stable_hashes, stable_int, stable_ranks
from toolgrad.toolbox import Toolbox, ToolResult
from toolgrad.validity.tool_terms import toolbox_terms

from .catalog import ArgSpec, ToolInfo, tool_info
from .facts import Fact, Facts, SampleFacts
from .plans import Candidate, PlanIndex, best_plans, grow, plan_tie
from .query import Worded, query_and_answer
from .text import instruction
from .values import coerce, fitter, minimal, page_size, plausible, scalar_hash

MIN_CALLS, MAX_CALLS = 3, 6
_SHORT_TEXT = 40  # characters of a generated optional text worth stating in a query


class OfflinePolicy:
    """A deterministic :class:`~toolgrad.loop.policy.Policy`; make one per sample (it is cheap)."""

    name = "offline"

    def __init__(self, toolbox: Toolbox, *, target_calls: int | None = None) -> None:
        self.toolbox = toolbox
        self.target_calls = target_calls
        self._failures: dict[str, int] = {}  # tool -> calls the validator failed in this sample
        self._infos: dict[str, ToolInfo | None] = {}
        self.facts = SampleFacts(self.info)
        self._worded: Worded = {}  # each step's clause and finding, over the sample's updates

    def cost(self) -> Cost:
        return Cost()

    def cache_keys(self) -> list[str]:
        return []

    def info(self, name: str) -> ToolInfo | None:
        try:
            return self._infos[name]
        except KeyError:  # asked once per sample and name (tool_info takes a lock)
            found = self._infos[name] = tool_info(self.toolbox, name) if name in self.toolbox.tools else None
            return found

    def target(self, seed: int) -> int:
        if self.target_calls is not None:
            return self.target_calls
        return MIN_CALLS + stable_int("offline-target", seed) % (MAX_CALLS - MIN_CALLS + 1)

    # -- propose --------------------------------------------------------------------------------

    def propose(self, ctx: Context) -> list[Proposal]:
        done = len(ctx.workflow.steps())
        room = min(self.target(ctx.seed) - done, ctx.max_agent_steps, 3)
        if room <= 0:
            raise StageError("propose", f"the workflow is complete ({done} calls)")
        keys0 = frozenset(self.facts.of_workflow(ctx.workflow).keys())
        used = {s.tool for _, _, s in ctx.workflow.steps()}
        infos = [i for i in (self.info(b.name) for b in ctx.batch) if i is not None]
        rank = stable_ranks([i.name for i in infos], ctx.seed, ctx.iteration)
        base = {i.name: self._score(i, keys0, frozenset(), used) for i in infos}
        candidates = [Candidate(i, f"record:{i.resource.name}" if i.resource is not None else None,
                                i.resource is not None and i.address is not None, base[i.name], rank[i.name])
                      for i in infos]
        index = PlanIndex(candidates)
        plans = [grow(c, index, keys0, room) for c in candidates if c.info.callable_with(keys0)]
        if not plans:
            raise StageError("propose", "no tool in the batch can be called with what the workflow knows")
        chosen = best_plans(plans, ctx.k, plan_tie(ctx.seed, ctx.iteration))
        return [Proposal(instruction=instruction(tools), tools=[t.name for t in tools]) for tools in chosen]

    def _score(
        self, info: ToolInfo, keys0: frozenset[str], produced: frozenset[str], used: set[str]
    ) -> float:
        score = 3.0 if info.name not in used else -1.0
        score -= 3.0 * self._failures.get(info.name, 0)  # what failed in this sample is avoided
        score += 2.0 * info.fed_by(keys0) + 1.5 * (info.fed_by(produced) if produced else 0)
        score += 1.0 if info.writes else 0.0
        score += 0.5 if info.kind in ("list", "read", "create") else 0.0
        if not info.has_body:
            score -= 2.0  # documents no body: the validator would call it empty
        if info.kind == "delete":
            score -= 1.0  # ends what it touches
        return score

    # -- execute --------------------------------------------------------------------------------

    def execute(self, ctx: Context, proposal: Proposal, call: CallFn) -> list[ExecutedCall]:
        facts = self.facts.of_workflow(ctx.workflow).copy()
        order = len(ctx.workflow.steps())
        out: list[ExecutedCall] = []
        unread: tuple[ToolResult, ToolInfo, int] | None = None  # the last call: its facts only if a call follows
        for index, name in enumerate(proposal.tools[: ctx.max_agent_steps]):
            info = self.info(name)
            if info is None:
                raise StageError("execute", f"unknown tool {name!r}")
            if unread is not None:
                facts.add(self.facts.of_call(*unread, order))
                unread = None
            salt = (ctx.seed, ctx.iteration, proposal.tools, index)
            arguments, sources = self._fill(info, facts, salt)
            result = call(name, arguments)
            out.append(ExecutedCall(result, sources))
            if failure_reason(result):
                self._failures[name] = self._failures.get(name, 0) + 1
                break
            unread = (result, info, index)
            if info.kind == "delete" and info.resource and info.address and info.address.name in arguments:
                facts.deleted.add((info.resource.name, str(arguments[info.address.name])))
        return out

    def _fill(
        self, info: ToolInfo, facts: Facts, salt: tuple[Any, ...]
    ) -> tuple[dict[str, Any], dict[str, tuple[int, int, str]]]:
        arguments: dict[str, Any] = {}
        sources: dict[str, tuple[int, int, str]] = {}
        anchor: tuple[int, str] | None = None
        # the addressing argument first, then references: later ones prefer the same record
        for arg in info.fill_order:
            fact = self._match(arg, facts, anchor, salt) if arg.feedable else None
            if fact is not None:
                arguments[arg.name] = coerce(fact.value, arg.schema)
                if fact.pointer is not None and fact.place is not None:
                    sources[arg.name] = (fact.place[0], fact.place[1], fact.pointer)
                elif fact.pointer is not None and fact.call is not None:
                    sources[arg.name] = (THIS_EXECUTION, fact.call, fact.pointer)
                if anchor is None and fact.record not in ("-", "args"):
                    anchor = (fact.order, fact.record)
                continue
            if arg is info.address and info.must_feed:
                raise StageError(
                    "execute",
                    f"{info.name}: no known {info.resource.name if info.resource else ''} "
                    f"record to address with {arg.name!r}",
                )
            if arg.required:
                arguments[arg.name] = plausible(arg, salt)
            elif info.kind == "list" and arg.location == "query" and arg.name in LIMIT_PARAMS:
                size = page_size(arg, salt)
                if size is not None:
                    arguments[arg.name] = size
        if info.body_schema is not None and (
            info.body_required or info.kind in ("create", "replace", "update")
        ):
            self._fill_body(info, arguments, salt)
        return {a.name: arguments[a.name] for a in info.args if a.name in arguments}, sources

    @staticmethod
    def _fill_body(info: ToolInfo, arguments: dict[str, Any], salt: tuple[Any, ...]) -> None:
        """One more body field for a write (a change worth making: a scalar, never the new
        record's own id or a read-only field, a short text rather than a long one); a minimal
        body (its required fields) when the body is required and nothing filled it yet. Every
        value chosen here is one the query must state, so few are chosen."""
        fields = [a for a in info.args if a.location == "body-field"]
        if not fields:
            return
        if info.body_required and not any(a.name in arguments for a in fields):
            body = minimal(
                info.body_schema or {}, (*salt, "body"), info.resource.name if info.resource else None
            )
            if isinstance(body, dict):
                arguments.update({a.name: body[a.name] for a in fields if a.name in body})
            return
        extra = [a for a in info.body_changes if a.name not in arguments]
        ranks = stable_hashes(salt, [a.name for a in extra])  # stable_hash(*salt, name) each
        for a in (extra[i] for i in sorted(range(len(extra)), key=ranks.__getitem__)):
            value = minimal(a.schema, (*salt, a.name), a.value_name)
            if value is not None and not (isinstance(value, str) and len(value) > _SHORT_TEXT):
                arguments[a.name] = value
                return

    @staticmethod
    def _match(
        arg: ArgSpec, facts: Facts, anchor: tuple[int, str] | None, salt: tuple[Any, ...]
    ) -> Fact | None:
        """The fact ``arg`` takes: from the first tier (:func:`_tiers`) with a fitting fact of
        the ``anchor`` record (a call takes its values from one record: the anchored record in
        any tier wins over another record in a better tier, no mixing of list items the query
        would have to name), else from the first tier with a fitting fact, its latest step;
        among those values, one drawn from ``salt``. Tiers after the one that decides are not
        looked up."""
        fit = fitter(arg.schema)
        refers = arg.refers_to
        deleted = facts.deleted if refers else None
        first: list[Fact] | None = None
        chosen: list[Fact] | None = None
        for candidates in _tiers(arg, facts):
            pool = [f for f in candidates if fit(f.value) and not (deleted and (refers, str(f.value)) in deleted)]
            if not pool:
                continue
            if first is None:
                first = pool
            if anchor is None:
                break
            hits = [f for f in pool if f.order == anchor[0] and f.record == anchor[1]]
            if hits:
                chosen = hits
                break
        if chosen is None:
            if first is None:
                return None
            latest = max(f.order for f in first)
            chosen = [f for f in first if f.order == latest]
        values: dict[str, Fact] = {}
        for f in chosen:
            values.setdefault(scalar_hash(f.value), f)
        if len(values) == 1:  # any draw picks it
            return next(iter(values.values()))
        ranked = [values[k] for k in sorted(values)]
        return ranked[stable_int(*salt, arg.name) % len(ranked)]

    # -- select ---------------------------------------------------------------------------------

    def select(self, ctx: Context, candidates: list[tuple[int, list[Step]]]) -> Selection:
        existing = {(s.tool, stable_hash(s.arguments)) for _, _, s in ctx.workflow.steps()}
        used = {s.tool for _, _, s in ctx.workflow.steps()}
        n = len(ctx.workflow.chains)
        scored: list[tuple[float, int, list[Step], str]] = []
        for proposal, steps in candidates:
            new_tools = len({s.tool for s in steps} - used)
            feeds_old = sum(1 for s in steps for src in s.sources.values() if src.chain < n)
            feeds_new = sum(1 for s in steps for src in s.sources.values() if src.chain >= n)
            writes = sum(1 for s in steps if (i := self.info(s.tool)) is not None and i.writes)
            repeats = sum(1 for s in steps if (s.tool, stable_hash(s.arguments)) in existing)
            score = (
                3 * new_tools + 2.5 * feeds_old + 1.5 * feeds_new + writes + 0.5 * len(steps) - 5 * repeats
            )
            why = (
                f"{new_tools} new tool(s), {feeds_old} argument(s) fed from earlier outputs, "
                f"{feeds_new} fed within the proposal, {writes} write(s), {len(steps)} call(s)"
            )
            if repeats:
                why += f", {repeats} repeated call(s)"
            scored.append((score, proposal, steps, why))
        scored.sort(key=lambda x: (-x[0], x[1]))
        score, proposal, steps, why = scored[0]
        if score <= 0:
            return Selection(
                proposal=None,
                action="reject",
                rationale=f"Every candidate only repeats the workflow (best: proposal {proposal}: {why}).",
            )
        rationale = f"Proposal {proposal} extends the workflow most: {why} (score {score:g})."
        others = "; ".join(f"proposal {p}: {w} (score {s:g})" for s, p, _, w in scored[1:])
        if others:
            rationale += f" Others: {others}."
        fed_from = sorted({src.chain for s in steps for src in s.sources.values() if src.chain < n})
        if fed_from:
            rationale += f" It consumes the output of chain {fed_from[-1]}, so it extends that chain."
            return Selection(proposal=proposal, action="extend", chain=fed_from[-1], rationale=rationale)
        rationale += " It needs nothing from the existing chains, so it starts a new one."
        return Selection(proposal=proposal, action="new", rationale=rationale)

    # -- update ---------------------------------------------------------------------------------

    def update(self, ctx: Context, selection: Selection, workflow: Workflow) -> tuple[str, str]:
        return query_and_answer(workflow, self.info, toolbox_terms(self.toolbox), self._worded)


def _tiers(arg: ArgSpec, facts: Facts) -> Iterator[list[Fact]]:
    """The facts ``arg`` may take, best first, each tier looked up only when asked for: for a
    reference, its record's id (or a value given under its name), then a value given as that
    record's; then a value under the same parent + key, one at record level under its key, any
    under its key."""
    if arg.refers_to:
        yield facts.record_ids(arg.refers_to, arg.id_field, arg.norm)
        yield [f for f in facts.with_norm(arg.norm) if f.record == "args" and f.record_of == arg.refers_to]
    yield facts.with_parent(arg.norm)
    by_norm = facts.with_norm(arg.norm)
    yield [f for f in by_norm if f.record_of]
    yield by_norm
