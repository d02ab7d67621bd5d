"""Session state: seeded fixtures shared by every session, plus each session's own changes.

The *world* is a pure, memoised function of the environment: for a collection (and, for a
nested collection, the values of its parent parameters) it yields the same fixture records
every time. A *session* only stores what its requests changed (the overlay), so reads never
change a session's state hash and a fresh session costs nothing. A fixture whose record schema
admits no value the generator finds (a spec's own contradiction: powerdns 3.1's search results
put ``additionalProperties: false`` beside a ``oneOf`` of objects, so ``{}``, the one object it
allows, matches every branch) is not made: the collection has fewer fixtures, or none, rather
than failing every request that reads it.

The state hash is a canonical digest of the overlay and the write counter (see
:class:`Session`); reads never change it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

from simulator.canonical import canonical_json, sha256_hex
from simulator.datagen.plan import GenerationError
from simulator.environments.identity import field_named, spellings
from simulator.environments.resources import Resource
from simulator.errors import SessionFull
from simulator.spec.model import JSONSchema
from simulator.spec.navigation import object_properties

from .fixtures import coerce_like, fixture_key, id_key
from .journal import Journal
from .memo import BoundedMemo

Record = dict[str, Any]


class Shaper(Protocol):
    """What the world needs to make records that fit their schemas (the service's
    :class:`simulator.service.shaping.Shaper` is one): the state sits below the service, so it
    names the ability, not the class."""

    def generate(self, root: JSONSchema, schema: JSONSchema, seed: str, name: str | None = None, *,
                 elide: Iterable[str] = ()) -> Any: ...

    def generated_valid(self, root: JSONSchema, schema: JSONSchema, value: Any) -> bool: ...

    def has_hidden(self, root: JSONSchema, schema: JSONSchema, secrets: bool) -> bool: ...

    def conform(self, root: JSONSchema, schema: JSONSchema, hint: Any, seed: str, *, name: str | None = None) -> Any: ...

    def is_valid(self, root: JSONSchema, schema: JSONSchema, value: Any) -> bool: ...


class Fixtures(Protocol):
    """What a session reads of a scope's fixtures: :class:`World`, or none
    (:class:`simulator.state.scopes.NoFixtures`, under a parent the session created)."""

    def base(self, res: Resource, scope: tuple[str, ...]) -> dict[str, Record]: ...

    def keys(self, res: Resource, scope: tuple[str, ...]) -> Mapping[str, object]: ...

    def positions(self, res: Resource, scope: tuple[str, ...]) -> dict[str, int]: ...

    def record(self, res: Resource, scope: tuple[str, ...], key: str) -> Record | None: ...


_ID_ATTEMPTS = 20


def scope_key(values: tuple[str, ...]) -> str:
    return "/".join(quote(v, safe="") for v in values)


class World:
    """Seeded fixture records, generated on first use and memoised (deterministic)."""

    def __init__(self, seed: str, fixtures: int, shaper: Shaper, resources: Iterable[Resource]) -> None:
        self.seed = seed
        self.fixtures = fixtures
        self.shaper = shaper
        self._owners = store_owners(resources)
        # bounded: keyed by what clients send; pure, so a forgotten entry comes back the same
        self._base: dict[tuple[str, str], dict[str, Record]] = BoundedMemo()
        self._open: dict[tuple[str, str, str], Record] = BoundedMemo()
        self._positions: dict[tuple[str, str], dict[str, int]] = BoundedMemo()
        # (store, scope) -> fixture key -> (the seed, the id value) its record is made from
        self._keys: dict[tuple[str, str], dict[str, tuple[str, Any]]] = BoundedMemo()
        self._one: dict[tuple[str, str, str], Record] = BoundedMemo()  # records made one at a time
        self._documents: dict[tuple[str, str], Record] = BoundedMemo()  # a singleton's, per scope
        self._spelled: dict[str, dict[str, str]] = {}  # resource name -> its fields' spellings

    def _make_record(self, res: Resource, scope: tuple[str, ...], seed: str, id_value: Any | None) -> tuple[str, Record]:
        record, id_value = self._made(res, scope, seed, id_value)
        return self.key_of(res, record, seed, id_value), record

    def _made(self, res: Resource, scope: tuple[str, ...], seed: str, id_value: Any | None) -> tuple[Record, Any]:
        """(a record generated for ``seed`` with its parent fields and id set, the id value)."""
        schema = res.schema or {"type": "object"}
        record = self.shaper.generate(schema, schema, seed, name=res.store)
        if not isinstance(record, dict):
            record = {}
        hint, id_value = self.fixture_hint(res, scope, record, seed, id_value)
        return self.shaper.conform(schema, schema, hint, seed, name=res.store), id_value

    def fixture_hint(self, res: Resource, scope: tuple[str, ...], record: Record, seed: str,
                     id_value: Any | None) -> tuple[Record, Any | None]:
        """(the generated ``record`` with its parent fields and id set, the id value) for
        :meth:`_make_record` to conform (:mod:`.fixtures` asks it with the rest skipped)."""
        hint = dict(record)
        props = object_properties(res.schema, res.schema) if res.schema else {}
        for param, value in zip(res.scope_params, scope, strict=False):
            # a record names its parent: /users/{username}/repos -> username field (twilio's
            # {AccountSid} -> account_sid)
            field = field_named(props, self.spellings(res), param)
            if field is not None:
                hint[field] = coerce_like(record.get(field), value)
        if res.id_field in props and id_value is None and (
                res.id_field not in hint or not self.addressable(res, hint[res.id_field])):
            # an optional id the generator left out, or one the item path could not carry
            id_value = self.new_id(res, seed)
        if res.id_field and id_value is not None:
            hint[res.id_field] = id_value
        return hint, id_value

    def owner(self, store: str) -> Resource | None:
        """The resource the records of ``store`` are made from (:func:`store_owners`), if any."""
        return self._owners.get(store)

    def spellings(self, res: Resource) -> dict[str, str]:
        """:func:`~simulator.environments.identity.spellings` of the resource's record fields
        (memoised: the handlers' filters read it too)."""
        hit = self._spelled.get(res.name)
        if hit is None:
            hit = self._spelled[res.name] = spellings(object_properties(res.schema, res.schema) if res.schema else {})
        return hit

    def key_of(self, res: Resource, record: Record, seed: str, id_value: Any | None) -> str:
        """The key a made fixture ``record`` is stored under."""
        if res.id_field and res.id_field in record:
            return id_key(record[res.id_field])
        return id_key(id_value if id_value is not None else self.new_id(res, seed))

    def new_id(self, res: Resource, seed: str, taken: Callable[[str], bool] = lambda key: False) -> Any:
        """A fresh id value of the resource's id type whose key ``taken`` rejects not (the
        integer path, max + 1, is the caller's). Generated values reuse the spec's examples,
        so the first candidate may well be an id that exists."""
        value: Any = None
        for attempt in range(_ID_ATTEMPTS):
            value = self._id_candidate(res, f"{seed}|id|{attempt}" if attempt else f"{seed}|id")
            if not taken(id_key(value)):
                return value
        return value

    def addressable(self, res: Resource, value: Any) -> bool:
        """Whether the item path's parameter schema admits ``value`` (as the text a path carries);
        a null id (twilio's nullable ``call_sid``) names no record, whatever the parameter admits."""
        if value is None:
            return False
        if res.id_schema is None or isinstance(value, (dict, list)):
            return True
        return self.shaper.is_valid(res.id_schema, res.id_schema, value) or \
            self.shaper.is_valid(res.id_schema, res.id_schema, id_key(value))

    def _id_candidate(self, res: Resource, seed: str) -> Any:
        """An id the record schema and the item path's parameter both admit, where one exists
        (a record typing its id as any string while the path asks for a uuid)."""
        prop = object_properties(res.schema, res.schema).get(res.id_field or "") if res.schema else None
        if res.id_schema is not None:
            value = self.shaper.generate(res.id_schema, res.id_schema, seed, name=res.id_param or "id")
            if prop is None or self.shaper.is_valid(res.schema or {}, prop, value):
                return value
        if prop is not None and res.schema:
            return self.shaper.generate(res.schema, prop, seed, name=res.id_field)
        id_schema = res.id_schema or {"type": "string"}
        return self.shaper.generate(id_schema, id_schema, seed, name=res.id_param or "id")

    def fixture_count(self, res: Resource) -> int:
        """The fixtures tried per parent: one for a collection whose records take their parent's
        path value as their id (``POST /v1/application_fees/{id}/refund`` keeps the refund of
        fee ``id`` under that id), since every later fixture gets the same key and is dropped as
        a duplicate, after up to 20 attempts each, walking large schemas (stripe's). Integer
        ids are numbered 1, 2, ... instead, whatever the parent, and an item path's parameter
        (``/projects/{id}/services/{slug}``) gives each record an id of its own: those keep every
        fixture."""
        if res.id_type != "integer" and res.id_schema is None and res.id_field is not None \
                and res.id_field in res.scope_params:
            return min(self.fixtures, 1)
        return self.fixtures

    def base(self, res: Resource, scope: tuple[str, ...]) -> dict[str, Record]:
        key = (res.store, scope_key(scope))
        hit = self._base.get(key)
        if hit is not None:
            return hit
        res = self._owners.get(res.store, res)  # a shared store is made from one resource, whoever asks
        records: dict[str, Record] = {}
        for i in range(self.fixture_count(res)):
            seed = f"{self.seed}|fixture|{res.store}|{key[1]}|{i}"
            id_value: Any = i + 1 if res.id_type == "integer" else None
            for attempt in range(_ID_ATTEMPTS):
                try:
                    k, record = self._make_record(res, scope, f"{seed}|{attempt}", id_value)
                except GenerationError:
                    break  # a record schema that admits no value found: see the module docstring
                if k not in records:
                    records[k] = record
                    break
        self._base[key] = records
        return records

    def positions(self, res: Resource, scope: tuple[str, ...]) -> dict[str, int]:
        """Fixture id key -> its place in the fixture order (memoised)."""
        key = (res.store, scope_key(scope))
        hit = self._positions.get(key)
        if hit is None:
            hit = self._positions[key] = {k: i for i, k in enumerate(self.keys(res, scope))}
        return hit

    def keys(self, res: Resource, scope: tuple[str, ...]) -> Mapping[str, object]:
        """The fixtures' keys, in :meth:`base` order (as a mapping's keys), without generating
        the records whole where their id fields alone tell (:mod:`.fixtures`)."""
        made = self._base.get((res.store, scope_key(scope)))
        return made if made is not None else self._layout(res, scope)

    def _layout(self, res: Resource, scope: tuple[str, ...]) -> dict[str, tuple[str, Any]]:
        """Fixture key -> (the seed, the id value) :meth:`base` makes its record from, in its
        order and with its dedupe (memoised); a record made whole to tell its key is kept for
        :meth:`record`."""
        key = (res.store, scope_key(scope))
        hit = self._keys.get(key)
        if hit is None:
            res = self._owners.get(res.store, res)  # as in base()
            found: dict[str, tuple[str, Any]] = {}
            for i in range(self.fixture_count(res)):
                seed = f"{self.seed}|fixture|{res.store}|{key[1]}|{i}"
                id_value: Any = i + 1 if res.id_type == "integer" else None
                for attempt in range(_ID_ATTEMPTS):  # as base() dedupes
                    attempt_seed = f"{seed}|{attempt}"
                    try:
                        k = fixture_key(self, res, scope, attempt_seed, id_value)
                    except GenerationError:
                        k = None  # the whole record decides, as in base()
                    if k is None:
                        try:
                            k, record = self._make_record(res, scope, attempt_seed, id_value)
                        except GenerationError:
                            break  # as base() skips it
                        if k not in found:
                            self._one[(*key, k)] = record
                    if k not in found:
                        found[k] = (attempt_seed, id_value)
                        break
            hit = self._keys[key] = found
        return hit

    def record(self, res: Resource, scope: tuple[str, ...], key: str) -> Record | None:
        """``base(res, scope).get(key)`` without making the scope's other fixtures where they
        are not made yet (a read names one record of a scope no request listed)."""
        slot = (res.store, scope_key(scope))
        made = self._base.get(slot)
        if made is not None:
            return made.get(key)
        where = self._layout(res, scope).get(key)
        if where is None:
            return None
        hit = self._one.get((*slot, key))
        if hit is None:
            try:
                hit = self._make_record(self._owners.get(res.store, res), scope, *where)[1]
            except GenerationError:  # the key was told without the whole record: base() decides
                return self.base(res, scope).get(key)
            self._one[(*slot, key)] = hit
        return hit

    def document(self, res: Resource, scope: tuple[str, ...]) -> Record:
        """A singleton resource's document in ``scope`` (its parent fields set; ``{}`` for one
        the API answers without a body): seeded by the scope, memoised."""
        key = (res.store, scope_key(scope))
        hit = self._documents.get(key)
        if hit is None:
            made = self._made(res, scope, f"{self.seed}|document|{key[0]}|{key[1]}", None)[0] if res.schema else {}
            hit = self._documents[key] = made if isinstance(made, dict) else {}
        return hit

    def open_record(self, res: Resource, scope: tuple[str, ...], raw_id: Any) -> Record:
        """For read-only resources: the record any id resolves to."""
        key = (res.store, scope_key(scope), id_key(raw_id))
        hit = self._open.get(key)
        if hit is None:
            res = self._owners.get(res.store, res)  # as in base()
            _, hit = self._make_record(res, scope, f"{self.seed}|open|{key[0]}|{key[1]}|{key[2]}", raw_id)
            self._open[key] = hit
        return hit


def store_owners(resources: Iterable[Resource]) -> dict[str, Resource]:
    """Store name -> the resource its records are generated from: the one the store is named
    after, else the first by name. Resources sharing a store have the same fields, but not
    always the same schemas for them (one says ``nullable``), so the choice must not depend on
    which resource a client reaches first: that made a response depend on the requests
    earlier samples sent to the same process."""
    owners: dict[str, Resource] = {}
    for res in sorted(resources, key=lambda r: (r.name != r.store, r.name)):
        owners.setdefault(res.store, res)
    return owners


class FieldIndex:
    """For one field of one collection: which records a filter value selects (kept up to date
    on every write, so a filtered list costs what it returns, not what the collection holds)."""

    __slots__ = ("field", "keys_for", "values_of")

    def __init__(self, field: str) -> None:
        self.field = field
        self.values_of: dict[str, frozenset[str]] = {}  # record key -> filter keys it matches
        self.keys_for: dict[str, set[str]] = {}  # filter key -> record keys

    def store(self, key: str, record: Record | None) -> None:
        for value in self.values_of.pop(key, ()):
            self.keys_for[value].discard(key)
        if record is not None:
            values = filter_keys(record.get(self.field))
            self.values_of[key] = values
            for value in values:
                self.keys_for.setdefault(value, set()).add(key)

    def lookup(self, wanted: Any) -> set[str]:
        found: set[str] = set()
        for value in wanted if isinstance(wanted, list) else [wanted]:
            found |= self.keys_for.get(id_key(value), set())
        return found


def filter_keys(value: Any) -> frozenset[str]:
    """What a query filter value must equal to select a record holding ``value``: the value, or
    for a list field (tags) any element (or any element's ``name``)."""
    if isinstance(value, list):
        return frozenset(id_key(item.get("name") if isinstance(item, dict) else item) for item in value)
    return frozenset((id_key(value),))


_HASH_MOD = 1 << 256


def entry_digest_and_size(resource: str, scope: str, key: str, record: Record | None) -> tuple[int, int]:
    """The entry's digest and the length of the canonical JSON it is taken over (what the
    entry costs in the session's record budget)."""
    data = canonical_json([resource, scope, key, record])
    return int(sha256_hex(data), 16), len(data)


class Session:
    """One isolated state: the overlay of changes on top of the world.

    The state hash is sha256 over the write counter and the *sum* (mod 2**256) of one sha256
    digest per overlay entry (resource, scope, id, record or null): a canonical digest of the
    overlay as a set that a write updates in O(1) instead of re-serialising every record."""

    __slots__ = ("_digest", "_digests", "_hash", "_indexes", "_max_int", "_ordinals", "_sizes", "_views",
                 "journal", "overlay", "record_bytes", "record_limit", "writes")

    def __init__(self, journal: Journal | None = None, record_limit: int | None = None) -> None:
        # resource -> scope key -> id key -> record (None: deleted)
        self.overlay: dict[str, dict[str, dict[str, Record | None]]] = {}
        self.writes = 0
        self.journal = journal if journal is not None else Journal()
        self._hash: str | None = None
        self._digest = 0
        self._digests: dict[tuple[str, str, str], int] = {}
        # canonical JSON bytes per overlay entry, and their sum, held against ``record_limit``
        self._sizes: dict[tuple[str, str, str], int] = {}
        self.record_bytes = 0
        self.record_limit = record_limit
        # derived, rebuilt on demand: filter indexes, largest integer id, first-write order
        self._indexes: dict[tuple[str, str], dict[str, FieldIndex]] = {}
        self._max_int: dict[tuple[str, str], int] = {}
        # which fixtures (the world's, or none: simulator.state.scopes) each scope's were built from
        self._views: dict[tuple[str, str], int] = {}
        self._ordinals: dict[tuple[str, str], dict[str, int]] = {}

    def document(self) -> dict[str, Any]:
        return {"overlay": self.overlay, "writes": self.writes}

    def state_hash(self) -> str:
        if self._hash is None:
            self._hash = sha256_hex(canonical_json({"overlay": f"{self._digest:064x}", "writes": self.writes}))
        return self._hash

    def changed(self) -> None:
        self.writes += 1
        self._hash = None

    def clone(self) -> Session:
        other = Session()
        other.overlay = {r: {s: dict(m) for s, m in scopes.items()} for r, scopes in self.overlay.items()}
        other.writes, other._hash = self.writes, self._hash
        other._digest, other._digests = self._digest, dict(self._digests)
        other._sizes, other.record_bytes = dict(self._sizes), self.record_bytes
        return other

    def restore_from(self, snapshot: Session) -> None:
        """Take the snapshot's state (not its journal: this session keeps its own)."""
        copy = snapshot.clone()
        self.overlay, self.writes, self._hash = copy.overlay, copy.writes, copy._hash
        self._digest, self._digests = copy._digest, copy._digests
        self._sizes, self.record_bytes = copy._sizes, copy.record_bytes
        self._indexes, self._max_int, self._ordinals, self._views = {}, {}, {}, {}

    # -- the session's view of a collection ----------------------------------------------

    def changes(self, res: Resource, scope: tuple[str, ...]) -> dict[str, Record | None]:
        """The session's writes to one scope (None: deleted), in first-write order; not to be changed."""
        return self.overlay.get(res.store, {}).get(scope_key(scope), {})

    def records(self, world: Fixtures, res: Resource, scope: tuple[str, ...]) -> list[tuple[str, Record]]:
        base = world.base(res, scope)
        changes = self.changes(res, scope)
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

    def select(self, world: Fixtures, res: Resource, scope: tuple[str, ...],
               filters: dict[str, Any]) -> list[tuple[str, Record]]:
        """``records`` narrowed to those matching every ``field: wanted`` filter (same order)."""
        if not filters:
            return self.records(world, res, scope)
        keys: set[str] | None = None
        for name, wanted in filters.items():
            matched = self._index(world, res, scope, name).lookup(wanted)
            keys = matched if keys is None else keys & matched
        ordered = self._in_list_order(world, res, scope, keys or set())
        return [(k, r) for k in ordered if (r := self.get(world, res, scope, k)) is not None]

    def _index(self, world: Fixtures, res: Resource, scope: tuple[str, ...], name: str) -> FieldIndex:
        slot = (res.store, scope_key(scope))
        self._seen_through(world, slot)
        by_field = self._indexes.setdefault(slot, {})
        index = by_field.get(name)
        if index is None:
            index = by_field[name] = FieldIndex(name)
            for key, record in self.records(world, res, scope):
                index.store(key, record)
        return index

    def find(self, world: Fixtures, res: Resource, scope: tuple[str, ...], key: str) -> tuple[str, Record] | None:
        """The record an item path names: by its id key, else by the first record (in list order)
        whose alias field (``username``, ``slug``, ``name`` ...) holds ``key``. Aliases are looked
        up only when the id misses, through indexes kept up to date on every write."""
        changes = self.changes(res, scope)
        record = changes[key] if key in changes else world.record(res, scope, key)
        if record is not None:
            return key, record
        if key in changes:
            return None  # a deleted record stays gone, whatever other record has its id as a name
        for name in res.aliases:
            keys = self._index(world, res, scope, name).lookup(key)
            if keys:
                first = self._in_list_order(world, res, scope, keys)[0]
                found = self.get(world, res, scope, first)
                if found is not None:
                    return first, found
        return None

    def _in_list_order(self, world: Fixtures, res: Resource, scope: tuple[str, ...], keys: set[str]) -> list[str]:
        base = world.positions(res, scope)
        ordinals = self._ordinals.get((res.store, scope_key(scope)), {})
        return sorted(keys, key=lambda k: (0, base[k]) if k in base else (1, ordinals.get(k, 0)))

    def get(self, world: Fixtures, res: Resource, scope: tuple[str, ...], key: str) -> Record | None:
        changes = self.changes(res, scope)
        if key in changes:
            return changes[key]
        return world.record(res, scope, key)

    def has(self, world: Fixtures, res: Resource, scope: tuple[str, ...], key: str) -> bool:
        """Whether :meth:`get` finds a record (without making the fixtures whole to tell)."""
        changes = self.changes(res, scope)
        if key in changes:
            return changes[key] is not None
        return key in world.keys(res, scope)

    def put(self, res: Resource, scope: tuple[str, ...], key: str, record: Record | None) -> None:
        """Store a record (None: deleted); :class:`SessionFull`, before any change, when the
        session's records would exceed ``record_limit`` bytes."""
        skey = scope_key(scope)
        entry = (res.store, skey, key)
        digest, size = entry_digest_and_size(res.store, skey, key, record)
        held = self.record_bytes - self._sizes.get(entry, 0) + size
        if self.record_limit is not None and held > self.record_limit and size > self._sizes.get(entry, 0):
            raise SessionFull(self.record_bytes, self.record_limit)
        self.record_bytes = held
        self._sizes[entry] = size
        changes = self.overlay.setdefault(res.store, {}).setdefault(skey, {})
        if key not in changes:
            ordinals = self._ordinals.setdefault((res.store, skey), {})
            ordinals[key] = len(ordinals)
        changes[key] = record
        self._digest = (self._digest - self._digests.get(entry, 0) + digest) % _HASH_MOD
        self._digests[entry] = digest
        for index in self._indexes.get((res.store, skey), {}).values():
            index.store(key, record)
        if (res.store, skey) in self._max_int and _is_int(key):
            self._max_int[(res.store, skey)] = max(self._max_int[(res.store, skey)], int(key))
        self.changed()

    def _seen_through(self, world: Fixtures, slot: tuple[str, str]) -> None:
        """Forget what was derived for ``slot`` from other fixtures than ``world``'s: a scope read
        under a parent key the session had not written (the world's fixtures) and then under the
        parent it created with that key (none) must not keep the fixtures in its indexes."""
        if self._views.setdefault(slot, id(world)) != id(world):
            self._indexes.pop(slot, None)
            self._max_int.pop(slot, None)
            self._views[slot] = id(world)

    def next_integer_id(self, world: Fixtures, res: Resource, scope: tuple[str, ...]) -> int:
        slot = (res.store, scope_key(scope))
        self._seen_through(world, slot)
        if slot not in self._max_int:
            keys = [*world.keys(res, scope), *self.overlay.get(res.store, {}).get(slot[1], {})]
            self._max_int[slot] = max((int(k) for k in keys if _is_int(k)), default=0)
        return self._max_int[slot] + 1


def _is_int(key: str) -> bool:
    # int() refuses more than 4,300 digits (CPython's limit); such a key is a string id
    return len(key) <= 4300 and key.lstrip("-").isdigit()
