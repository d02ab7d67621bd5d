"""What a nested collection holds in a session, given what the session did to its parent.

A nested collection (``/{username}/feeds/{feed_key}/data``) has one scope per parent: the
values of its parent parameters. The world fills every scope with fixtures, so a client that
names a parent it has not seen (a username; a feed key from elsewhere) finds records there, as
on an API whose data it cannot enumerate. What the session did to the parent overrides that:

* a parent this session **created** (its key is not a world fixture's) starts with no children:
  the scope holds only what the session writes into it (a new feed has no data points);
* a parent this session **deleted** has no children to read, list or add to: every operation on
  the scope is a 404 (the API would not find the feed), until the parent is made again;
* under a parent that itself lives only in the session (its own parent was created), a key the
  session never wrote names nothing: 404.

Otherwise (a fixture parent, changed or not; a parent the session never touched) the scope is
the world's. Deleting a parent does not delete its children one by one: a parent made again
under the same key finds what its scope held before (the world's fixtures for a fixture's key,
the session's earlier writes for a key the session made up).

The parent of a collection is the resource whose item path is the collection path up to its
last template, template names aside (``/{username}/feeds/{feed_key}`` for the data above;
``/{username}/dashboards/{id}`` for ``.../dashboards/{dashboard_id}/blocks``); a collection
without one (``/{username}/feeds``: no users collection) is the world's. Only the session's own
records are looked at: telling costs no fixture generation, except the parent scope's fixture
keys when the session holds a record under the parent's key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from simulator.environments.resources import Resource, segments, template_name

from .fixtures import id_key

if TYPE_CHECKING:
    from .store import Fixtures, Record, Session


class ParentGone(Exception):
    """The scope's parent record does not exist in the session (deleted, or never written
    under a parent that lives only in the session)."""

    def __init__(self, parent: Resource, key: str, position: int) -> None:
        self.parent, self.key = parent, key
        self.position = position  # of the parent's value among the scope's
        super().__init__(f"{parent.name} {key!r} does not exist")


class NoFixtures:
    """The fixtures of a scope under a parent the session created: none."""

    @staticmethod
    def base(res: Resource, scope: tuple[str, ...]) -> dict[str, Record]:
        return {}

    @staticmethod
    def keys(res: Resource, scope: tuple[str, ...]) -> dict[str, int]:
        return {}

    @staticmethod
    def positions(res: Resource, scope: tuple[str, ...]) -> dict[str, int]:
        return {}

    @staticmethod
    def record(res: Resource, scope: tuple[str, ...], key: str) -> Record | None:
        return None


NO_FIXTURES = NoFixtures()


def parent_links(resources: Iterable[Resource]) -> dict[str, Resource]:
    """Resource name -> the resource whose records its scope's last parameter names."""
    listed = list(resources)
    by_item: dict[tuple[str | None, ...], Resource] = {}
    for res in sorted(listed, key=lambda r: r.name):
        if res.item_path:
            by_item.setdefault(_shape(segments(res.item_path)), res)
    links: dict[str, Resource] = {}
    for res in listed:
        if not res.scope_params:
            continue
        segs = segments(res.collection_path)
        last = max(i for i, s in enumerate(segs) if template_name(s))
        parent = by_item.get(_shape(segs[: last + 1]))
        if parent is not None and parent is not res and len(parent.scope_params) == len(res.scope_params) - 1:
            links[res.name] = parent
    return links


def _shape(segs: list[str]) -> tuple[str | None, ...]:
    """A path as a router sees it: ``/{username}/dashboards/{id}`` and
    ``/{username}/dashboards/{dashboard_id}`` are one (None stands for a template)."""
    return tuple(None if template_name(s) else s for s in segs)


def scope_fixtures(session: Session, world: Fixtures, links: dict[str, Resource], res: Resource,
                   scope: tuple[str, ...]) -> Fixtures:
    """The fixtures ``res``'s ``scope`` holds in ``session``: ``world``'s, or
    :data:`NO_FIXTURES`; :class:`ParentGone` when the scope's parent does not exist there."""
    parent = links.get(res.name)
    if parent is None or len(scope) != len(res.scope_params):
        return world
    pscope, pkey = scope[:-1], scope[-1]
    above = scope_fixtures(session, world, links, parent, pscope)
    changes = session.changes(parent, pscope)
    if pkey in changes:
        if changes[pkey] is None:
            raise ParentGone(parent, pkey, len(pscope))
        key: str | None = pkey
    else:
        key = _by_alias(parent, changes, pkey)
    if key is None:  # the session never wrote the parent
        if above is world:
            return world
        raise ParentGone(parent, pkey, len(pscope))
    if above is world and key in world.keys(parent, pscope):
        return world  # a fixture the session changed (or deleted and made again)
    return NO_FIXTURES


def _by_alias(parent: Resource, changes: dict[str, Record | None], value: str) -> str | None:
    """The key of the session's first record of ``parent`` (in write order) whose alias field
    (``username``, ``slug``) holds ``value``."""
    for key, record in changes.items():
        if record is not None and any(id_key(record[name]) == value for name in parent.aliases if name in record):
            return key
    return None
