"""What generation keeps instead of working out again gives what working it out again gives:
the offline policy's facts per workflow and per response, the inlined scalar index of a
response, and the writer's commits (issue 14: the same bytes, faster)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from simulator.canonical import escape_token
from simulator.datagen.generate import generate_value
from simulator.spec.navigation import deref, primary_type
from toolgrad.dataset.lines import build_record, encode_sample, record_lines
from toolgrad.loop.policy import forbidden_names
from toolgrad.loop.sample import GeneratorConfig, api_names, draw_batch, run_sample
from toolgrad.loop.sources import _MAX_WALK, ScalarIndex, _lookup_keys
from toolgrad.policies.offline import values as offline_values
from toolgrad.policies.offline.facts import (
    Fact,
    Facts,
    SampleFacts,
    _record_roots,
    facts_of,
    step_facts,
    walk_response,
)
from toolgrad.policies.offline.policy import OfflinePolicy
from toolgrad.policies.offline.text import norm
from toolgrad.records import Provenance, Step
from toolgrad.sampling import stable_hash, stable_ranks, stable_sample, stable_shuffle
from toolgrad.toolbox import Toolbox


def _walk(node: Any, budget: int) -> Iterator[tuple[str, int, str, Any]]:
    """(pointer, depth, last key, scalar) for every scalar, breadth-first per level: the generic
    walk the scalar index once used, kept as its reference."""
    queue: list[tuple[str, int, str, Any]] = [("", 0, "", node)]
    while queue and budget > 0:
        nxt: list[tuple[str, int, str, Any]] = []
        for ptr, d, key, value in queue:
            budget -= 1
            if isinstance(value, dict):
                nxt.extend((f"{ptr}/{escape_token(str(k))}", d + 1, str(k), v) for k, v in value.items())
            elif isinstance(value, list):
                nxt.extend((f"{ptr}/{i}", d + 1, key, v) for i, v in enumerate(value))
            else:
                yield ptr, d, key, value
        queue = nxt


def _reference_hits(body: Any) -> dict[tuple[str, Any], list[tuple[str, int, str, int, Any]]]:
    """The index as the generic walk builds it (what ScalarIndex inlines)."""
    hits: dict[tuple[str, Any], list[tuple[str, int, str, int, Any]]] = {}
    for order, (ptr, depth, key, scalar) in enumerate(_walk(body, _MAX_WALK)):
        for lookup in _lookup_keys(scalar)[:1]:
            hits.setdefault(lookup, []).append((ptr, depth, key, order, scalar))
    return hits


@pytest.mark.parametrize("body", [
    None, "text", 7, 2.5, True, [],
    # keys that need escaping, None and booleans (counted in document order, never indexed),
    # numeric strings, ints and floats, lists inside lists
    {"a/b": {"c~d": 5, "id": "12", "flag": False, "none": None}, "items": [[1, "x"], {"id": 7.0}]},
    [{"id": i, "tags": ["t", i]} for i in range(5)],
])
def test_the_scalar_index_is_the_generic_walk(body: Any) -> None:
    assert ScalarIndex(body).hits == _reference_hits(body)


def test_the_scalar_index_stops_where_the_walk_does_on_a_large_body() -> None:
    # the level of the inner lists alone holds 24,000 nodes: past the walk's budget of 20,000,
    # so their items (the level below) are never reached, while the ids above them are
    body = [{"id": i, "values": [[f"v{j}"] for j in range(30)]} for i in range(800)]
    index = ScalarIndex(body)
    assert index.hits == _reference_hits(body)
    assert ("n", 799.0) in index.hits and ("s", "v29") not in index.hits


def _reference_walk(response: Any, res: Any) -> list[tuple[Any, ...]]:
    """The walk of a response as one recursive call per node (what walk_response inlines)."""
    roots = _record_roots(response, res) if res else set()
    found: list[tuple[Any, ...]] = []
    budget = [4000]

    def walk(node: Any, ptr: str, key: str, parent: str, record: str, depth: int) -> None:
        if budget[0] <= 0 or depth > 5:
            return
        budget[0] -= 1
        if isinstance(node, dict):
            rec = ptr if ptr in roots else record
            for k, v in node.items():
                walk(v, f"{ptr}/{escape_token(str(k))}", str(k), key, rec, depth + 1)
        elif isinstance(node, list):
            for i, v in enumerate(node[:25]):
                walk(v, f"{ptr}/{i}", key, parent, record, depth + 1)
        elif node is not None and not isinstance(node, bool):
            at_record = res is not None and record != "-" and ptr == f"{record}/{escape_token(key)}"
            found.append((node, key, norm(key), norm(parent + key) if parent else "", ptr,
                          res.name if at_record else None, record))

    walk(response, "", "", "", "-", 0)
    return found


def _bodies() -> list[Any]:
    deep: Any = {"id": 1}
    for level in range(8):
        deep = {"id": level, "name": f"n{level}", "inner": deep, "items": [deep, 3, None]}
    return [
        None, 4, "text", True, [], {}, [1, "a", None, False, 2.5],
        {"data": [{"id": i, "name": f"p{i}", "tags": [{"id": 9, "name": "t"}], "a/b": {"c~d": i}}
                  for i in range(40)], "meta": {"total": 40, "page": 1}},
        {"id": 7, "pet": {"id": 8, "name": "x"}, "result": [{"id": 1}], "item": {"k": "v"}},
        deep,
        [{"id": i, "values": [[f"v{j}", j] for j in range(30)]} for i in range(200)],  # past the budget
    ]


@pytest.mark.parametrize("env", ["petstore", "crm", "adafruit"])
def test_the_inlined_walk_is_the_recursive_one(env: str) -> None:
    box = Toolbox.in_process([env])
    policy = OfflinePolicy(box)
    resources = [None, *{i.resource.name: i.resource for n in box.names()
                         if (i := policy.info(n)) is not None and i.resource}.values()]
    outcome = run_sample(box, OfflinePolicy(box), 2, GeneratorConfig(iterations=6))
    responses = [s.response for it in outcome.trace.iterations for e in it.executions for s in e.steps]
    assert len(responses) > 3
    for body in [*_bodies(), *responses]:
        for res in resources:
            assert walk_response(body, res).protos == _reference_walk(body, res)


def _reference_index(steps: list[list[Fact]], deleted: set[tuple[str, str]]) -> tuple[dict[str, Any], set[str]]:
    """The facts indexed one by one, as the policy indexed them before they were grouped per step."""
    by: dict[str, dict[str, list[Fact]]] = {"norm": {}, "parent": {}, "record": {}}
    for facts in steps:
        for f in facts:
            by["norm"].setdefault(f.norm, []).append(f)
            if f.parent_norm:
                by["parent"].setdefault(f.parent_norm, []).append(f)
            if f.record_of:
                by["record"].setdefault(f.record_of, []).append(f)
    keys = {f"field:{k}" for k in by["norm"]} | {f"field:{k}" for k in by["parent"]}
    keys |= {f"record:{res}" for res, fs in by["record"].items() if any((res, str(f.value)) not in deleted for f in fs)}
    return by, keys


def test_facts_grouped_per_step_look_up_what_facts_indexed_one_by_one() -> None:
    box = Toolbox.in_process(["petstore", "crm"])
    outcome = run_sample(box, OfflinePolicy(box), 4, GeneratorConfig(iterations=8))
    policy = OfflinePolicy(box)
    steps = [(s, policy.info(s.tool)) for _, _, s in outcome.workflow.steps()]
    steps += [(step, policy.info(step.tool)) for it in outcome.trace.iterations for e in it.executions
              for step in e.steps]
    assert len(steps) > 8
    facts, flat = Facts(), []
    for order, (step, info) in enumerate(steps):
        place = (order, 0) if order % 2 else None
        walk = walk_response(step.response, info.resource if info else None)
        grouped = step_facts(step, info, order, place, None if place else order, walk=walk)
        assert grouped.all() == facts_of(step, info, order, place, None if place else order)
        facts.add(grouped)
        flat.append(grouped.all())
    by, keys = _reference_index(flat, facts.deleted)
    assert facts.keys() == keys and by["record"]
    # every value of one resource's records deleted: that resource is no longer a planning key
    res, gone = next(iter(by["record"].items()))
    facts.deleted |= {(res, str(f.value)) for f in gone}
    by, keys = _reference_index(flat, facts.deleted)
    assert facts.keys() == keys and f"record:{res}" not in keys
    for norm_key, expected in by["norm"].items():
        assert facts.with_norm(norm_key) == expected
    for parent, expected in by["parent"].items():
        assert facts.with_parent(parent) == expected
    for res, expected in by["record"].items():
        assert facts.of_record(res) == expected
    assert facts.with_norm("no-such-key") == [] and facts.of_record("no-such-resource") == []


def test_a_copy_of_facts_is_independent() -> None:
    box = Toolbox.in_process(["petstore"])
    policy = OfflinePolicy(box)
    name = next(n for n in box.names() if policy.info(n) is not None)
    step = Step(env="petstore", tool=name, operation_id=name, arguments={}, status=200,
                response={"id": 9, "name": "rex"}, state_hash="h")
    facts = Facts()
    facts.add(step_facts(step, policy.info(name), 0, (0, 0)))
    before = (facts.with_norm("id"), facts.keys())
    other = facts.copy()
    other.add(step_facts(step, policy.info(name), 1, None, 0))
    other.deleted.add(("pet", "9"))
    assert (facts.with_norm("id"), facts.keys()) == before and not facts.deleted
    assert len(other.with_norm("id")) == 2 * len(facts.with_norm("id")) == 2


class _Forgetful(SampleFacts):
    """Every fact worked out again each time it is needed."""

    def of_workflow(self, workflow: Any) -> Facts:
        self._workflow = None
        self._steps.clear()
        self._walks.clear()
        return super().of_workflow(workflow)

    def walk(self, response: Any, info: Any) -> Any:
        return walk_response(response, info.resource if info else None)


class _Unwritten(dict):  # type: ignore[type-arg]
    def __setitem__(self, key: Any, value: Any) -> None:
        pass


@pytest.mark.parametrize(("envs", "seed"), [(["petstore"], 3), (["adafruit", "crm"], 8), (["baskets"], 21)])
def test_kept_facts_and_wording_give_the_same_sample_as_fresh_ones(envs: list[str], seed: int) -> None:
    box = Toolbox.in_process(envs)
    config = GeneratorConfig(iterations=6)
    kept = run_sample(box, OfflinePolicy(box), seed, config)
    forgetful = OfflinePolicy(box)
    forgetful.facts = _Forgetful(forgetful.info)
    forgetful._worded = _Unwritten()  # every step worded again at every update
    fresh = run_sample(box, forgetful, seed, config)
    assert kept.ok and kept.calls() >= 2
    assert sum(1 for it in kept.trace.iterations if it.query) >= 2  # several updates worded the steps
    assert kept.trace == fresh.trace
    assert kept.workflow == fresh.workflow


def test_a_dataset_line_is_the_encoded_validated_record() -> None:
    """record_lines writes the dumped record itself; reading it back as a Sample and encoding
    that (what the line must equal) gives the same bytes."""
    box = Toolbox.in_process(["petstore", "museum"])
    provenance = Provenance(environments=box.fingerprints(), generator={"environments": ["museum", "petstore"]},
                            llm="offline")
    written = 0
    for seed in (0, 1, 2):
        outcome = run_sample(box, OfflinePolicy(box), seed, GeneratorConfig(iterations=5))
        if not outcome.ok:
            continue
        trace_line, data_line = record_lines(outcome, provenance)
        sample, expected_trace = build_record(outcome, provenance)
        assert (trace_line, data_line) == (expected_trace, encode_sample(sample))
        written += 1
    assert written >= 2


@pytest.mark.parametrize("items", [[], ["a"], ["b", "a", "b", "c", "a"], [3, "3", 1, 2, 2, 10]])
def test_a_stable_shuffle_sorts_by_rank_then_key_then_position(items: list[Any]) -> None:
    keys = [str(item) for item in items]
    ranks = stable_ranks(keys, "parts", 7)
    expected = [items[i] for i in sorted(range(len(items)), key=lambda i: (ranks[keys[i]], keys[i]))]
    assert stable_shuffle(items, "parts", 7) == expected


@pytest.mark.parametrize("value", ["abc", "12", "-3", "", 0, 1, 7, -2, 1.0, 2.5, 10**20, True, False])
def test_a_scalar_hash_is_the_stable_hash_of_the_value(value: Any) -> None:
    # 1, 1.0 and True are equal in Python but not in JSON: the cache must keep them apart
    assert offline_values.scalar_hash(value) == stable_hash(value)
    assert offline_values.scalar_hash(value) == stable_hash(value)  # again, from the cache


@pytest.mark.parametrize("schema", [
    {"type": "integer"}, {"type": "number"}, {"type": "string"}, {"type": "boolean"}, {"type": "object"},
    {"enum": ["a", "b", 3]}, {"type": "string", "enum": ["x", "12"]}, {}, {"type": ["null", "integer"]},
    {"$ref": "#/$defs/id", "$defs": {"id": {"type": "integer"}}},
])
def test_a_fitter_answers_what_fits_answers(schema: dict[str, Any]) -> None:
    def reference(value: Any) -> bool:  # fits() as it was, reading the schema per value
        node = deref(schema, schema)
        enum = node.get("enum")
        if isinstance(enum, list) and value not in enum and str(value) not in [str(e) for e in enum]:
            return False
        kind = primary_type(schema, node) or "string"
        if kind == "integer":
            return (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and value.lstrip("-").isdigit())
        if kind == "number":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "string":
            return isinstance(value, (str, int)) and not isinstance(value, bool)
        return kind not in ("object", "array", "boolean")

    fit = offline_values.fitter(schema)
    for value in ["a", "x", "12", "-4", "3", 3, 12, 2.5, True, "", 0]:
        assert fit(value) == reference(value) == offline_values.fits(value, schema)


def test_a_body_that_may_not_hold_a_value_has_no_pointer_to_it() -> None:
    """detect() skips a response whose index has none of a value's look-up keys: find() agrees."""
    body = {"data": [{"id": 12, "name": "rex", "ratio": 2.5, "code": "12"}], "count": 3}
    index = ScalarIndex(body)
    for value in [12, "12", 12.0, "rex", 2.5, "2.5", 3, "3", 99, "nobody", 7.5, True, None]:
        if not index.may_hold(value):
            assert index.find("id", value) is None
        else:
            assert value in (12, "12", 12.0, "rex", 2.5, 3, "3")  # what the body holds, loosely


