"""Seeded, schema-valid, realistic JSON values from self-contained JSON Schema 2020-12 documents.

    >>> generate_value({"type": "string", "format": "email"}, "seed-1")   # doctest: +SKIP
    'maria.lopez@gmail.com'

What a caller may rely on:

* **Valid.** The value validates against the schema (formats included); when no valid value is
  found after a few seeded attempts, :class:`GenerationError` (a ``ValueError``) says why.
  Invalid data is never returned.
* **Deterministic.** The value is a function of ``(schema, seed, name, epoch)`` only: every
  random choice about the value at JSON pointer ``path`` comes from ``sha256(f"{seed}|{path}")``
  (a few rarer choices add a ``|tag``), so adding a property to a schema leaves the other
  fields' values as they were. No global RNG, no ``hash()``, no clock; identical across
  processes and PYTHONHASHSEED values. (Values come from the installed Faker's vocabulary: a
  Faker upgrade may change them.)
* **Thread-safe.** One module lock serialises generation, which is CPU-bound under the GIL anyway.
* **Realistic.** Property names steer values (``email``, ``created_at``, ``avatarUrl``, ``price``
  ...; see :mod:`simulator.datagen.names`), examples and defaults are reused ~30% of the time,
  but only where they validate.

Schemas are compiled once into a :class:`CompiledSchema` (cached, keyed by the schema's JSON);
hot paths may hold the compiled object and call :meth:`CompiledSchema.generate` directly.
"""

from __future__ import annotations

import datetime
import itertools
import json
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from simulator.canonical import json_bytes

from .containers import ELIDED, MAX_DEPTH
from .exactness import composition_free, exact_cost
from .keyword_sets import ANNOTATIONS
from .plan import GenerationError, Schema, SchemaPlan
from .values import GENERATION_LOCK
from .walk import BUDGET, Generation

__all__ = [
    "DEFAULT_EPOCH",
    "ELIDED",
    "MAX_DEPTH",
    "CompiledSchema",
    "GenerationError",
    "compile_schema",
    "generate_value",
]

DEFAULT_EPOCH = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
"""The "now" that generated timestamps lie before (up to two years before)."""

_ATTEMPTS = 5
_CACHE_SIZE = 256
_VALUE_MEMO_SIZE = 4096  # ~3 KB each on average (1,000 certified samples): ~12 MB
_MEMO_TOKENS = itertools.count()


