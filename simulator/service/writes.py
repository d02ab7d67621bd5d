"""What a write stores: every written field as sent, in the stored schema's type.

A request schema and the record schema an API answers with often disagree on a field's type
(Adafruit sends ``lat`` as the string ``"37.591633"`` and stores the number ``37.591633``).
:func:`stored_changes` converts each written field to the stored schema where the conversion is
*lossless*:

* decimal text <-> number (``"37.59"`` -> ``37.59``, ``"7"`` -> ``7``, ``7`` -> ``"7"``);
  an integer field takes only integral values (``7.0`` -> ``7``, never ``7.5``);
* ``"true"``/``"false"`` <-> boolean;
* a scalar where the stored schema has an object becomes that object's identifying member (a
  region sent as ``"ams1"`` is stored as ``{"slug": "ams1", ...}``), a boolean its ``enabled``
  flag, the rest generated later;
* objects and arrays member by member; members the stored schema does not have are dropped
  (nothing could show them), and so is a ``null`` the stored schema does not admit.

Anything else refuses the write with :class:`WriteRefused`, naming the field and why: the
simulator never stores a made-up value in place of a written one.

Secrets (:func:`is_secret_name`) and ``writeOnly`` fields are stored like any other field, but
responses leave them out (``simulator.service.handlers``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from simulator.canonical import escape_token
from simulator.environments.envelopes import ID_NAMES
from simulator.environments.identity import field_named, spellings
from simulator.spec.model import JSONSchema
from simulator.spec.navigation import array_items, deref, object_properties, primary_type
from simulator.state.memo import BoundedMemo

Validity = Callable[[JSONSchema, JSONSchema, Any], bool]

_INT = re.compile(r"[+-]?\d+")
_NUM = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# words that make a field a secret: passwords, secrets, tokens, API and private keys
_SECRET = re.compile(r"(password|passwd|passphrase|secret|token|apikey|privatekey|clientsecret)$|^(password|secret)")
_MAX_DEPTH = 8
_ROOTS = 256  # record schemas whose properties a converter keeps


class WriteRefused(ValueError):
    """A written value that cannot be stored as sent: ``pointer`` names where, ``reason`` why."""

    def __init__(self, pointer: str, reason: str) -> None:
        self.pointer = pointer
        self.reason = reason
        super().__init__(f"{pointer or '/'}: {reason}")


def is_secret_name(name: str) -> bool:
    """A field that holds a secret, by name: it is stored but never echoed back.

    The rule: once ``-``/``_`` and case are dropped, the name ends with ``password``, ``passwd``,
    ``passphrase``, ``secret``, ``token``, ``apikey`` or ``privatekey``, or starts with
    ``password`` or ``secret`` (``password``, ``new_password``, ``client_secret``, ``api_key``,
    ``accessToken``, ``password_confirmation``). ``token_type`` or ``secretary_name`` are not.
    """
    flat = name.replace("-", "").replace("_", "").lower()
    return bool(_SECRET.search(flat)) and not flat.startswith("secretar")


def _types(root: JSONSchema, schema: JSONSchema) -> list[str]:
    """The JSON types a schema admits, in its own order (first branch types for compositions)."""
    t = schema.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [str(x) for x in t]
    found = primary_type(root, schema)
    return [found] if found else []


def _scalar_as(value: Any, target: str) -> tuple[bool, Any]:
    """(converted, value) for a lossless scalar conversion to ``target``."""
    if isinstance(value, bool):
        if target == "string":
            return True, "true" if value else "false"
        return False, value
    if target in ("number", "integer"):
        number: Any = value
        if isinstance(value, str):
            text = value.strip()
            if _INT.fullmatch(text):
                number = int(text)
            elif _NUM.fullmatch(text):
                number = float(text)
            else:
                return False, value
        if not isinstance(number, (int, float)):
            return False, value
        if target == "integer":
            if isinstance(number, float) and not number.is_integer():
                return False, value
            return True, int(number)
        return True, number
    if target == "string" and isinstance(value, (int, float)):
        return True, str(value) if isinstance(value, int) else orjson.dumps(value).decode()
    if target == "boolean" and value in ("true", "false"):
        return True, value == "true"
    return False, value


class Converter:
    """Converts written values to a stored schema; ``is_valid`` checks a value against a
    sub-schema of a root (the shaper's cached validators)."""

    def __init__(self, is_valid: Validity) -> None:
        self.is_valid = is_valid
        # id(root) -> (root, its properties, their spellings): holding the root keeps its id
        # unique while kept
        self._props: BoundedMemo[int, tuple[JSONSchema, dict[str, JSONSchema], dict[str, str]]] = BoundedMemo(
            _ROOTS)

    def changes(self, root: JSONSchema, changes: dict[str, Any]) -> dict[str, Any]:
        """Each top-level written field in the stored record schema's type (see the module)."""
        hit = self._props.get(id(root))
        if hit is None or hit[0] is not root:
            props = object_properties(root, root)
            hit = self._props[id(root)] = (root, props, spellings(props))
        props, spelled = hit[1], hit[2]
        out: dict[str, Any] = {}
        for name, value in changes.items():
            field = field_named(props, spelled, name)  # twilio's Label is its records' label
            if field is not None and (field == name or field not in changes):  # the exact name wins
                converted = self.value(root, props[field], value, "/" + escape_token(name), 0)
                if converted is not _DROP:
                    out[field] = converted
        return out

    def value(self, root: JSONSchema, schema: JSONSchema, value: Any, pointer: str, depth: int) -> Any:
        if self.is_valid(root, schema, value):
            return value
        resolved = deref(root, schema)
        types = _types(root, resolved)
        if value is None:
            return _DROP  # the stored representation has no null here: the field is not stored
        if depth < _MAX_DEPTH and isinstance(value, dict) and "object" in types:
            return self._object(root, resolved, value, pointer, depth)
        if depth < _MAX_DEPTH and isinstance(value, list) and "array" in types:
            items = array_items(root, resolved) or {}
            converted = [self.value(root, items, v, f"{pointer}/{i}", depth + 1) for i, v in enumerate(value)]
            converted = [v for v in converted if v is not _DROP]
            if any(isinstance(v, dict) for v in converted):
                return converted  # objects are checked member by member; what they lack is generated later
            return self._checked(root, schema, converted, pointer)
        if not isinstance(value, (dict, list)):
            for target in types:
                if target == "object":
                    expanded = self._reference(root, resolved, value, depth)
                    if expanded is not None:
                        return expanded
                ok, converted = _scalar_as(value, target)
                if ok and self.is_valid(root, schema, converted):
                    return converted
        return self._checked(root, schema, value, pointer)

    def _object(self, root: JSONSchema, schema: JSONSchema, value: dict[str, Any], pointer: str,
                depth: int) -> Any:
        props = object_properties(root, schema)
        extra_allowed = schema.get("additionalProperties", True) is not False
        out: dict[str, Any] = {}
        for name, member in value.items():
            if name in props:
                converted = self.value(root, props[name], member, f"{pointer}/{escape_token(name)}", depth + 1)
                if converted is not _DROP:
                    out[name] = converted
            elif extra_allowed and not props:
                out[name] = member  # a free-form map (metadata, labels): stored as sent
        # members the stored schema requires and the write left out are generated later: an
        # object is checked member by member here, not as a whole
        return out

    def _reference(self, root: JSONSchema, schema: JSONSchema, value: Any, depth: int) -> dict[str, Any] | None:
        """A scalar standing for an object: the object with it in its identifying member; a
        boolean, the object's ``enabled`` flag (GitHub's branch protection takes
        ``"allow_deletions": true`` and answers ``{"enabled": true}``)."""
        props = object_properties(root, schema)
        if depth >= _MAX_DEPTH:
            return None
        names = ("enabled",) if isinstance(value, bool) else (*ID_NAMES, "login", "username", "code", "number", "ref")
        for name in names:  # ref: a git branch
            if name in props:
                try:
                    converted = self.value(root, props[name], value, "", depth + 1)
                except WriteRefused:  # "ubuntu-20-04-x64" is no image id, but may be its slug
                    continue
                if converted is not _DROP:
                    return {name: converted}
        return None

    def _checked(self, root: JSONSchema, schema: JSONSchema, value: Any, pointer: str) -> Any:
        if self.is_valid(root, schema, value):
            return value
        raise WriteRefused(pointer, _why(root, schema, value))


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


_DROP: Any = _Drop()


def _why(root: JSONSchema, schema: JSONSchema, value: Any) -> str:
    resolved = deref(root, schema)
    shown = orjson.dumps(value).decode()[:80]
    types = _types(root, resolved)
    if "enum" in resolved:
        return f"{shown} is not one of the stored values {resolved['enum'][:10]}"
    if types and not any(_fits_type(value, t) for t in types):
        return f"{shown} cannot be stored as {' or '.join(types)} without losing what was sent"
    return f"{shown} does not fit the stored field's schema (format, length or range)"


def _fits_type(value: Any, target: str) -> bool:
    kinds: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float),
                                          "boolean": (bool,), "object": (dict,), "array": (list,)}
    if isinstance(value, bool) and target in ("integer", "number"):
        return False
    return isinstance(value, kinds.get(target, (object,)))
