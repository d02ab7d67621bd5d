"""What the offline generator works out once, or leaves out, gives what working everything out
directly gives (issue 14, another round: the same bytes, less work per sample)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from simulator.datagen.generate import compile_schema
from simulator.spec.navigation import deref, primary_type
from toolgrad.loop import stages
from toolgrad.loop.policy import Context, named_apis, query_problem
from toolgrad.loop.sample import BatchDraw, GeneratorConfig, draw_batch, run_sample
from toolgrad.policies.offline import values as offline_values
from toolgrad.policies.offline.catalog import ArgSpec, ToolInfo
from toolgrad.policies.offline.facts import Fact, Facts, step_facts
from toolgrad.policies.offline.plans import Candidate, PlanIndex, grow
from toolgrad.policies.offline.policy import OfflinePolicy
from toolgrad.records import Proposal
from toolgrad.sampling import (
    rank_digests,
    stable_hash,
    stable_hashes,
    stable_int,
    stable_ranks,
    stable_sample,
)
from toolgrad.toolbox import Toolbox


def _reference_minimal(schema: dict[str, Any], salt: tuple[Any, ...], name: str | None) -> Any:
    """minimal() as it was: the whole value generated, then pruned (the whole value when the
    pruned one does not validate)."""
    value = offline_values.generate(schema, salt, name)
    if not isinstance(value, (dict, list)):
        return value
    pruned = offline_values._prune(schema, schema, value)
    return pruned if compile_schema(schema).is_valid(pruned) else value


def _body_schemas(envs: list[str]) -> list[dict[str, Any]]:
    box = Toolbox.in_process(envs)
    policy = OfflinePolicy(box)
    infos = [i for n in box.names() if (i := policy.info(n)) is not None]
    schemas = [i.body_schema for i in infos if i.body_schema is not None]
    schemas += [a.schema for i in infos for a in i.args]
    return schemas


@pytest.mark.parametrize("envs", [["crm"], ["adafruit", "petstore", "baskets"]])
def test_a_minimal_value_leaves_out_only_what_pruning_drops(envs: list[str]) -> None:
    schemas = _body_schemas(envs)
    bodies = [s for s in schemas if offline_values._compiled(s)[1]]
    assert len(bodies) >= 5  # request bodies with optional properties: what is left out
    for k, schema in enumerate(schemas):
        for salt in [(k, "body"), (k, 3, ["a", "b"], 1)]:
            assert offline_values.minimal(schema, salt, "body") == _reference_minimal(schema, salt, "body")


def test_a_minimal_value_that_does_not_validate_pruned_is_the_whole_value() -> None:
    # "a" is required, but its pruned value ({}) breaks its minProperties: the whole value is
    # the answer, with the optional properties the walk left out the first time
    schema = {"type": "object", "required": ["a"], "properties": {
        "a": {"type": "object", "minProperties": 1, "properties": {"x": {"type": "integer"}, "y": {"type": "string"}}},
        "b": {"type": "string"}, "c": {"type": "integer"}}}
    assert offline_values._compiled(schema)[1] == ("b", "c")
    for k in range(20):
        value = offline_values.minimal(schema, (k,), None)
        assert value == _reference_minimal(schema, (k,), None)
        assert value["a"] and compile_schema(schema).is_valid(value)


@pytest.mark.parametrize("names", [
    ["b", "a", "c", "d"],
    ["same", "same", "other", "same"],  # repeated names: the general way, ties by key then position
    [f"env__op{i}" for i in range(131)] + ["caf\u00e9__t\u00e9l\u00e9phone"],
    [],
])
def test_a_batch_drawn_from_encoded_names_is_the_stable_sample(names: list[str]) -> None:
    draw = BatchDraw(names)
    for seed, iteration, size in [(0, 0, 50), (3, 9, 2), (11, 2, 1000), (5, 1, 0), (2**70, 1, 3), (-4, 0, 7)]:
        expected = stable_sample(sorted(names), size, "batch", seed, iteration)
        assert draw(size, seed, iteration) == draw_batch(names, size, seed, iteration) == expected


def test_rank_digests_are_the_stable_ranks() -> None:
    keys = ["a", "b", "caf\u00e9", "", "a"]
    digests = rank_digests([k.encode() for k in keys], "parts", 7, [1, "x"])
    assert [d.hex() for d in digests] == [stable_ranks(keys, "parts", 7, [1, "x"])[k] for k in keys]


@pytest.mark.parametrize("parts", [(), (0,), (3, 9, ["env__a", "env__b"], 1), (2**70, "x"), ("\udcff", 1),
                                   ({"b": 1, "a": [2.5, None, True]},)])
def test_hashes_with_the_parts_written_once_are_the_stable_hashes(parts: tuple[Any, ...]) -> None:
    lasts = ["name", "caf\u00e9", "", 7, 2**70, "\udcff", {"z": 1, "a": 2}, [1, 2], None]
    assert stable_hashes(parts, lasts) == [stable_hash(*parts, last) for last in lasts]
    assert stable_hashes(parts, []) == []


@pytest.mark.parametrize("envs", [["crm", "petstore"], ["adafruit", "baskets", "museum"]])
def test_what_a_tool_info_works_out_once_is_what_its_args_give(envs: list[str]) -> None:
    box = Toolbox.in_process(envs)
    policy = OfflinePolicy(box)
    infos = [i for n in box.names() if (i := policy.info(n)) is not None]
    assert any(i.body_changes for i in infos)
    for info in infos:
        for name in [*(a.name for a in info.args), "no-such-argument"]:
            assert info.arg(name) is next((a for a in info.args if a.name == name), None)
        assert info.fill_order == tuple(sorted(info.args, key=lambda a: (a is not info.address,
                                                                         a.refers_to is None, a.name)))
        for keys in [set(), {"field:id"}, set(info.feed_keys), {k for a in info.args[:1] for k in a.keys}]:
            assert info.fed_by(keys) == sum(1 for a in info.args if a.keys and not keys.isdisjoint(a.keys))
        own_id = info.resource.id_field if info.resource and info.kind == "create" else None
        assert list(info.body_changes) == [
            a for a in info.args if a.location == "body-field" and a.name != own_id
            and not deref(a.schema, a.schema).get("readOnly")
            and primary_type(a.schema, deref(a.schema, a.schema)) not in ("object", "array")]


def _executed_steps(envs: list[str], seed: int) -> tuple[OfflinePolicy, list[Any]]:
    """A fresh policy over ``envs``, and every step one sample's executions made, in order."""
    box = Toolbox.in_process(envs)
    outcome = run_sample(box, OfflinePolicy(box), seed, GeneratorConfig(iterations=8))
    return OfflinePolicy(box), [s for it in outcome.trace.iterations for e in it.executions for s in e.steps]