def test_a_batch_is_the_stable_sample_of_the_sorted_names() -> None:
    box = Toolbox.in_process(["adafruit", "crm"])
    names = box.names()
    for seed, iteration, size in [(0, 0, 50), (3, 9, 8), (11, 2, 1000), (5, 1, 0)]:
        assert draw_batch(names, size, seed, iteration) == stable_sample(sorted(names), size, "batch", seed, iteration)


def test_api_names_are_worked_out_once_per_toolbox_and_equal_a_fresh_list() -> None:
    box = Toolbox.in_process(["petstore", "museum"])
    first = api_names(box)
    assert first == forbidden_names((b.name, b.tool.operation_id) for b in box.tools.values())
    assert api_names(box) is first  # kept
    other = Toolbox.in_process(["petstore"])
    assert api_names(other) != first  # another toolbox, its own tools


def test_a_generated_value_is_generate_value_of_the_same_schema_and_seed() -> None:
    """values.generate compiles a schema once per schema object, not per call by its JSON text."""
    box = Toolbox.in_process(["crm", "petstore"])
    policy = OfflinePolicy(box)
    schemas = [a.schema for n in box.names() if (i := policy.info(n)) is not None for a in i.args][:60]
    assert schemas
    for k, schema in enumerate(schemas):
        salt = (k, "arg")
        expected = generate_value(schema, stable_hash("offline", *salt), name="x")
        assert offline_values.generate(schema, salt, "x") == expected
        assert offline_values.generate(schema, salt, "x") == expected  # from the kept compiled schema
    assert offline_values.generate({"type": "integer", "minimum": 5, "maximum": 1}, (0,), None) is None


def test_looked_up_facts_grow_with_the_steps_added_after_and_copies_keep_theirs() -> None:
    box = Toolbox.in_process(["petstore", "crm"])
    outcome = run_sample(box, OfflinePolicy(box), 6, GeneratorConfig(iterations=8))
    policy = OfflinePolicy(box)
    made = [step_facts(step, policy.info(step.tool), order, None, order)
            for order, step in enumerate(s for it in outcome.trace.iterations for e in it.executions
                                         for s in e.steps)]
    assert len(made) > 6
    norms = sorted({n for m in made for n in m.norms()})[:12]
    facts, added = Facts(), []
    copies: list[tuple[Facts, int]] = []
    for k, grouped in enumerate(made):
        facts.add(grouped)
        added.append(grouped.all())
        by, _ = _reference_index(added, set())
        for n in norms:  # asked after every step: each entry extended by the new step only
            assert facts.with_norm(n) == by["norm"].get(n, [])
        if k % 3 == 0:
            copies.append((facts.copy(), k + 1))
    for copy, count in copies:  # a copy made earlier still sees only the steps it had
        by, _ = _reference_index(added[:count], set())
        for n in norms:
            assert copy.with_norm(n) == by["norm"].get(n, [])
