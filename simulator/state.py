"""Session state: seeded fixtures shared by every session, plus each session's own changes.

The *world* is a pure, memoised function of the environment: for a collection (and, for a
nested collection, the values of its parent parameters) it yields the same fixture records
every time. A *session* only stores what its requests changed (the overlay), so reads never
change a session's state hash and a fresh session costs nothing.

The state hash is the sha256 of the canonical JSON of the overlay and the write counter.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

import orjson

from .resources import Resource
from .shaping import Shaper

Record = dict[str, Any]


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace: the bytes every hash in the kit is taken over."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def scope_key(values: tuple[str, ...]) -> str:
    return "/".join(quote(v, safe="") for v in values)


def id_key(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class World:
    """Seeded fixture records, generated on first use and memoised (deterministic)."""

    def __init__(self, seed: str, fixtures: int, shaper: Shaper) -> None:
        self.seed = seed
        self.fixtures = fixtures
        self.shaper = shaper
        self._base: dict[tuple[str, str], dict[str, Record]] = {}
        self._open: dict[tuple[str, str, str], Record] = {}

    def _make_record(self, res: Resource, scope: tuple[str, ...], seed: str, id_value: Any | None) -> tuple[str, Record]:
        schema = res.schema or {"type": "object"}
        record = self.shaper.generate(schema, schema, seed, name=res.name)
        if not isinstance(record, dict):
            record = {}
        hint = dict(record)
        for param, value in zip(res.scope_params, scope, strict=False):
            hint.setdefault(param, value)
            if param in record:
                hint[param] = coerce_like(record[param], value)
        if res.id_field and id_value is not None:
            hint[res.id_field] = id_value
        record = self.shaper.conform(schema, schema, hint, seed, name=res.name)
        if res.id_field and res.id_field in record:
            key_value = record[res.id_field]
        elif id_value is not None:
            key_value = id_value
        else:
            key_value = self.new_id(res, seed)
        return id_key(key_value), record

    def new_id(self, res: Resource, seed: str, taken: int = 0) -> Any:
        """A fresh id value of the resource's id type (the integer path is handled by callers)."""
        if res.id_type == "integer":
            return taken + 1
        id_schema = res.id_schema or {"type": "string"}
        if res.schema and res.id_field:
            from .schemas import object_properties

            prop = object_properties(res.schema, res.schema).get(res.id_field)
            if prop is not None:
                return self.shaper.generate(res.schema, prop, seed + "|id", name=res.id_field)
        return self.shaper.generate(id_schema, id_schema, seed + "|id", name=res.id_param or "id")

    def base(self, res: Resource, scope: tuple[str, ...]) -> dict[str, Record]:
        key = (res.name, scope_key(scope))
        hit = self._base.get(key)
        if hit is not None:
            return hit
        records: dict[str, Record] = {}
        for i in range(self.fixtures):
            seed = f"{self.seed}|fixture|{res.name}|{key[1]}|{i}"
            id_value: Any = i + 1 if res.id_type == "integer" else None
            for attempt in range(5):
                k, record = self._make_record(res, scope, f"{seed}|{attempt}", id_value)
                if k not in records:
                    records[k] = record
                    break
        self._base[key] = records
        return records

    def open_record(self, res: Resource, scope: tuple[str, ...], raw_id: Any) -> Record:
        """For read-only resources: the record any id resolves to."""
        key = (res.name, scope_key(scope), id_key(raw_id))
        hit = self._open.get(key)
        if hit is None:
            _, hit = self._make_record(res, scope, f"{self.seed}|open|{key[0]}|{key[1]}|{key[2]}", raw_id)
            self._open[key] = hit
        return hit


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


class Session:
    """One isolated state: the overlay of changes on top of the world."""

    __slots__ = ("_hash", "journal", "overlay", "writes")

    def __init__(self) -> None:
        # resource -> scope key -> id key -> record (None: deleted)
        self.overlay: dict[str, dict[str, dict[str, Record | None]]] = {}
        self.writes = 0
        self.journal: list[dict[str, Any]] = []
        self._hash: str | None = None

    def document(self) -> dict[str, Any]:
        return {"overlay": self.overlay, "writes": self.writes}

    def state_hash(self) -> str:
        if self._hash is None:
            self._hash = sha256_hex(canonical_json(self.document()))
        return self._hash

    def changed(self) -> None:
        self.writes += 1
        self._hash = None

    def clone(self) -> Session:
        other = Session()
        other.overlay = {r: {s: dict(m) for s, m in scopes.items()} for r, scopes in self.overlay.items()}
        other.writes = self.writes
        other._hash = self._hash
        return other

    def restore_from(self, snapshot: Session) -> None:
        copy = snapshot.clone()
        self.overlay, self.writes, self._hash = copy.overlay, copy.writes, copy._hash

    # -- the session's view of a collection ----------------------------------------------

    def records(self, world: World, res: Resource, scope: tuple[str, ...]) -> list[tuple[str, Record]]:
        base = world.base(res, scope)
        changes = self.overlay.get(res.name, {}).get(scope_key(scope), {})
        out: list[tuple[str, Record]] = []
        for key, record in base.items():
            if key in changes:
                changed = changes[key]
                if changed is not None:
                    out.append((key, changed))
            else:
                out.append((key, record))
        for key, changed in changes.items():
            if key not in base and changed is not None:
                out.append((key, changed))
        return out

    def get(self, world: World, res: Resource, scope: tuple[str, ...], key: str) -> Record | None:
        changes = self.overlay.get(res.name, {}).get(scope_key(scope), {})
        if key in changes:
            return changes[key]
        return world.base(res, scope).get(key)

    def put(self, res: Resource, scope: tuple[str, ...], key: str, record: Record | None) -> None:
        self.overlay.setdefault(res.name, {}).setdefault(scope_key(scope), {})[key] = record
        self.changed()

    def next_integer_id(self, world: World, res: Resource, scope: tuple[str, ...]) -> int:
        keys = list(world.base(res, scope)) + list(self.overlay.get(res.name, {}).get(scope_key(scope), {}))
        return max((int(k) for k in keys if k.lstrip("-").isdigit()), default=0) + 1
