"""The documents that make up one spec, JSON pointers into them, and ``$ref`` resolution.

Pure: files and URLs come in through the ``load`` callback the loader passes in, so this module
never touches the disk or the network itself. A resolved reference is a :class:`Location`
(document key + canonical JSON pointer), which is what schema conversion names ``$defs`` after.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import unquote, urljoin, urlsplit

from simulator.canonical import PointerError, join_pointer, pointer_tokens, resolve_pointer

REMOTE_SCHEMES = ("http://", "https://")


def is_remote(target: str) -> bool:
    return target.startswith(REMOTE_SCHEMES)


class Location(NamedTuple):  # a tuple: hashed and ordered in C, it is the hottest key of a load
    """Where a referenced node lives: ``doc`` is "" for the root document, else the document's
    key (a path relative to the root file's folder, or a URL); ``pointer`` is canonical."""

    doc: str
    pointer: str

    def render(self) -> str:
        return f"{self.doc}#{self.pointer}"

    def child(self, *tokens: str | int) -> Location:
        return Location(self.doc, join_pointer(self.pointer, *tokens))


class RefError(Exception):
    """A ``$ref`` (or a pointer) that does not resolve. ``path`` collects, innermost first (as the
    stack unwinds), the tokens from where conversion started to the failing ``$ref``; ``where``
    is filled in by the first caller that knows the absolute location."""

    def __init__(self, ref: str, message: str) -> None:
        super().__init__(message)
        self.ref = ref
        self.message = message
        self.path: list[str] = []
        self.where: Location | None = None

    def locate(self, doc: str, pointer: str) -> RefError:
        if self.where is None:
            self.where = Location(doc, join_pointer(pointer, *reversed(self.path)))
        return self


class RemoteRefRefused(RefError):
    """A reference the loader refuses to follow: remote while remote references are not allowed
    (or, as :class:`OutsideRefRefused`, a file outside the allowed folders). Fatal for the spec."""


class OutsideRefRefused(RemoteRefRefused):
    """A reference to a file outside the spec's folder and the allowed roots, refused unread."""


class DocumentUnavailable(Exception):
    """The loader could not read or parse a referenced document."""


@dataclass(slots=True)
class Document:
    key: str  # "" for the root document
    base: str  # absolute file path or URL that relative references resolve against
    data: Any
    raw: bytes
    ids: dict[str, str] | None = None  # `$id` -> pointer, built on first need
    anchors: dict[tuple[str, str], str] = field(default_factory=dict)


# absolute path or URL -> Document; raises DocumentUnavailable (or RemoteRefRefused, OutsideRefRefused)
Loader = Callable[[str], Document]


class Documents:
    """The root document plus every document it references, loaded on first use, memoised."""

    def __init__(self, root: Document, load: Loader) -> None:
        self.root = root
        self._load = load
        self._by_key: dict[str, Document] = {"": root}
        self._by_target: dict[str, Document] = {root.base: root}
        self._unavailable: dict[str, str] = {}

    def __getitem__(self, key: str) -> Document:
        return self._by_key[key]

    def loaded(self) -> list[Document]:
        """Every document read so far, the root first, then by key (a deterministic order)."""
        return [self.root, *(self._by_key[k] for k in sorted(self._by_key) if k)]

    # -- resolution -----------------------------------------------------------------------

    def resolve(self, ref: str, doc: str) -> Location:
        """The location ``ref``, written inside document ``doc``, points at (not checked to exist)."""
        base, _, fragment = ref.partition("#")
        fragment = unquote(fragment)
        current = self._by_key[doc]
        if not base:
            target, resource = current, ""
        else:
            found = self._by_id(base, current)
            if found is not None:
                target, resource = found
            else:
                target, resource = self._document(self.target_of(base, current), ref), ""
        if not fragment or fragment.startswith("/"):
            tokens = pointer_tokens(resource) + pointer_tokens(fragment)
            return Location(target.key, join_pointer("", *tokens))
        anchored = self._anchor(target, base, fragment)
        if anchored is None:
            raise RefError(ref, f"$ref {ref!r}: no $anchor {fragment!r}")
        return Location(target.key, anchored)

    def node(self, loc: Location, ref: str = "") -> Any:
        """The node at ``loc``; :class:`RefError` when the pointer leads nowhere."""
        try:
            return resolve_pointer(self._by_key[loc.doc].data, loc.pointer)
        except PointerError as exc:
            shown = ref or loc.render()
            raise RefError(shown, f"$ref {shown!r} does not resolve ({exc} in {loc.render()})") from None

    def lookup(self, ref: str, doc: str) -> tuple[Any, Location]:
        loc = self.resolve(ref, doc)
        return self.node(loc, ref), loc

    @staticmethod
    def target_of(base: str, current: Document) -> str:
        """The absolute path or URL a reference's document part names, seen from ``current``."""
        if is_remote(base) or is_remote(current.base):
            return urljoin(current.base, base)
        if base.startswith("file://"):
            return unquote(urlsplit(base).path)
        return posixpath.normpath(posixpath.join(posixpath.dirname(current.base), unquote(base)))

    def _document(self, target: str, ref: str) -> Document:
        if target in self._by_target:
            return self._by_target[target]
        if target in self._unavailable:
            raise RefError(ref, f"$ref {ref!r}: {self._unavailable[target]}")
        try:
            loaded = self._load(target)
        except DocumentUnavailable as exc:
            self._unavailable[target] = str(exc)
            raise RefError(ref, f"$ref {ref!r}: {exc}") from None
        self._by_target[target] = loaded
        self._by_key[loaded.key] = loaded
        return loaded

    # -- $id and $anchor (OpenAPI 3.1 / JSON Schema) --------------------------------------

    def _index(self, doc: Document) -> dict[str, str]:
        if doc.ids is None:
            doc.ids = {}
            for pointer, ident, anchor, scope in _walk_ids(doc.data):
                if ident is not None:
                    doc.ids.setdefault(ident, pointer)
                if anchor is not None:
                    doc.anchors.setdefault((scope, anchor), pointer)
                    doc.anchors.setdefault(("", anchor), pointer)
        return doc.ids

    def _by_id(self, base: str, current: Document) -> tuple[Document, str] | None:
        for doc in (current, self.root) if current is not self.root else (current,):
            if b"$id" not in doc.raw:  # spares walking a large document that has no `$id` at all
                continue
            pointer = self._index(doc).get(base)
            if pointer is not None:
                return doc, pointer
        return None

    def _anchor(self, doc: Document, scope: str, name: str) -> str | None:
        self._index(doc)
        return doc.anchors.get((scope, name)) or doc.anchors.get(("", name))


def _walk_ids(data: Any) -> Iterator[tuple[str, str | None, str | None, str]]:
    """(pointer, $id, $anchor or $dynamicAnchor, enclosing $id) for every object that has one."""
    stack: list[tuple[Any, str, str]] = [(data, "", "")]
    while stack:
        node, pointer, scope = stack.pop()
        if isinstance(node, dict):
            ident = node.get("$id")
            ident = ident if isinstance(ident, str) else None
            anchor = node.get("$anchor", node.get("$dynamicAnchor"))
            anchor = anchor if isinstance(anchor, str) else None
            if ident is not None or anchor is not None:
                yield pointer, ident, anchor, scope
            inner = ident if ident is not None else scope
            for key, value in node.items():
                if isinstance(value, dict | list):
                    stack.append((value, join_pointer(pointer, key), inner))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, dict | list):
                    stack.append((value, join_pointer(pointer, i), scope))


def walk_refs(data: Any) -> Iterator[tuple[str, str]]:
    """(pointer of the object holding it, ref) for every string ``$ref`` in ``data``."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, pointer = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                yield pointer, ref
            for key in reversed(list(node)):
                value = node[key]
                if isinstance(value, dict | list):
                    stack.append((value, join_pointer(pointer, key)))
        elif isinstance(node, list):
            for i in range(len(node) - 1, -1, -1):
                if isinstance(node[i], dict | list):
                    stack.append((node[i], join_pointer(pointer, i)))
