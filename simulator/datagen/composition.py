"""``oneOf``, ``anyOf`` and the keywords generated only approximately (``not``, ``if``, residual
constraints of a merge): pick branches in a seeded order, generate, check against a validator,
retry with a re-salted seed.

:class:`CompositionValues` is a part of :class:`simulator.datagen.walk.Generation`, kept in its own
module; it calls back into the walk (``node_value``, ``typed``, ``generate``) for the values.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from simulator.canonical import escape_token
from simulator.spec.jsonschema.keywords import EXPANDABLE

from .containers import MAX_DEPTH, ContainerValues, merge_all
from .plan import GenerationError, OutOfBudget, Schema

_LOCAL_TRIES = 6
NULL_CHANCE = 0.1
"""How often a nullable value (a null branch or type) is null, above the depth cap aside."""


class CompositionValues(ContainerValues):
    """Composition keywords; the walk supplies the randomness and the values inside."""

    __slots__ = ()

    # provided by Generation
    def node_value(self, node: dict[str, Any], path: str, name: str | None, depth: int) -> Any:
        raise NotImplementedError

    def typed(self, node: dict[str, Any], path: str, name: str | None, depth: int) -> Any:
        raise NotImplementedError

    def branch_order(self, branches: list[Any], path: str, tag: str, depth: int) -> list[int]:
        count = len(branches)
        start = self.below(path, tag, count)
        order = [(start + offset) % count for offset in range(count)]
        nulls = [i for i in order if self.is_null(branches[i])]
        if nulls and (depth >= MAX_DEPTH or self.unit(path, tag + "-null") < NULL_CHANCE):
            order = nulls + [i for i in order if i not in nulls]
        else:
            order = [i for i in order if i not in nulls] + nulls
        if depth >= MAX_DEPTH:
            order.sort(key=lambda i: self.plan.height(branches[i]))
        return order

    def is_null(self, schema: Schema) -> bool:
        node = self.plan.resolve(schema)
        return isinstance(node, dict) and (self.plan.types(node) == ("null",) or node.get("const", 0) is None)

    def merged_branch(self, node: dict[str, Any], keyword: str, index: int) -> Schema:
        return self.plan.merged_branch(node, keyword, index)

    def one_of(self, node: dict[str, Any], path: str, name: str | None, depth: int) -> Any:
        branches = node["oneOf"]
        reason = "every branch is impossible"
        attempt = 0
        for round_ in range(2):
            for index in self.branch_order(branches, path, f"oneOf{round_}", depth):
                merged = self.merged_branch(node, "oneOf", index)
                if merged is False:
                    continue
                # the second round fills in every optional property: more chances that the
                # value shows a property only its own branch allows
                # (Generation declares the fill_path slot; mypy checks this mixin's empty __slots__)
                saved_fill, self.fill_path = self.fill_path, (path if round_ else self.fill_path)  # type: ignore[misc]
                try:
                    with self.salted(path, attempt):
                        attempt += 1
                        value = self.node_value({} if merged is True else merged, path, name, depth)
                except OutOfBudget:
                    raise
                except GenerationError as error:
                    reason = str(error)
                    continue
                finally:
                    self.fill_path = saved_fill  # type: ignore[misc]
                matches = sum(1 for branch in branches if self.plan.accepts(branch, value))
                if matches == 1:
                    return value
                if isinstance(value, dict) and merged is not True:
                    fixed = self.disambiguate(value, merged, index, branches, path, depth)
                    if fixed is not None:
                        return fixed
                reason = f"the value matched {matches} oneOf branches, not exactly one"
        raise GenerationError(f"at {path or '/'}: oneOf: {reason}")

    def disambiguate(
        self,
        value: dict[str, Any],
        merged: dict[str, Any],
        index: int,
        branches: list[Any],
        path: str,
        depth: int,
    ) -> dict[str, Any] | None:
        """Edit an object that several oneOf branches accept until only branch ``index`` does.

        For each other accepting branch: drop a property it requires that ours does not, or set
        a property it constrains to a value of another type that ours allows. None if stuck.
        """
        plan = self.plan
        for other_index, other in enumerate(branches):
            if other_index == index or not plan.accepts(other, value):
                continue
            other_node = plan.resolve(other)
            if not isinstance(other_node, dict):
                return None
            edited = self.break_branch(value, merged, other, other_node, path, depth)
            if edited is None:
                return None
            value = edited
        if sum(1 for branch in branches if plan.accepts(branch, value)) == 1:
            return value
        return None

    def break_branch(
        self,
        value: dict[str, Any],
        merged: dict[str, Any],
        other: Any,
        other_node: dict[str, Any],
        path: str,
        depth: int,
    ) -> dict[str, Any] | None:
        plan = self.plan
        ours_required = set(merged.get("required", ()))
        for key in other_node.get("required", ()):
            if key in value and key not in ours_required:
                edited = {k: v for k, v in value.items() if k != key}
                if plan.accepts(merged, edited) and not plan.accepts(other, edited):
                    return edited
        ours = merged.get("properties") or {}
        additional = merged.get("additionalProperties", True)
        for key, their_schema in (other_node.get("properties") or {}).items():
            theirs = plan.resolve(their_schema)
            their_types = plan.types(theirs) if isinstance(theirs, dict) else None
            allowed = ours.get(key, additional)
            if their_types is None or allowed is False or plan.resolve(allowed) is False:
                continue
            for kind in ("integer", "string", "boolean", "array", "object"):
                if kind in their_types or (kind == "integer" and "number" in their_types):
                    continue
                target = plan.derived(
                    (id(merged), "break", key, kind), partial(merge_all, plan, [allowed, {"type": kind}])
                )
                if target is False:
                    continue
                try:
                    replacement = self.generate(target, f"{path}/{escape_token(key)}", key, depth + 1)
                except OutOfBudget:
                    raise
                except GenerationError:
                    continue
                edited = {**value, key: replacement}
                if plan.accepts(merged, edited) and not plan.accepts(other, edited):
                    return edited
        return None

    def any_of(self, node: dict[str, Any], path: str, name: str | None, depth: int) -> Any:
        branches = node["anyOf"]
        reason = "every branch is impossible"
        order = (self.plan.unexpanded_first(branches) if node.get(EXPANDABLE) is True
                 else self.branch_order(branches, path, "anyOf", depth))
        for attempt, index in enumerate(order):
            merged = self.merged_branch(node, "anyOf", index)
            if merged is False:
                continue
            with self.salted(path, attempt):
                try:
                    return self.node_value({} if merged is True else merged, path, name, depth)
                except OutOfBudget:
                    raise
                except GenerationError as error:
                    reason = str(error)
        raise GenerationError(f"at {path or '/'}: anyOf: {reason}")

    def checked(self, node: dict[str, Any], path: str, name: str | None, depth: int) -> Any:
        """Keywords generated only approximately (``not``, ``if``, residuals): generate, check, retry."""
        plan = self.plan
        base = plan.derived(
            (id(node), "checked"),
            lambda: {k: v for k, v in node.items() if k not in ("not", "if", "then", "else")},
        )
        routes: list[Schema] = [base]
        if "if" in node:
            condition = plan.resolve(node["if"])
            then = plan.derived(
                (id(node), "then"), lambda: plan.merge(condition, plan.resolve(node.get("then", True)))
            )
            routes = [
                plan.derived((id(node), "if-then"), lambda: plan.merge(base, then)),
                plan.derived(
                    (id(node), "if-else"), lambda: plan.merge(base, plan.resolve(node.get("else", True)))
                ),
            ]
            if self.unit(path, "if") < 0.5:
                routes.reverse()
        value: Any = None
        for attempt in range(_LOCAL_TRIES):
            route = routes[attempt % len(routes)]
            if route is False:
                continue
            route_node = {} if route is True else route
            try:
                with self.salted(path, attempt):
                    # base: typed() directly (node_value would come back here); other routes may
                    # hold composition of their own. Leaf generators check against residuals.
                    if route_node is base:
                        value = self.typed(route_node, path, name, depth)
                    else:
                        value = self.node_value(route_node, path, name, depth)
            except OutOfBudget:
                raise
            except GenerationError:
                continue
            if plan.accepts(node, value):
                return value
        raise GenerationError(
            f"at {path or '/'}: no value satisfied not/if/then/else or combined constraints"
        )
