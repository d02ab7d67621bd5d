"""Bounding YAML alias expansion before a document is built (the "billion laughs" defence).

An alias (``*name``) reuses an anchored node, so a few hundred bytes can describe a document of
billions of nodes; merge keys (``<<: [*a, *a]``) double it again while PyYAML constructs it.
The composed node graph is still small (each anchored node exists once), so it is measured
first, without expanding anything: a document is refused when it uses more than
:data:`MAX_ALIASES` aliases, when expanding them would give more than :data:`MAX_EXPANDED_NODES`
nodes, or when an alias contains itself.
"""

from __future__ import annotations

import re

import yaml

MAX_ALIASES = 10_000
MAX_EXPANDED_NODES = 1_000_000
# an anchor definition (`&name` after a separator): without one, a document has no aliases
ANCHOR = re.compile(rb"(?:^|[\s\[\{,:?-])&[^\s,\[\]\{\}]", re.MULTILINE)


class AliasBombError(ValueError):
    """A document whose aliases expand beyond the limits; ``str`` says which limit."""


def check_alias_expansion(root: yaml.Node, *, max_aliases: int = MAX_ALIASES,
                          max_nodes: int = MAX_EXPANDED_NODES) -> None:
    """:class:`AliasBombError` when ``root`` (a composed node graph) expands too far."""
    size: dict[int, int] = {}  # id(node) -> expanded node count, once measured
    in_progress: set[int] = set()
    seen: set[int] = {id(root)}  # every node met so far: meeting one again is an alias
    aliases = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            in_progress.discard(key)
            total = 1 + sum(size[id(child)] for child in _children(node))
            if total > max_nodes:
                raise AliasBombError(f"its aliases expand to more than {max_nodes:,} nodes")
            size[key] = total
            continue
        if key in size:
            continue
        in_progress.add(key)
        stack.append((node, True))
        for child in _children(node):
            child_key = id(child)
            if child_key in in_progress:
                raise AliasBombError("an alias refers to a node that contains it (a recursive alias)")
            if child_key in seen:
                aliases += 1
                if aliases > max_aliases:
                    raise AliasBombError(f"it uses more than {max_aliases:,} aliases")
            seen.add(child_key)
            if child_key not in size:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