def _reference_match(arg: ArgSpec, facts: Facts, anchor: tuple[int, str] | None, salt: tuple[Any, ...]) -> Fact | None:
    """OfflinePolicy._match as it was: every tier looked up and filtered, then decided."""
    tiers: list[list[Fact]] = []
    if arg.refers_to:
        tiers.append([f for f in facts.of_record(arg.refers_to)
                      if f.key == arg.id_field or (f.record == "args" and f.norm == arg.norm)])
        tiers.append([f for f in facts.with_norm(arg.norm) if f.record == "args" and f.record_of == arg.refers_to])
    tiers.append(facts.with_parent(arg.norm))
    tiers.append([f for f in facts.with_norm(arg.norm) if f.record_of])
    tiers.append(facts.with_norm(arg.norm))
    fit = offline_values._fitter(arg.schema)
    pools = [pool for candidates in tiers if (pool := [
        f for f in candidates
        if fit(f.value) and not (arg.refers_to and (arg.refers_to, str(f.value)) in facts.deleted)])]
    if not pools:
        return None
    in_anchor = ([f for f in p if anchor is not None and (f.order, f.record) == anchor] for p in pools)
    pool = next((hits for hits in in_anchor if hits), [])
    if not pool:
        latest = max(f.order for f in pools[0])
        pool = [f for f in pools[0] if f.order == latest]
    values: dict[str, Fact] = {}
    for f in pool:
        values.setdefault(stable_hash(f.value), f)
    ranked = [values[k] for k in sorted(values)]
    return ranked[stable_int(*salt, arg.name) % len(ranked)]


