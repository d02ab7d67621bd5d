"""JSON values as the generator and the validity checks look at them: the scalar leaves of an
argument object, and the *loose* equality by which an argument is said to be taken from an output.

Pure functions only. JSON Pointer (RFC 6901) and the strict JSON equality that replay compares
recorded and replayed bodies by live in :mod:`simulator.canonical` (``same_value``: ``"12"`` is
not ``12`` there); the loose one here
(:func:`loosely_equal`) accepts a numeric id passed as its decimal string, because a tool call
may put an integer id into a path or a header as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from simulator.canonical import escape_token, pointer_tokens


def argument_pointer(name: str) -> str:
    """The pointer of a top-level argument: ``petId`` -> ``/petId``."""
    return "/" + escape_token(name)


def top_argument(pointer: str) -> str:
    """The top-level argument a pointer into the arguments lies in: ``/body/name`` -> ``body``."""
    tokens = pointer_tokens(pointer)
    return tokens[0] if tokens else ""


def leaves(value: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    """(pointer, scalar) for every scalar inside ``value``, in document order (dict keys as
    stored). An empty object or list has no leaves."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{pointer}/{escape_token(str(key))}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, f"{pointer}/{index}")
    else:
        yield pointer, value


def keyed_leaves(value: Any) -> list[tuple[str, Any, str, str]]:
    """(pointer, scalar, :func:`leaf_key` of the pointer, :func:`top_argument` of the pointer)
    for every scalar of :func:`leaves`, in the same order: one walk that knows the tokens as it
    goes, so no pointer is split again."""
    out: list[tuple[str, Any, str, str]] = []
    _keyed_leaves(value, "", "", None, out)
    return out


def _keyed_leaves(value: Any, pointer: str, key: str, top: str | None, out: list[tuple[str, Any, str, str]]) -> None:
    if isinstance(value, dict):
        for name, item in value.items():
            token = str(name)
            at, near, first = f"{pointer}/{escape_token(token)}", key if token.isdigit() else token, \
                token if top is None else top
            if isinstance(item, (dict, list)):
                _keyed_leaves(item, at, near, first, out)
            else:  # most leaves are a scalar of an object: no call for it
                out.append((at, item, near, first))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _keyed_leaves(item, f"{pointer}/{index}", key, str(index) if top is None else top, out)
    else:
        out.append((pointer, value, key, "" if top is None else top))


def leaf_key(pointer: str) -> str:
    """The nearest property name of a pointer (list indices skipped): ``/tags/0`` -> ``tags``."""
    for token in reversed(pointer_tokens(pointer)):
        if not token.isdigit():
            return token
    return ""


def is_nontrivial(value: Any) -> bool:
    """Values worth tracing to an earlier output: strings of 3+ characters, numbers not 0/1."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return len(value) >= 3
    if isinstance(value, (int, float)):
        return value not in (0, 1)
    return False


def loosely_equal(a: Any, b: Any) -> bool:
    """Equal scalars, where a numeric id given as its decimal string (``"12"``) equals the
    integer (``12``) and ``1`` equals ``1.0``; booleans equal nothing (a flag is never an id).

    Lenient on purpose, and only for tracing where an argument came from: a tool call carries an
    integer id from an earlier response as text in a path or header, and that is still taking it
    from the output. Objects and lists are never loosely equal (an argument source names one
    scalar). For comparing JSON values as such use the strict
    :func:`simulator.canonical.same_value`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, str) and isinstance(b, int):
        return a == str(b)
    if isinstance(a, int) and isinstance(b, str):
        return str(a) == b
    return False
