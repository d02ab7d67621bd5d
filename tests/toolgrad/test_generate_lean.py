"""What the offline generator works out once, or leaves out, gives what working everything out
directly gives (issue 14, another round: the same bytes, less work per sample)."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.datagen.generate import compile_schema
from simulator.spec.navigation import deref, primary_type
from toolgrad.loop.sample import BatchDraw, draw_batch
from toolgrad.policies.offline import values as offline_values
from toolgrad.policies.offline.policy import OfflinePolicy
from toolgrad.sampling import rank_digests, stable_hash, stable_hashes, stable_ranks, stable_sample
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
        own_id = info.resource.id_field if info.resource and info.kind == "create" else None
        assert list(info.body_changes) == [
            a for a in info.args if a.location == "body-field" and a.name != own_id
            and not deref(a.schema, a.schema).get("readOnly")
            and primary_type(a.schema, deref(a.schema, a.schema)) not in ("object", "array")]
