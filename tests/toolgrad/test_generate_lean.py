"""What the offline generator works out once, or leaves out, gives what working everything out
directly gives (issue 14, another round: the same bytes, less work per sample)."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.datagen.generate import compile_schema
from toolgrad.policies.offline import values as offline_values
from toolgrad.policies.offline.policy import OfflinePolicy
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
