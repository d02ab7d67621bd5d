"""The walk that builds one value: a schema node at a JSON pointer in, a JSON value out.

:class:`Generation` is one attempt of :meth:`simulator.datagen.generate.CompiledSchema.generate`. It
follows the resolved schema top-down; leaves come from :mod:`simulator.datagen.values` (names,
formats, patterns) and :mod:`simulator.datagen.numbers`; keywords it can only approximate
(``oneOf`` exclusivity, ``not``, ``if``, residual constraints of a merge) are generated, checked
against a validator and retried with a re-salted seed. Arrays and objects live in
:mod:`simulator.datagen.containers`.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import math
import struct
from collections.abc import Iterator
from random import Random
from typing import Any

from .composition import NULL_CHANCE, CompositionValues
from .containers import (
    CHANCE_SLOT,
    EXAMPLE_SLOT,
    MAX_DEPTH,
    PICK_SLOT,
    PRESENT_SLOT,
    copy_json,
)
from .kinds import KIND_MAKERS
from .names import classify_name
from .numbers import number_in_range
from .plan import RESIDUAL, GenerationError, OutOfBudget, Schema, SchemaPlan
from .regex import PatternUnsupported, string_for_pattern
from .values import FORMAT_MAKERS, TEXT_FORMATS, SeededRandom, plain_text

_HARD_DEPTH = 48
_MAX_NESTING = 16
BUDGET = 5000  # composition steps per attempt: bounds backtracking over oneOf/anyOf branches
_EXAMPLE_CHANCE = 0.3

_DRAWS = struct.Struct(">4Q")
_TWO_64 = 2.0**64


def _unpack_draws(digest: bytes) -> tuple[int, ...]:
    return _DRAWS.unpack(digest)


class Generation(CompositionValues):
    """One generation attempt: the seed prefix, the epoch and the plan being walked.

    Every random decision about the value at JSON pointer ``path`` comes from
    ``sha256(f"{prefix}|{path}")`` (common decisions: one slice of it each) or
    ``sha256(f"{prefix}|{path}|{tag}")`` (rarer ones); ``prefix`` is the caller's seed, plus the
    attempt number and the local retry when there is one.
    """

    __slots__ = ("_last", "budget", "elided", "epoch", "fill_path", "nesting", "plan", "prefix")

    def __init__(self, plan: SchemaPlan, prefix: str, epoch: datetime.datetime) -> None:
        self.plan = plan
        self.prefix = prefix
        self.epoch = epoch
        self._last: tuple[str, str, tuple[int, ...]] = ("", "", ())
        self.fill_path: str | None = None
        self.elided: frozenset[str] = frozenset()  # root properties left out (see generate's elide)
        self.nesting = 0  # composition (oneOf/anyOf/if) levels entered without going deeper in the value
        self.budget = BUDGET

    # --- randomness -----------------------------------------------------------------------

    def draws(self, path: str) -> tuple[int, ...]:
        # the decisions about one node are asked for one after another: remember the last node
        last_prefix, last_path, found = self._last
        if path != last_path or self.prefix != last_prefix or not found:
            found = _unpack_draws(hashlib.sha256(f"{self.prefix}|{path}".encode()).digest())
            self._last = (self.prefix, path, found)
        return found

    def chance(self, path: str, slot: int) -> float:
        return self.draws(path)[slot] / _TWO_64

    def pick(self, path: str, count: int) -> int:
        return self.draws(path)[PICK_SLOT] % count

    def rng(self, path: str) -> Random:
        draws = self.draws(path)
        # its own seed, not any one decision's draw: mixing two slots keeps it independent of both
        return SeededRandom(draws[CHANCE_SLOT] ^ draws[PRESENT_SLOT])

    def _digest(self, path: str, tag: str) -> int:
        digest = hashlib.sha256(f"{self.prefix}|{path}|{tag}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def tagged_rng(self, path: str, tag: str) -> Random:
        return SeededRandom(self._digest(path, tag))

    def unit(self, path: str, tag: str) -> float:
        return self._digest(path, tag) / _TWO_64

    def below(self, path: str, tag: str, count: int) -> int:
        return self._digest(path, tag) % count

    @contextlib.contextmanager
    def salted(self, path: str, attempt: int) -> Iterator[None]:
        """Re-seed the subtree at ``path`` for a local retry; attempt 0 keeps the plain seeds."""
        if attempt == 0:
            yield
            return
        saved = self.prefix
        self.prefix = f"{saved}@{path}~{attempt}"
        try:
            yield
        finally:
            self.prefix = saved

    # --- dispatch ------------------------------------------------------------------------------

    def generate(self, schema: Schema, path: str, name: str | None, depth: int) -> Any:
        if depth > _HARD_DEPTH:
            raise self.too_deep(path)
        node = self.plan.resolve(schema)
        if node is False:
            raise GenerationError(
                f"at {path or '/'}: the schema there accepts nothing (`false`, or contradictory allOf)",
                retryable=False,
            )
        saved, self.nesting = self.nesting, 0  # a child value starts its own composition count
        try:
            return self.node_value({} if node is True else node, path, name, depth)
        finally:
            self.nesting = saved

    def too_deep(self, path: str) -> GenerationError:
        if self.plan.height(self.plan.root) == math.inf:
            names = ", ".join(f"$defs/{key}" for key in self.plan.infinite_defs()) or "the root schema"
            return GenerationError(
                f"no finite value exists: required properties recurse forever through {names}; "
                "make the recursive property optional or nullable",
                retryable=False,
            )
        return GenerationError(f"at {path}: nesting deeper than {_HARD_DEPTH} levels")

    @contextlib.contextmanager
    def composing(self, path: str) -> Iterator[None]:
        """Count composition levels: a $ref cycle through anyOf/oneOf must not recurse forever."""
        if self.nesting >= _MAX_NESTING:
            raise GenerationError(
                f"at {path or '/'}: anyOf/oneOf/if nest deeper than {_MAX_NESTING} levels "
                "(a $ref cycle through composition?)",
                retryable=False,
            )
        self.budget -= 1
        if self.budget < 0:
            raise OutOfBudget(f"at {path or '/'}: gave up after {BUDGET} oneOf/anyOf/if attempts")
        self.nesting += 1
        try:
            yield
        finally:
            self.nesting -= 1

    def node_value(self, node: dict[str, Any], path: str, name: str | None, depth: int) -> Any:
        if "const" in node or "enum" in node:
            members = self.plan.enum_members(node)
            if not members:
                keyword = "const value" if "const" in node else "enum member"
                raise GenerationError(
                    f"at {path or '/'}: no {keyword} satisfies the schema's other keywords", retryable=False
                )
            return copy_json(members[self.pick(path, len(members))])
        if self.chance(path, EXAMPLE_SLOT) < _EXAMPLE_CHANCE:
            examples = self.plan.examples(node)
            if examples:
                return copy_json(examples[self.pick(path, len(examples))])
        if "oneOf" in node:
            with self.composing(path):
                return self.one_of(node, path, name, depth)
        if "anyOf" in node:
            with self.composing(path):
                return self.any_of(node, path, name, depth)
        if "not" in node or "if" in node or RESIDUAL in node or "dependentSchemas" in node:
            with self.composing(path):
                return self.checked(node, path, name, depth)
        return self.typed(node, path, name, depth)

    def typed(self, node: dict[str, Any], path: str, name: str | None, depth: int) -> Any:
        kinds = self.type_order(node, path, depth)
        for kind in kinds[:-1]:  # a type whose constraints no value meets gives way to the next
            try:
                return self.typed_as(kind, node, path, name, depth)
            except OutOfBudget:
                raise
            except GenerationError:
                continue
        return self.typed_as(kinds[-1], node, path, name, depth)

    def typed_as(self, kind: str, node: dict[str, Any], path: str, name: str | None, depth: int) -> Any:
        if kind == "object":
            return self.object_value(node, path, name, depth)
        if kind == "array":
            return self.array_value(node, path, name, depth)
        if kind in ("integer", "number"):
            return self.number_value(node, path, name, kind)
        if kind == "boolean":
            return self.chance(path, CHANCE_SLOT) < 0.5
        if kind == "null":
            return None
        return self.string_value(node, path, name)

    def type_order(self, node: dict[str, Any], path: str, depth: int) -> list[str]:
        """The node's types, the one to try first in front (seeded; rarely null; scalars past the cap)."""
        kinds = self.plan.types(node)
        if kinds is None:
            return ["string"]
        if not kinds:
            raise GenerationError(f"at {path or '/'}: `type` allows no type", retryable=False)
        if len(kinds) == 1:
            return list(kinds)
        if depth >= MAX_DEPTH:  # past the cap, a scalar (null included) ends the recursion
            scalars = [kind for kind in kinds if kind not in ("object", "array")]
            if len(scalars) == 1:
                return scalars + [kind for kind in kinds if kind not in scalars]
            kinds = tuple(scalars) or kinds
        others = [kind for kind in kinds if kind != "null"]
        if len(others) < len(kinds) and self.chance(path, CHANCE_SLOT) < NULL_CHANCE:
            first = "null"
        else:
            first = others[self.pick(path, len(others))]
        return [first, *(kind for kind in self.plan.types(node) or () if kind != first)]

    # --- strings and numbers -----------------------------------------------------------------

    def realistic(self, node: dict[str, Any], rng: Random, name: str | None, kind: str) -> Any:
        """A value chosen for the property's name, if the name means something and it validates."""
        if not name:
            return None
        maker = KIND_MAKERS.get(classify_name(name) or "")
        if maker is None:
            return None
        candidate = maker(rng, kind, node, self.epoch)
        if candidate is None or not self.plan.accepts(node, candidate):
            return None
        return candidate

    def string_value(self, node: dict[str, Any], path: str, name: str | None) -> str:
        rng = self.rng(path)
        if node.get("format") in TEXT_FORMATS:
            candidate = FORMAT_MAKERS[node["format"]](rng, self.epoch)
            if self.plan.accepts(node, candidate):
                return candidate
        found = self.realistic(node, rng, name, "string")
        if found is not None:
            return str(found)
        min_length = int(node.get("minLength", 0))
        max_length = node.get("maxLength")
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            limits: tuple[int, ...] = (
                8,
                8,
                max(16, min_length),
                3,
                max(32, min_length),
                1,
                max(64, min_length * 2),
            )
            if RESIDUAL in node:  # more patterns to meet than the one generated from: more tries
                limits *= 4
            for limit in limits:
                try:
                    candidate = string_for_pattern(pattern, rng, limit)
                except PatternUnsupported as error:
                    raise GenerationError(f"at {path or '/'}: {error}", retryable=False) from error
                if self.plan.accepts(node, candidate):
                    return candidate
            raise GenerationError(f"at {path or '/'}: no generated string matched pattern {pattern!r}")
        make = FORMAT_MAKERS.get(node.get("format", ""))
        if make is not None:
            candidate = make(rng, self.epoch)
            if self.plan.accepts(node, candidate):
                return candidate
        return plain_text(rng, min_length, max_length if isinstance(max_length, int) else None)

    def number_value(self, node: dict[str, Any], path: str, name: str | None, kind: str) -> int | float:
        rng = self.rng(path)
        found = self.realistic(node, rng, name, kind)
        if isinstance(found, int | float) and not isinstance(found, bool):
            return found
        return number_in_range(node, rng, kind == "integer", path)