@pytest.mark.parametrize(("envs", "seed"), [(["petstore", "crm"], 4), (["adafruit", "baskets"], 9)])
def test_a_matched_fact_is_the_one_every_tier_looked_up_gives(envs: list[str], seed: int) -> None:
    policy, steps = _executed_steps(envs, seed)
    assert len(steps) > 6
    args = [a for n in policy.toolbox.names() if (i := policy.info(n)) is not None for a in i.args if a.feedable]
    facts = Facts()
    matched = 0
    for order, step in enumerate(steps):
        info = policy.info(step.tool)
        facts.add(step_facts(step, info, order, (0, order) if order % 2 else None, None if order % 2 else order))
        if order % 3 == 2 and info is not None and info.resource is not None:  # a record deleted now and then
            facts.deleted |= {(info.resource.name, str(f.value)) for f in facts.of_record(info.resource.name)[:2]}
        anchors = [None, *{(f.order, f.record) for f in facts.with_norm("id")[-4:]}]
        for arg in args:
            if arg.refers_to:
                assert facts.record_ids(arg.refers_to, arg.id_field, arg.norm) == [
                    f for f in facts.of_record(arg.refers_to)
                    if f.key == arg.id_field or (f.record == "args" and f.norm == arg.norm)]
            for anchor in anchors:
                salt = (seed, order, [arg.name], 0)
                found = OfflinePolicy._match(arg, facts, anchor, salt)
                assert found == _reference_match(arg, facts, anchor, salt)
                matched += found is not None
    assert matched > 20


class _EveryTool(PlanIndex):
    """The batch scanned whole for every step of every plan, as the proposer did before its index."""

    def __init__(self, candidates: list[Candidate]) -> None:
        super().__init__(candidates)
        self.every = {id(c): c for c in candidates}

    def consumers(self, produced: frozenset[str], in_plan: frozenset[str]) -> dict[int, Candidate]:
        return self.every


class _CheckedPlans(OfflinePolicy):
    """Proposes as the policy does, and checks each proposal round against the scan of every
    tool and a sort of every plan."""

    rounds = 0

    def propose(self, ctx: Context) -> list[Proposal]:
        proposals = super().propose(ctx)
        room = min(self.target(ctx.seed) - len(ctx.workflow.steps()), ctx.max_agent_steps, 3)
        keys0 = frozenset(self.facts.of_workflow(ctx.workflow).keys())
        used = {s.tool for _, _, s in ctx.workflow.steps()}
        infos = [i for i in (self.info(b.name) for b in ctx.batch) if i is not None]
        rank = stable_ranks([i.name for i in infos], ctx.seed, ctx.iteration)
        candidates = [Candidate(i, f"record:{i.resource.name}" if i.resource is not None else None,
                                i.resource is not None and i.address is not None,
                                self._score(i, keys0, frozenset(), used), rank[i.name]) for i in infos]
        scan = _EveryTool(candidates)
        plans = [grow(c, scan, keys0, room) for c in candidates if c.info.callable_with(keys0)]
        ordered = sorted(plans, key=lambda p: (-p[0], stable_hash(ctx.seed, ctx.iteration, [t.name for t in p[1]])))
        chosen: list[list[ToolInfo]] = []
        for _, tools in ordered:
            if all(tools[0] is not c[0] for c in chosen) and len(chosen) < ctx.k:
                chosen.append(tools)
        assert [p.tools for p in proposals] == [[t.name for t in tools] for tools in chosen]
        type(self).rounds += 1
        return proposals


@pytest.mark.parametrize(("envs", "target"), [(["petstore", "crm"], None), (["adafruit", "baskets"], 6),
                                               (["museum", "links", "tictactoe", "uspto"], 5)])
def test_the_plans_proposed_are_those_a_scan_of_every_tool_finds(envs: list[str], target: int | None) -> None:
    box = Toolbox.in_process(envs)
    _CheckedPlans.rounds = 0
    for seed in range(6):
        run_sample(box, _CheckedPlans(box, target_calls=target), seed, GeneratorConfig(iterations=8, proposals=4))
    assert _CheckedPlans.rounds >= 12


def _direct(steps: list[Any], kind: str, key: str) -> list[Fact]:
    """A look-up as the facts of each step, in order, give it (no memo, no original asked)."""
    found: list[Fact] = []
    for step in steps:
        found += step.with_norm(key) if kind == "norm" else step.of_record(key) if kind == "record" else \
            step.with_parent(key)
    return found


def test_copies_of_facts_share_the_look_ups_of_their_original_and_see_only_their_own_steps() -> None:
    policy, steps = _executed_steps(["petstore", "crm"], 6)
    made = [step_facts(step, policy.info(step.tool), order, None, order) for order, step in enumerate(steps)]
    assert len(made) > 8
    asked = [(kind, key) for key in sorted({n for m in made for n in m.norms()})[:10] for kind in ("norm", "parent")]
    asked += [("record", r) for r in sorted({r for m in made for r in m.records()})]
    origin = Facts()
    for step in made[:4]:
        origin.add(step)
    first, second = origin.copy(), origin.copy()
    for step in made[4:6]:
        first.add(step)
    second.add(made[7])
    nested = first.copy()  # a copy of a copy
    nested.add(made[8])

    def check(facts: Facts, steps: list[Any]) -> None:
        for kind, key in asked:
            lookup = {"norm": facts.with_norm, "parent": facts.with_parent, "record": facts.of_record}[kind]
            assert lookup(key) == _direct(steps, kind, key)

    for _ in range(2):  # the second time from what the first kept
        check(first, made[:6])
        check(second, [*made[:4], made[7]])
        check(nested, [*made[:6], made[8]])
        check(origin, made[:4])
    origin.add(made[6])  # the original grows after the copies: they no longer ask it
    third = second.copy()
    check(origin, [*made[:4], made[6]])
    check(first, made[:6])
    check(second, [*made[:4], made[7]])
    check(third, [*made[:4], made[7]])


