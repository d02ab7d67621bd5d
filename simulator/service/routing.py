"""Path templates and the router: which operations a concrete path addresses.

A template segment is a *literal* (``pets``), a *bare parameter* (``{petId}``) or *mixed*
(``{name}:activate``, ``{sha}.{diffType}``, ``v{major}``). Parameter names are any text
without braces (``user-id``, ``api.version``): the regex names its groups ``p0``, ``p1`` ...
and the template keeps the real names.

Routing is by specificity, segment by segment from the left: a literal segment beats a mixed
one, a mixed one with more literal characters beats one with fewer, and any of them beats a
bare parameter (``/v1/{name}:activate`` before ``/v1/{name}``, ``/pet/findByStatus`` before
``/pet/{petId}``). Among the templates that match, the most specific one that has the request's
method answers; when none has it, the most specific match decides the 405.

The hot path: templates are bucketed by depth and first segment, so a request tries only the
templates that could match it, most specific first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import unquote

_PARAM = re.compile(r"\{([^{}]+)\}")
_ANY = ""  # bucket key of templates whose first segment is not a plain literal

T = TypeVar("T")


def template_segments(template: str) -> list[str]:
    return [s for s in template.split("/") if s]


def segment_rank(segment: str) -> tuple[int, int]:
    """How specific one template segment is: (2, length) literal, (1, literal characters)
    mixed, (0, 0) a bare parameter."""
    params = _PARAM.findall(segment)
    if not params:
        return 2, len(segment)
    literal = len(_PARAM.sub("", segment))
    return (1, literal) if literal else (0, 0)


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """A compiled path template: regex, parameter names and specificity."""

    template: str
    regex: re.Pattern[str]
    names: tuple[str, ...]
    rank: tuple[tuple[int, int], ...]

    @classmethod
    def compile(cls, template: str) -> PathTemplate:
        parts: list[str] = []
        names: list[str] = []
        pos = 0
        for m in _PARAM.finditer(template):
            parts.append(re.escape(template[pos:m.start()]))
            parts.append(f"(?P<p{len(names)}>[^/]+)")
            names.append(m.group(1))
            pos = m.end()
        parts.append(re.escape(template[pos:]))
        regex = re.compile("".join(parts) + "/?$")
        rank = tuple(segment_rank(s) for s in template_segments(template))
        return cls(template, regex, tuple(names), rank)

    def match(self, path: str) -> dict[str, str] | None:
        """Parameter name -> decoded value, or None when ``path`` does not fit the template."""
        m = self.regex.match(path)
        if m is None:
            return None
        return {name: unquote(m.group(f"p{i}")) for i, name in enumerate(self.names)}


@dataclass(slots=True)
class Route(Generic[T]):
    """One path template and the things (operations) registered at it."""

    path: PathTemplate
    targets: list[T] = field(default_factory=list)


def _bucket(segments: list[str]) -> tuple[int, str]:
    first = segments[0] if segments else ""
    return len(segments), first if first and "{" not in first else _ANY


class Router(Generic[T]):
    """Templates registered with their targets; ``matches`` yields them most specific first."""

    def __init__(self) -> None:
        self._by_template: dict[str, Route[T]] = {}
        self._buckets: dict[tuple[int, str], list[Route[T]]] = {}

    def add(self, template: str, target: T) -> None:
        route = self._by_template.get(template)
        if route is None:
            route = self._by_template[template] = Route(PathTemplate.compile(template))
            bucket = self._buckets.setdefault(_bucket(template_segments(template)), [])
            bucket.append(route)
            bucket.sort(key=lambda r: (tuple(-a for pair in r.path.rank for a in pair), r.path.template))
        route.targets.append(target)

    def matches(self, path: str) -> Iterator[tuple[Route[T], dict[str, str]]]:
        """Every route whose template fits ``path``, most specific first, with its values."""
        segments = template_segments(path)
        depth = len(segments)
        first = segments[0] if segments else ""
        # a literal first segment beats a parameter there: its bucket goes first
        for key in ((depth, first), (depth, _ANY)) if first else ((depth, _ANY),):
            for route in self._buckets.get(key, ()):
                values = route.path.match(path)
                if values is not None:
                    yield route, values