class CompiledSchema:
    """One schema, compiled for repeated generation and validation.

    Build it with :func:`compile_schema`, which hands it a private copy; constructed directly, it
    uses ``schema`` as given, which must then not be mutated.
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._plan = SchemaPlan(schema)
        # names this object in the value memo without holding it: a number never reused in the
        # process, so an evicted schema is freed and its leftover entries match no other schema
        self._memo_token = next(_MEMO_TOKENS)
        self._costs: dict[int, int | None] = {}  # exactness memos (see _elidable)
        self._free: dict[int, bool] = {}
        self._elisions: dict[tuple[str, ...], tuple[str, ...]] = {}

    def is_valid(self, value: Any) -> bool:
        """Whether ``value`` validates against the schema (formats checked)."""
        return bool(self._plan.validator.is_valid(value))

    def generate(
        self,
        seed: str,
        *,
        name: str | None = None,
        epoch: datetime.datetime = DEFAULT_EPOCH,
        complete: bool = False,
        elide: Iterable[str] = (),
    ) -> Any:
        """A valid value for ``seed``; see :func:`generate_value`. The caller owns the value
        (a fresh copy: mutating it changes no later result).

        ``elide`` names top-level properties whose values the caller will replace: each one
        the walk can skip without changing anything else (:mod:`simulator.datagen.exactness`)
        comes back as :data:`ELIDED`, in its place among the keys; every other key has the value
        it has without ``elide``. A caller that passes ``elide`` must replace every ``ELIDED``."""
        if epoch.tzinfo is None:
            epoch = epoch.replace(tzinfo=datetime.UTC)
        with GENERATION_LOCK:
            skipped = self._elidable(elide)
            # the value is a pure function of these (see the module docstring): a replayed
            # request asks for the same value again, so it is remembered (bounded; a forgotten
            # one comes back the same). The key names this object by its token, so no other
            # schema can ever share its entries, and the memo does not keep an evicted schema alive.
            key = (self._memo_token, str(seed), name, epoch.isoformat(), complete, skipped)
            hit = _VALUES.get(key, _MISSING)
            if hit is not _MISSING:
                _VALUES.move_to_end(key)
                return _fresh(hit)
            value = self._generate(seed, name, epoch, complete, frozenset(skipped))
            _VALUES[key] = value
            while len(_VALUES) > _VALUE_MEMO_SIZE:
                _VALUES.popitem(last=False)
            return _fresh(value)

    def _elidable(self, wanted: Iterable[str]) -> tuple[str, ...]:
        """The root properties among ``wanted`` that the walk can leave out, changing nothing
        else (:mod:`.exactness`): the root is a plain object (properties, required, a boolean
        additionalProperties, one type), each property's walk is exact, and the composition
        steps they skip cannot matter: none, or the rest of the root takes none."""
        key = tuple(sorted(set(wanted)))
        found = self._elisions.get(key)
        if found is None:
            found = self._elisions[key] = self._find_elidable(key) if key else ()
        return found

    def _find_elidable(self, wanted: tuple[str, ...]) -> tuple[str, ...]:
        plan = self._plan
        try:
            root = plan.resolve(self.schema)
        except GenerationError:
            return ()
        if (
            not isinstance(root, dict)
            or not all(word in _PLAIN_ROOT_KEYS or word.startswith("x-") for word in root)
            or plan.types(root) != ("object",)
            or not isinstance(root.get("properties"), dict)
            or not isinstance(root.get("additionalProperties", True), bool)
        ):
            return ()
        properties = root["properties"]
        costs = {key: exact_cost(plan, properties[key], self._costs) for key in wanted if key in properties}
        free = [key for key, cost in costs.items() if cost == 0]
        spending = [key for key, cost in costs.items() if cost]  # None (not exact) is left out
        if spending and (
            sum(costs[key] or 0 for key in spending) > BUDGET
            or not all(composition_free(plan, sub, self._free) for key, sub in properties.items()
                       if key not in spending)
        ):
            spending = []
        return tuple(sorted(free + spending))

    def _rest_validator(self, skipped: frozenset[str]) -> Any:
        """A validator for the root without the ``skipped`` properties (exact, so valid anyway)."""
        plan = self._plan

        def without() -> Schema:
            root = plan.resolve(self.schema)
            assert isinstance(root, dict)  # _elidable said so
            rest = dict(root)
            rest["properties"] = {k: v for k, v in root["properties"].items() if k not in skipped}
            if "required" in root:
                rest["required"] = [k for k in root["required"] if k not in skipped]
            return rest

        return plan.validator_for(plan.derived(("elide", *sorted(skipped)), without))

    def _generate(self, seed: str, name: str | None, epoch: datetime.datetime, complete: bool,
                  skipped: frozenset[str] = frozenset()) -> Any:
        reason = "no attempt was made"
        for attempt in range(_ATTEMPTS):
            run = Generation(self._plan, f"{seed}#{attempt}" if attempt else str(seed), epoch)
            if complete:
                run.fill_path = ""  # the root object: every property, not a random selection
            run.elided = skipped
            try:
                value = run.generate(self.schema, "", name, 0)
            except GenerationError as error:
                if not error.retryable:
                    raise
                reason = str(error)
                continue
            validator = self._plan.validator
            if isinstance(value, dict) and any(item is ELIDED for item in value.values()):
                validator = self._rest_validator(skipped)
                value_checked = {k: v for k, v in value.items() if v is not ELIDED}
            else:
                value_checked = value
            if validator.is_valid(value_checked):
                return value
            reason = _first_error(validator, value_checked)
        raise GenerationError(f"no valid value after {_ATTEMPTS} attempts (seed {seed!r}): {reason}")


_MISSING = object()
# (compiled schema's token, seed, name, epoch, complete, elided keys) -> value, least recently used first
_VALUES: OrderedDict[tuple[int, str, str | None, str, bool, tuple[str, ...]], Any] = OrderedDict()
_PLAIN_ROOT_KEYS = ANNOTATIONS | {"type", "properties", "required", "additionalProperties"}


def _fresh(value: Any) -> Any:
    """A copy of a JSON value's containers (its scalars are immutable), so a caller that
    mutates what it was given cannot change the memo."""
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    return value


def _first_error(validator: Any, value: Any) -> str:
    for error in validator.iter_errors(value):
        where = "/" + "/".join(str(part) for part in error.instance_path)
        return f"at {where}: {error.message}"
    return "the value did not validate"


_COMPILED: OrderedDict[bytes, CompiledSchema] = OrderedDict()


def compile_schema(schema: Schema) -> CompiledSchema:
    """The compiled form of ``schema``, from an LRU cache keyed by the schema's JSON text.

    The compiled object owns a private copy, so mutating ``schema`` afterwards is harmless. Key
    order is part of the key (it fixes the order of generated object keys), so two schemas that
    differ only in key order compile separately.
    """
    key = json_bytes(schema)
    with GENERATION_LOCK:
        compiled = _COMPILED.get(key)
        if compiled is not None:
            _COMPILED.move_to_end(key)
            return compiled
        compiled = CompiledSchema(json.loads(key))
        _COMPILED[key] = compiled
        if len(_COMPILED) > _CACHE_SIZE:
            _COMPILED.popitem(last=False)
        return compiled


def generate_value(
    schema: Schema,
    seed: str,
    *,
    name: str | None = None,
    epoch: datetime.datetime = DEFAULT_EPOCH,
    complete: bool = False,
) -> Any:
    """A JSON-compatible value that validates against ``schema``, determined by its arguments only.

    ``schema`` is a self-contained JSON Schema 2020-12 document (``$ref`` only into its own
    ``$defs``); ``name`` is the name the value goes by (a property or resource name) and steers
    realistic values; timestamps lie in the two years before ``epoch``. Optional properties are
    each present by chance, except, with ``complete``, those of the top-level object: a
    resource's full representation, as an API returns it.

    Raises :class:`GenerationError` when the schema admits no value (``false``, contradictory
    ``allOf``, recursion with no finite value) or none was found after a few attempts.
    """
    return compile_schema(schema).generate(seed, name=name, epoch=epoch, complete=complete)
