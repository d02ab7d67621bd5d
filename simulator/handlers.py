"""What each kind of operation does: (session, parsed request) -> (status, body).

Pure over the :class:`~simulator.state.Session` it is given (the only thing it mutates) and
the memoised :class:`~simulator.state.World`. Every body returned here has been conformed to
the operation's response schema for the returned status.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .model import JSONSchema, Operation, ResponseSpec
from .resources import _WRAPPER_KEYS, Binding, Resource
from .schemas import array_items, deref, object_properties, primary_type
from .shaping import Shaper
from .state import Record, Session, World, canonical_json, id_key, sha256_hex
from .validation import ParsedRequest, media_kind

NO_BODY = object()

LIMIT_PARAMS = ("limit", "per_page", "perPage", "page_size", "pageSize", "size", "max_results",
                "maxResults", "top", "first", "count", "pagelen", "rows")
OFFSET_PARAMS = ("offset", "skip", "start", "from")
PAGE_PARAMS = ("page", "page_number", "pageNumber")
PAGINATION = frozenset(LIMIT_PARAMS + OFFSET_PARAMS + PAGE_PARAMS + ("sort", "order", "cursor", "fields"))
_CREATED = ("created_at", "createdAt", "created", "creationDate", "dateCreated", "created_on")
_UPDATED = ("updated_at", "updatedAt", "modified", "modified_at", "modifiedAt", "last_modified",
            "lastModified", "updated", "updated_on")


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: Any  # NO_BODY for an empty response
    media_type: str | None = None


class Conflict(Exception):
    """A create of a record that exists, on an operation that documents 409."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class NotFound(Exception):
    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


def documented(op: Operation, status: int) -> ResponseSpec | None:
    """The response object that covers ``status``: exact, then ``4XX``-style, then default."""
    by_status = {r.status.upper(): r for r in op.responses}
    return by_status.get(str(status)) or by_status.get(f"{status // 100}XX") or by_status.get("DEFAULT")


def success_status(op: Operation, preferred: tuple[int, ...]) -> int:
    codes = sorted(int(r.status) for r in op.responses if r.status.isdigit() and r.status.startswith("2"))
    for code in preferred:
        if code in codes:
            return code
    return codes[0] if codes else preferred[0]


def choose_media(response: ResponseSpec | None) -> tuple[str | None, JSONSchema | None]:
    """The media type we answer in (JSON first) and its schema; (None, None) for no body."""
    if response is None or not response.content:
        return None, None
    ranked = sorted(
        response.content,
        key=lambda m: (m != "application/json", media_kind(m) != "json", not m.startswith("text/"), m),
    )
    media = ranked[0]
    return media, response.content[media]


