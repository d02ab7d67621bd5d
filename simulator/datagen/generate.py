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
import re
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import orjson

from simulator.canonical import json_bytes

from .containers import ELIDED, MAX_DEPTH
from .exactness import RootElision
from .plan import GenerationError, Schema, SchemaPlan
from .values import GENERATION_LOCK
from .walk import Generation

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
_LONG_DIGITS = re.compile(rb"\d{19}")


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
        self._elision = RootElision(self._plan, schema)

    def is_valid(self, value: Any) -> bool:
        """Whether ``value`` validates against the schema (formats checked). Top-level
        :data:`ELIDED` members (of a value from ``generate(elide=...)``, changed since only
        elsewhere) stand for the values the walk gives them, which are valid: the rest is
        checked against the schema without those properties."""
        return self._elision.is_valid(value)

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
            skipped = self._elision.elidable(elide)
            # the value is a pure function of these (see the module docstring): a replayed
            # request asks for the same value again, so it is remembered (bounded; a forgotten
            # one comes back the same). The key names this object by its token, so no other
            # schema can ever share its entries, and the memo does not keep an evicted schema alive.
            key = (self._memo_token, str(seed), name, epoch.isoformat(), complete, skipped)
            hit = _VALUES.get(key, _MISSING)
            if hit is not _MISSING:
                _VALUES.move_to_end(key)
                return _fresh(hit)
            try:
                value = self._generate(seed, name, epoch, complete, frozenset(skipped))
            except GenerationError:
                if not skipped:
                    raise
                # the same attempts fail without elision, but the reason is worded from the whole
                # value's validator: walk again whole, for the very error a caller would get
                value = self._generate(seed, name, epoch, complete)
            _VALUES[key] = value
            while len(_VALUES) > _VALUE_MEMO_SIZE:
                _VALUES.popitem(last=False)
            return _fresh(value)

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
            if self.is_valid(value):
                return value
            reason = _first_error(*self._elision.checked(value))
        raise GenerationError(f"no valid value after {_ATTEMPTS} attempts (seed {seed!r}): {reason}")


_MISSING = object()
# (compiled schema's token, seed, name, epoch, complete, elided keys) -> value, least recently used first
_VALUES: OrderedDict[tuple[int, str, str | None, str, bool, tuple[str, ...]], Any] = OrderedDict()


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
        compiled = CompiledSchema(_private_copy(key))
        _COMPILED[key] = compiled
        if len(_COMPILED) > _CACHE_SIZE:
            _COMPILED.popitem(last=False)
        return compiled


def _private_copy(text: bytes) -> Schema:
    """The schema back from its JSON text, as the standard library reads it: orjson gives the
    same values, save that it reads an integer past 64 bits as a float (so any run of 19
    digits goes to the standard library) and refuses NaN and Infinity."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


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