def _reference_named_apis(text: str, names: list[str]) -> list[str]:
    """named_apis as it was: every name searched for in the whole text."""
    lowered = re.sub(r"[_\-.]+", "_", text.lower())
    hits = []
    for name in names:
        n = re.sub(r"[_\-.]+", "_", name.lower())
        start = lowered.find(n)
        while start != -1:
            before = lowered[start - 1] if start else " "
            after = lowered[start + len(n)] if start + len(n) < len(lowered) else " "
            if not before.isalnum() and not after.isalnum():
                hits.append(name)
                break
            start = lowered.find(n, start + 1)
    return hits


def test_the_api_names_a_text_names_are_those_a_search_of_the_whole_text_finds() -> None:
    names = ["petstore__getPetById", "getPetById", "crm__contacts-all", "contacts-all", "_hidden_op", "--x",
             "tictactoe__get-board", "caf\u00e9_t\u00e9l\u00e9phone", "2fa_enable", "v2.list"]
    texts = [
        "Call getPetById then crm.contacts.all", "use contacts_all, not xcontacts_all or contacts_allx",
        "tictactoe_get-board.json", "the _hidden_op and __hidden_op", "x --x x", "CAF\u00c9-T\u00c9L\u00c9PHONE!",
        "\u00e9caf\u00e9_t\u00e9l\u00e9phone", "2fa_enable2fa_enable 2FA-enable", "v2_list.", "", "getpetbyid_",
        "a getPetByIdentity", "\u0130stanbul getPetById\u0131",
    ]
    box = Toolbox.in_process(["petstore", "crm", "tictactoe"])
    outcome = run_sample(box, OfflinePolicy(box), 3, GeneratorConfig(iterations=6))
    texts += [it.query for it in outcome.trace.iterations if it.query]
    names += [n for bound in box.tools.values() for n in (bound.name, bound.tool.operation_id)]
    texts += [f"first {n} then" for n in names]
    for text in texts:
        assert named_apis(text, names) == _reference_named_apis(text, names)


def _reference_update(stage: Any, chosen: Any) -> Any:
    """stages._update as it was: the chosen steps placed again, whatever chain they go to."""
    record, ctx, workflow = stage.record, stage.ctx, stage.ctx.workflow
    steps = stages._place(workflow, stage.toolbox, chosen.log, chosen.declared, chosen.chain, stage.finder)
    candidate = stages._with_steps(workflow, chosen.chain, steps)
    query, answer = stage.policy.update(ctx, chosen.selection, candidate)
    problem = query_problem(query, answer, stage.forbidden) or ctx.check_text(candidate, query, answer)
    record.query, record.answer = query, answer
    if problem:
        stages._fail(record, "update", problem)
        return workflow
    candidate.query, candidate.answer = query, answer
    stage.toolbox.fork(f"{stage.session}/it{ctx.iteration}/p{chosen.selection.proposal}", stage.session)
    return candidate


@pytest.mark.parametrize(("envs", "seeds"), [(["petstore", "crm"], range(5)), (["adafruit", "baskets"], range(5, 9))])
def test_a_new_chain_takes_its_execution_s_steps_as_placing_them_again_gives(
        envs: list[str], seeds: range, monkeypatch: pytest.MonkeyPatch) -> None:
    box = Toolbox.in_process(envs)
    config = GeneratorConfig(iterations=8)
    kept = [run_sample(box, OfflinePolicy(box), seed, config) for seed in seeds]
    monkeypatch.setattr(stages, "_update", _reference_update)
    placed = [run_sample(box, OfflinePolicy(box), seed, config) for seed in seeds]
    assert sum(1 for o in kept for it in o.trace.iterations if it.selection and it.selection.action == "new") >= 5
    for a, b in zip(kept, placed, strict=True):
        assert a.trace == b.trace and a.workflow == b.workflow