class Handlers:
    def __init__(self, seed: str, world: World, shaper: Shaper, epoch: dt.datetime) -> None:
        self.seed = seed
        self.world = world
        self.shaper = shaper
        self.epoch = epoch
        self._read_only: dict[tuple[str, str], frozenset[str]] = {}

    # -- helpers ------------------------------------------------------------------------------

    def now(self, session: Session) -> str:
        stamp = self.epoch + dt.timedelta(minutes=session.writes)
        return stamp.isoformat().replace("+00:00", "Z")

    def respond(self, op: Operation, status: int, hint: Any, seed: str, *, inputs: dict[str, Any] | None = None,
                res: Resource | None = None) -> Outcome:
        media, schema = choose_media(documented(op, status))
        if media is None or schema is None:
            return Outcome(status, NO_BODY)
        if res is not None and isinstance(hint, dict):
            hint = wrap_record(schema, hint, res, status)
        body = self.shaper.conform(schema, schema, hint, seed, inputs=inputs)
        return Outcome(status, body, media)

    def stamp(self, res: Resource, record: Record, session: Session, fields: tuple[str, ...]) -> Record:
        if not res.schema:
            return record
        props = object_properties(res.schema, res.schema)
        now = self.now(session)
        for name in fields:
            if name in props and self.shaper.is_valid(res.schema, props[name], now):
                record = {**record, name: now}
        return record

    def settable(self, parsed: ParsedRequest) -> Record:
        """The body members a client may set: ``readOnly`` ones (a server-assigned id, a
        creation time) are ignored, as the server of the spec would ignore them."""
        if not isinstance(parsed.body, dict):
            return {}
        key = (parsed.operation.operation_id, parsed.media_type or "")
        read_only = self._read_only.get(key)
        if read_only is None:
            read_only = self._read_only[key] = read_only_properties(parsed.operation, parsed.media_type)
        if not read_only:
            return dict(parsed.body)
        return {k: v for k, v in parsed.body.items() if k not in read_only}

    @staticmethod
    def scope_of(res: Resource, parsed: ParsedRequest) -> tuple[str, ...]:
        return tuple(id_key(parsed.path_params.get(p, "")) for p in res.scope_params)

    # -- kinds --------------------------------------------------------------------------------

    def handle(self, session: Session, binding: Binding, res: Resource | None, parsed: ParsedRequest) -> Outcome:
        op = parsed.operation
        if res is None or binding.kind == "action":
            return self.action(op, parsed)
        return getattr(self, binding.kind)(session, res, parsed)

    def action(self, op: Operation, parsed: ParsedRequest) -> Outcome:
        inputs = parsed.inputs()
        seed = f"{self.seed}|{op.operation_id}|{sha256_hex(canonical_json(inputs))}"
        return self.respond(op, success_status(op, (200, 201, 202, 204)), None, seed, inputs=inputs)

    def list(self, session: Session, res: Resource, parsed: ParsedRequest) -> Outcome:
        op = parsed.operation
        props = object_properties(res.schema, res.schema) if res.schema else {}
        # a search by POST carries its criteria in the body; query parameters win
        criteria = {**query_defaults(op), **(parsed.body if isinstance(parsed.body, dict) else {}), **parsed.query}
        filters = {name: wanted for name, wanted in criteria.items() if name in props and name not in PAGINATION}
        records = [r for _, r in session.select(self.world, res, self.scope_of(res, parsed), filters)]
        total = len(records)
        records = paginate(records, criteria)
        status = success_status(op, (200,))
        media, schema = choose_media(documented(op, status))
        if media is None or schema is None:
            return Outcome(status, NO_BODY)
        seed = f"{self.seed}|{op.operation_id}|{sha256_hex(canonical_json(parsed.inputs()))}"
        hint = wrap_list(schema, records, total, status)
        body = self.shaper.conform(schema, schema, hint, seed, inputs=parsed.query)
        return Outcome(status, body, media)

    def _key(self, res: Resource, parsed: ParsedRequest) -> tuple[str, Any]:
        if res.id_param and res.id_param in parsed.path_params:
            raw = parsed.path_params[res.id_param]
        elif res.id_field and isinstance(parsed.body, dict) and res.id_field in parsed.body:
            raw = parsed.body[res.id_field]
        else:
            raise NotFound(f"no {res.name} id in the request")
        return id_key(raw), raw

    def _existing(self, session: Session, res: Resource, parsed: ParsedRequest) -> tuple[str, tuple[str, ...], Record]:
        key, raw = self._key(res, parsed)
        scope = self.scope_of(res, parsed)
        record = session.get(self.world, res, scope, key)
        if record is None and not res.writable:
            record = self.world.open_record(res, scope, raw)
        if record is None:
            raise NotFound(f"{res.name} {key!r} does not exist")
        return key, scope, record

    def read(self, session: Session, res: Resource, parsed: ParsedRequest) -> Outcome:
        op = parsed.operation
        key, _, record = self._existing(session, res, parsed)
        return self.respond(op, success_status(op, (200,)), record, f"{self.seed}|{res.name}|{key}", res=res)

    def create(self, session: Session, res: Resource, parsed: ParsedRequest) -> Outcome:
        op = parsed.operation
        scope = self.scope_of(res, parsed)
        body = self.settable(parsed)
        seed = f"{self.seed}|create|{res.name}|{session.writes}"
        if res.id_param and res.id_param in parsed.path_params:  # PUT/POST /baskets/{name}
            raw: Any = parsed.path_params[res.id_param]
        elif res.id_field and body.get(res.id_field) not in (None, ""):  # "" could never be addressed
            raw = body[res.id_field]
        elif res.id_type == "integer":
            raw = session.next_integer_id(self.world, res, scope)
        else:
            raw = self.world.new_id(res, seed, lambda key: session.get(self.world, res, scope, key) is not None)
        hint = {**body, **{p: v for p, v in zip(res.scope_params, scope, strict=False)}}
        if res.id_field:
            hint[res.id_field] = raw
        record = self._store(session, res, scope, hint, seed, _CREATED + _UPDATED)
        key = id_key(record.get(res.id_field, raw) if res.id_field else raw)
        if any(r.status == "409" for r in op.responses) and session.get(self.world, res, scope, key) is not None:
            raise Conflict(f"{res.name} {key!r} already exists")
        session.put(res, scope, key, record)
        return self.respond(op, success_status(op, (201, 200)), record, seed, res=res)

    def _store(self, session: Session, res: Resource, scope: tuple[str, ...], hint: Record, seed: str,
               stamps: tuple[str, ...]) -> Record:
        if not res.schema:
            return hint
        record = self.shaper.conform(res.schema, res.schema, hint, seed, name=res.name)
        return self.stamp(res, record, session, stamps) if isinstance(record, dict) else hint

    def _update(self, session: Session, res: Resource, parsed: ParsedRequest, *, replace: bool) -> Outcome:
        op = parsed.operation
        key, scope, existing = self._existing(session, res, parsed)
        body = self.settable(parsed)
        props = object_properties(res.schema, res.schema) if res.schema else {}
        changes = {k: v for k, v in parsed.query.items() if k in props}
        changes.update(body)
        hint = dict(changes) if replace else {**existing, **changes}
        if res.id_field and res.id_field in existing:
            hint[res.id_field] = existing[res.id_field]
        for name in _CREATED:
            if name in existing:
                hint[name] = existing[name]
        seed = f"{self.seed}|update|{res.name}|{key}|{session.writes}"
        record = self._store(session, res, scope, hint, seed, _UPDATED)
        session.put(res, scope, key, record)
        return self.respond(op, success_status(op, (200, 201, 204)), record, seed, res=res)

    def replace(self, session: Session, res: Resource, parsed: ParsedRequest) -> Outcome:
        return self._update(session, res, parsed, replace=True)

    def update(self, session: Session, res: Resource, parsed: ParsedRequest) -> Outcome:
        return self._update(session, res, parsed, replace=False)

    def delete(self, session: Session, res: Resource, parsed: ParsedRequest) -> Outcome:
        op = parsed.operation
        key, scope, existing = self._existing(session, res, parsed)
        session.put(res, scope, key, None)
        seed = f"{self.seed}|delete|{res.name}|{key}"
        return self.respond(op, success_status(op, (204, 200, 202)), existing, seed, res=res)


