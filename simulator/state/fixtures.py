"""The keys of a collection's fixture records, worked out without generating the records whole.

Creating a record asks whether its new id is taken, and a new integer id is the largest key plus
one: both need only the fixtures' keys. A fixture's key comes from its id field (and, through
validation, its parent fields), so :func:`fixture_key` has the generator skip every other
property (``Shaper.generate(elide=...)``, which skips only what changes no other byte) and
follows :meth:`World._make_record <simulator.state.store.World._make_record>` step by step on
what is left. Where the record would not come through ``conform`` unchanged (it would be
regenerated), or the skipped members matter (``writeOnly`` ones are dropped), it says None and
the caller makes the whole record; so a key is always the one the whole record has. A record
without an id field (baskets' response configurations, one per HTTP method) is keyed by its
id value alone: nothing of it is generated to tell its key.

With the keys, :meth:`World.record <simulator.state.store.World.record>` makes the one fixture a
read names, not its scope's others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.datagen.generate import ELIDED
from simulator.environments.resources import Resource
from simulator.spec.navigation import object_properties

if TYPE_CHECKING:
    from .store import World


def coerce_like(example: Any, value: str) -> Any:
    """A path value as the type of an example field value (``"12"`` -> 12 next to an int)."""
    if isinstance(example, bool):
        return value == "true"
    if isinstance(example, int):
        try:
            return int(value)
        except ValueError:
            return value
    if isinstance(example, float):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def id_key(value: Any) -> str:
    """The text a record is keyed by: the value as a path would carry it (``22562.0`` -> ``22562``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def fixture_key(world: World, res: Resource, scope: tuple[str, ...], seed: str, id_value: Any | None) -> str | None:
    """The key ``world._make_record(res, scope, seed, id_value)`` gives its record, from the
    record's id and parent fields only; None when that cannot be told without the whole record."""
    if res.id_field is None:  # the record holds no id: its key is the id value, or a new one
        return id_key(id_value if id_value is not None else world.new_id(res, seed))
    schema = res.schema
    if not schema or "$schema" in schema:  # the generator's validator must be the service's (2020-12)
        return None
    shaper = world.shaper
    props = object_properties(schema, schema)
    wanted = {res.id_field, *res.scope_params}
    elide = [name for name in props if name not in wanted]
    if not elide or shaper.has_hidden(schema, schema, False):
        return None
    record = shaper.generate(schema, schema, seed, name=res.store, elide=elide)
    if not isinstance(record, dict) or not any(value is ELIDED for value in record.values()):
        return None  # nothing was skipped: the whole record costs no more
    hint, id_value = world.fixture_hint(res, scope, record, seed, id_value)
    if not shaper.generated_valid(schema, schema, hint):
        return None  # conform would not keep the record as it is
    return world.key_of(res, hint, seed, id_value)
