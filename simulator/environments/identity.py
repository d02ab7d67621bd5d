"""Identity: which fields name a record, and which writes create one.

An item path names a record by *some* value: its id, or a username, a slug, a key (``GET
/orgs/acme-labs`` for an org whose create answered ``{"id": 3611, "username": "acme-labs"}``).
Besides the id field a resource has *alias* fields; the session finds a record by any of them
(``simulator.state.store.Session.find``). Pure functions of the spec.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from simulator.spec.model import JSONSchema, Operation
from simulator.spec.navigation import object_properties, primary_type

from .envelopes import unwrap_record

ID_SUFFIX = re.compile(r"(?i)^(.+?)[-_]?(id|key|slug|name|uuid|code|number)$")
# record fields an item path may address a record by, besides its id field
ALIAS_NAMES = ("id", "uuid", "key", "slug", "name", "username", "login", "handle", "code", "number", "_id", "$id")
_SEPARATORS = re.compile(r"[-_.]")  # between the words of a name: call_sid, x-request-id, data.id
# a PUT on an item path that says it creates (or has no body to replace with) creates when absent
_CREATES = re.compile(r"(?i)\bcreates?\b|\bupsert|\badds?\b|\bputs?\b.*\bif\b.*\bnot\b.*\bexist")


def spelling(name: str) -> str:
    """A name without its case and word separators: ``CallSid``, ``call_sid`` -> ``callsid``."""
    return _SEPARATORS.sub("", name).lower()


def spellings(names: Iterable[str]) -> dict[str, str]:
    """:func:`spelling` -> the one name spelled so (a spelling two names share is left out)."""
    found: dict[str, str | None] = {}
    for name in names:
        key = spelling(name)
        found[key] = None if key in found else name
    return {key: name for key, name in found.items() if name is not None}


def field_named(props: Mapping[str, object], spelled: Mapping[str, str], name: str) -> str | None:
    """The record field a request names ``name``: that property, else the one spelled the same
    (``spelled``, :func:`spellings` of ``props``): twilio writes ``Label`` and ``AccountSid``
    for the ``label`` and ``account_sid`` its records hold."""
    return name if name in props else spelled.get(spelling(name))


def json_body_schema(op: Operation) -> JSONSchema | None:
    if op.request_body is None:
        return None
    for media, schema in op.request_body.content.items():
        if "json" in media or "form" in media:
            return schema
    return None


def param_field_names(id_param: str | None) -> list[str]:
    """Field names an item path parameter may stand for: ``group_key`` -> group_key, key, ..."""
    names = [id_param] if id_param else []
    m = ID_SUFFIX.match(id_param or "")
    if m:
        names += [m.group(2).lower(), f"{m.group(1)}_{m.group(2).lower()}"]
    return names


def alias_fields(record: JSONSchema | None, id_param: str | None, id_field: str | None) -> tuple[str, ...]:
    """Scalar record fields that name a record (username, slug, id ...), besides the id field:
    an item path may address a record by any of them, whatever the create returned as ``id``."""
    props = object_properties(record, record) if record else {}
    out = []
    for name in dict.fromkeys((*param_field_names(id_param), *ALIAS_NAMES)):
        if name and name != id_field and name in props and \
                primary_type(record or {}, props[name]) in ("string", "integer"):
            out.append(name)
    return tuple(out)


def written_aliases(record: JSONSchema | None, id_param: str | None, creates: list[Operation]) -> tuple[str, ...]:
    """Fields a create's body names the record by that its representation lacks (Adafruit's
    group ``key``, a Netlify branch's ``branch_id``): kept with the record, as aliases."""
    props = object_properties(record, record) if record else {}
    found: list[str] = []
    for op in creates:
        body = json_body_schema(op)
        if body is None:
            continue
        inner, _ = unwrap_record(body, body)
        body_props = object_properties(body, inner)
        found += [name for name in param_field_names(id_param)
                  if name in body_props and name not in props and name not in found
                  and primary_type(body, body_props[name]) in ("string", "integer")]
    return tuple(found)


def creates_when_absent(op: Operation) -> bool:
    """A PUT on an item path that documents 201, says it creates (``Create or update``,
    ``Add a collaborator``), or has no body to replace a record with (``PUT /user/following/{u}``)."""
    if op.method != "PUT":
        return False
    if any(r.status == "201" for r in op.responses) or op.request_body is None:
        return True
    return bool(_CREATES.search(f"{op.summary} {op.description} {op.operation_id}"))