def query_defaults(op: Operation) -> dict[str, Any]:
    """The ``default`` of each query parameter: what the server uses when the client sends none
    (``limit`` 10 on museum's list, ``status=available`` on petstore's findByStatus)."""
    return {p.name: p.schema["default"] for p in op.parameters if p.location == "query" and "default" in p.schema}


def read_only_properties(op: Operation, media: str | None) -> frozenset[str]:
    """Names of the top-level request body properties the spec marks ``readOnly``."""
    schema = op.request_body.content.get(media) if op.request_body is not None and media else None
    if not schema:
        return frozenset()
    props = object_properties(schema, schema)
    return frozenset(name for name, prop in props.items()
                     if prop.get("readOnly") is True or deref(schema, prop).get("readOnly") is True)


def paginate(records: list[Record], query: dict[str, Any]) -> list[Record]:
    limit = next((query[p] for p in LIMIT_PARAMS if isinstance(query.get(p), int)), None)
    offset = next((query[p] for p in OFFSET_PARAMS if isinstance(query.get(p), int)), 0)
    page = next((query[p] for p in PAGE_PARAMS if isinstance(query.get(p), int)), None)
    if page is not None and limit is not None and page >= 1:
        offset = (page - 1) * limit
    offset = max(offset, 0)
    if limit is not None and limit >= 0:
        return records[offset : offset + limit]
    return records[offset:]


def wrap_list(schema: JSONSchema, records: list[Record], total: int, status: int | None = None) -> Any:
    """Put records where a list response schema expects them: the array itself, or the
    conventional key of a wrapper object (with a total where the wrapper has one)."""
    if array_items(schema, schema) is not None:
        return records
    props = object_properties(schema, schema)
    key = next((k for k in _WRAPPER_KEYS if k in props and array_items(schema, props[k]) is not None), None)
    if key is None:
        key = next((k for k, p in props.items() if array_items(schema, p) is not None), None)
    if key is None:
        return None
    hint: dict[str, Any] = {**envelope_hint(props, status), key: records}
    for name in ("total", "count", "total_count", "totalCount", "size", "totalElements"):
        if name in props:
            hint[name] = total
    return hint


def wrap_record(schema: JSONSchema, record: Record, res: Resource, status: int | None = None) -> Any:
    """A record as the response expects it: itself, or inside the envelope property whose
    schema fits it best (``{"status_code": 200, "data": {...}}``)."""
    resolved = deref(schema, schema)
    if primary_type(schema, resolved) != "object":
        return record
    props = object_properties(schema, resolved)
    if not props or (res.id_field and res.id_field in props):
        return record
    best, best_fit = None, len(set(record) & set(props))
    for key in dict.fromkeys(("data", "item", "result", res.name, *props)):
        sub = props.get(key)
        if sub is None or primary_type(schema, sub) != "object":
            continue
        inner = object_properties(schema, sub)
        fit = len(set(record) & set(inner)) + (res.id_field in inner)
        if fit > best_fit:
            best, best_fit = key, fit
    if best is None:
        return record
    return {**envelope_hint(props, status), best: record}


def envelope_hint(props: dict[str, JSONSchema], status: int | None) -> dict[str, Any]:
    """Envelope members that repeat the HTTP status (``status_code``), when the schema has them."""
    if status is None:
        return {}
    return {name: status for name in ("status_code", "statusCode", "code") if name in props}
