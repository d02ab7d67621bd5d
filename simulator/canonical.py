"""The bytes the kit hashes, compares and addresses: canonical JSON, JSON Pointer, strict equality.

The bottom layer of the kit: it imports nothing of ours, and every package uses it wherever a
value is hashed (state hashes, seeded choices, sample ids, cache keys), compared (replay against
the record) or addressed (RFC 6901 pointers). Defining these once is what keeps "same spec, seed
and requests give byte-identical outputs" true across modules.

* :func:`canonical_json`: sorted keys, no whitespace, UTF-8. orjson's bytes; for what orjson
  refuses (integers beyond 64 bits, lone surrogates) the standard library's, ASCII-escaped so a
  lone surrogate becomes ``\\udcff`` rather than an encoding error.
* JSON Pointer (RFC 6901): :func:`escape_token`, :func:`unescape_token`, :func:`pointer_tokens`,
  :func:`join_pointer`, :func:`resolve_pointer` (strict: no leading zeros, no ``-``).
* :func:`same_value`: strict JSON equality (``"12"`` is not ``12``, ``true`` is not ``1``, but
  ``1`` is ``1.0`` and key order does not matter); :func:`first_difference`: where two values'
  canonical bytes first differ (there ``1`` and ``1.0`` differ).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import orjson

MISSING = "<missing>"
"""What :func:`first_difference` reports on the side where a key or list item is absent."""


# --- canonical JSON -------------------------------------------------------------------------------


def json_bytes(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact JSON (no whitespace, UTF-8), keys sorted when ``sort_keys``. orjson; non-string
    keys (``1``, ``True``) written as strings; for what orjson refuses, integers beyond 64 bits (a
    client may send ``page=-2122649807149195281402167296``) and lone surrogates, the standard
    library, ASCII-escaped. Any other type is a :class:`TypeError`."""
    option = orjson.OPT_SORT_KEYS if sort_keys else None
    try:
        return orjson.dumps(value, option=option)
    except TypeError:
        pass
    try:  # only now: OPT_NON_STR_KEYS doubles orjson's time on every dict, and keys are str
        return orjson.dumps(value, option=(option or 0) | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, sort_keys=sort_keys, separators=(",", ":")).encode()


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace: the bytes every hash in the kit is taken over."""
    return json_bytes(value, sort_keys=True)


def strict_canonical_json(value: Any) -> bytes:
    """:func:`canonical_json`'s bytes where orjson alone can write ``value``, else
    :class:`TypeError` (integers beyond 64 bits, lone surrogates, non-string keys): for records
    that must read back unchanged with orjson, such as dataset lines."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def canonical_sha256(value: Any) -> str:
    """Hex sha256 of the canonical JSON of ``value``."""
    return sha256_hex(canonical_json(value))


def pretty_json(value: Any) -> str:
    """Sorted keys, two-space indent, non-ASCII as is, a final newline: the text of the reports
    and certificates people read (the standard library's format, kept byte for byte)."""
    if _orjson_writes_it_alike(value):  # the standard library indents in Python: 20x slower
        try:
            return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
        except TypeError:  # integers beyond 64 bits, lone surrogates
            pass
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


_ALIKE = frozenset({dict, list, str, int, bool, type(None)})


def _orjson_writes_it_alike(value: Any) -> bool:
    """Whether ``value`` holds only the types whose indented, sorted JSON orjson writes as the
    standard library does (what it writes at all): every float is written otherwise (``1e-07``
    against ``1e-7``), and subclasses and other types are left to the standard library."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind not in _ALIKE:
            return False
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return True


# --- JSON Pointer (RFC 6901) ----------------------------------------------------------------------


class PointerError(LookupError):
    """A JSON pointer that is malformed or names nothing in the document."""


def escape_token(token: str) -> str:
    """One reference token: ``~`` -> ``~0``, then ``/`` -> ``~1``."""
    return token.replace("~", "~0").replace("/", "~1") if "~" in token or "/" in token else token


def unescape_token(token: str) -> str:
    """The inverse of :func:`escape_token`: ``~1`` -> ``/``, then ``~0`` -> ``~``."""
    return token.replace("~1", "/").replace("~0", "~") if "~" in token else token


def pointer_tokens(pointer: str) -> list[str]:
    """The unescaped reference tokens of ``pointer`` (``""`` has none);
    :class:`PointerError` when a non-empty pointer does not start with ``/``."""
    if not pointer:
        return []
    if not pointer.startswith("/"):
        raise PointerError(f"{pointer!r} is not a JSON pointer (it must start with '/')")
    return [unescape_token(raw) for raw in pointer[1:].split("/")]


def join_pointer(pointer: str, *tokens: str | int) -> str:
    """``pointer`` extended by ``tokens``, each escaped: ``join_pointer("/a", "b/c", 0)`` is
    ``/a/b~1c/0``."""
    return pointer + "".join("/" + escape_token(str(token)) for token in tokens)


def resolve_tokens(document: Any, tokens: Iterable[str]) -> Any:
    """The value the unescaped ``tokens`` lead to, by RFC 6901's rules: a list index is a
    decimal without leading zeros and below the length (``-`` names nothing); else
    :class:`PointerError`."""
    node = document
    for token in tokens:
        if isinstance(node, dict):
            if token not in node:
                raise PointerError(f"no key {token!r}")
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node) or (len(token) > 1 and token[0] == "0"):
                raise PointerError(f"no index {token!r} in a list of {len(node)}")
            node = node[int(token)]
        else:
            raise PointerError(f"cannot step into a {type(node).__name__} with {token!r}")
    return node


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value a JSON pointer names in ``document``; :class:`PointerError` if none."""
    return resolve_tokens(document, pointer_tokens(pointer))


def lookup_pointer(document: Any, pointer: str) -> tuple[bool, Any]:
    """``(True, value)`` where :func:`resolve_pointer` finds one, else ``(False, None)``."""
    try:
        return True, resolve_pointer(document, pointer)
    except PointerError:
        return False, None


# --- strict equality ------------------------------------------------------------------------------


def same_value(a: Any, b: Any) -> bool:
    """Equal as JSON values: key order does not matter and ``1`` is ``1.0``, but ``true`` is not
    ``1`` and ``"1"`` is not ``1`` (types are exact otherwise)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def first_difference(expected: Any, got: Any, pointer: str = "") -> tuple[str, Any, Any] | None:
    """The JSON pointer of the first place two JSON values differ (keys in sorted order), with
    the two values there (:data:`MISSING` for an absent side); None when their canonical JSON is
    the same. Stricter than :func:`same_value`: ``1`` and ``1.0`` differ here."""
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in sorted(set(expected) | set(got)):
            here = join_pointer(pointer, key)
            if key not in expected or key not in got:
                return here, expected.get(key, MISSING), got.get(key, MISSING)
            found = first_difference(expected[key], got[key], here)
            if found is not None:
                return found
        return None
    if isinstance(expected, list) and isinstance(got, list):
        for i, (a, b) in enumerate(zip(expected, got, strict=False)):
            found = first_difference(a, b, f"{pointer}/{i}")
            if found is not None:
                return found
        if len(expected) != len(got):
            n = min(len(expected), len(got))
            return f"{pointer}/{n}", expected[n] if n < len(expected) else MISSING, got[n] if n < len(got) else MISSING
        return None
    return None if canonical_json(expected) == canonical_json(got) else (pointer, expected, got)
