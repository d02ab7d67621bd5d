"""What each kind of operation does: (session, parsed request) -> (status, body).

Pure over the :class:`~simulator.state.store.Session` it is given (the only thing it mutates) and
the memoised :class:`~simulator.state.store.World`. Every body returned here has been conformed to
the operation's response schema for the returned status.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from simulator.canonical import canonical_json, sha256_hex
from simulator.datagen.values import RFC_2822, rfc_2822_text
from simulator.environments.envelopes import bare_list, plain_record, unwrap_record, wrap_list, wrap_record
from simulator.environments.identity import field_named, param_field_names
from simulator.environments.resources import Binding, Resource
from simulator.spec.model import JSONSchema, Operation, ResponseSpec
from simulator.spec.navigation import array_items, deref, object_properties
from simulator.state.scopes import ParentGone, scope_fixtures
from simulator.state.store import Fixtures, Record, Session, World, id_key, scope_key

from .expansion import EXPAND, Expander, marks_expandable, refusal
from .shaping import Shaper
from .validation import ParsedRequest, media_kind
from .writes import Converter, WriteRefused, is_secret_name

NO_BODY = object()

LIMIT_PARAMS = ("limit", "per_page", "perPage", "page_size", "pageSize", "size", "max_results",
                "maxResults", "top", "first", "count", "pagelen", "rows")
OFFSET_PARAMS = ("offset", "skip", "start", "from")
PAGE_PARAMS = ("page", "page_number", "pageNumber")
_PAGING = frozenset(LIMIT_PARAMS + OFFSET_PARAMS + PAGE_PARAMS)
PAGINATION = frozenset(LIMIT_PARAMS + OFFSET_PARAMS + PAGE_PARAMS + ("sort", "order", "cursor", "fields"))
_CREATED = ("created_at", "createdAt", "created", "creationDate", "dateCreated", "created_on", "date_created")
_UPDATED = ("updated_at", "updatedAt", "modified", "modified_at", "modifiedAt", "last_modified",
            "lastModified", "updated", "updated_on", "dateUpdated", "date_updated")


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
    """``param``: the path parameter that names what is missing, when it is not the item's id
    (a parent's: ``feed_key`` of ``/feeds/{feed_key}/data``)."""

    def __init__(self, detail: str, param: str | None = None) -> None:
        self.detail, self.param = detail, param
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
    def __init__(self, seed: str, world: World, shaper: Shaper, epoch: dt.datetime,
                 parents: dict[str, Resource] | None = None) -> None:
        self.seed = seed
        self.world = world
        self.parents = parents or {}  # resource name -> its scope's parent (simulator.state.scopes)
        self.shaper = shaper
        self.epoch = epoch
        self.converter = Converter(shaper.is_valid)
        self._bodies: dict[tuple[str, str, str], tuple[str | None, frozenset[str]]] = {}
        self._hidden: dict[str, frozenset[str]] = {}
        # per operation (and status, resource) of this one spec: bounded by its size; read-only values
        self._media: dict[tuple[str, int], tuple[str | None, JSONSchema | None]] = {}
        self._success: dict[tuple[str, tuple[int, ...]], int] = {}
        self._plain: dict[tuple[str, int, str], bool] = {}
        self._bare: dict[tuple[str, int], bool] = {}
        self._props: dict[str, dict[str, JSONSchema]] = {}
        self._defaults: dict[str, dict[str, Any]] = {}
        self._expandable: dict[str, bool] = {}

    # -- helpers ------------------------------------------------------------------------------

    def now(self, session: Session, form: str | None = None) -> str:
        """The session's clock as a timestamp: ISO 8601, or RFC 2822 where ``form`` (a
        property's ``format``) says so."""
        stamp = self.epoch + dt.timedelta(minutes=session.writes)
        if form == RFC_2822:
            return rfc_2822_text(stamp)
        return stamp.isoformat().replace("+00:00", "Z")

    def media(self, op: Operation, status: int) -> tuple[str | None, JSONSchema | None]:
        """:func:`choose_media` of the response ``op`` documents for ``status`` (memoised)."""
        key = (op.operation_id, status)
        hit = self._media.get(key)
        if hit is None:
            hit = self._media[key] = choose_media(documented(op, status))
        return hit

    def success(self, op: Operation, preferred: tuple[int, ...]) -> int:
        """:func:`success_status` (memoised)."""
        key = (op.operation_id, preferred)
        hit = self._success.get(key)
        if hit is None:
            hit = self._success[key] = success_status(op, preferred)
        return hit

    def properties(self, res: Resource) -> dict[str, JSONSchema]:
        """The properties of the resource's record schema (memoised; not to be changed)."""
        hit = self._props.get(res.name)
        if hit is None:
            hit = self._props[res.name] = object_properties(res.schema, res.schema) if res.schema else {}
        return hit

    def respond(self, op: Operation, status: int, hint: Any, seed: str, *, inputs: dict[str, Any] | None = None,
                res: Resource | None = None, new_key: str | None = None) -> Outcome:
        """``new_key``: the key a create made up and stored its record under, answered in the
        response's ``id`` (or item path parameter's) member when the record has no id field to
        carry it (``POST /bin`` answering ``{"id": ...}`` while the bin is free-form JSON)."""
        media, schema = self.media(op, status)
        if media is None or schema is None:
            return Outcome(status, NO_BODY)
        if res is not None and isinstance(hint, dict):
            key = (op.operation_id, status, res.name)
            plain = self._plain.get(key)
            if plain is None:
                plain = self._plain[key] = plain_record(schema, res.id_field)
            hint = self.public(res, hint)
            if not plain:
                hint = wrap_record(schema, hint, res.id_field, res.name, status)
            if new_key is not None and not res.id_field and isinstance(hint, dict):
                hint = self._with_new_key(schema, hint, res, new_key)
        body = self.shaper.conform(schema, schema, hint, seed, inputs=inputs, hide_secrets=res is not None)
        return Outcome(status, body, media)

    def request_seed(self, op: Operation, inputs: dict[str, Any]) -> str:
        """The seed of what a response generates from its request alone (an action's body, a
        list's wrapper, an expanded object): the operation and every input it was sent but
        ``expand``, which changes only the fields it names (:mod:`.expansion`)."""
        if EXPAND in inputs:
            inputs = {name: value for name, value in inputs.items() if name != EXPAND}
        return f"{self.seed}|{op.operation_id}|{sha256_hex(canonical_json(inputs))}"

    def expanded(self, session: Session, op: Operation, outcome: Outcome, paths: list[list[str]],
                 parsed: ParsedRequest) -> Outcome:
        """``outcome`` with the fields ``paths`` name expanded (Stripe's ``expand[]``:
        :mod:`simulator.service.expansion`); ``outcome`` itself when nothing expands."""
        _, schema = self.media(op, outcome.status)
        if schema is None or outcome.body is NO_BODY:
            return outcome
        seed = self.request_seed(op, parsed.inputs())
        body = Expander(self.shaper, lambda name, given: self._record_named(session, name, given)).expand(
            schema, outcome.body, paths, seed)
        return outcome if body is outcome.body else Outcome(outcome.status, body, outcome.media_type)

    def expansion_refused(self, op: Operation, paths: list[Any]) -> str | None:
        """Why ``op`` refuses to expand ``paths`` (:func:`~.expansion.refusal`), where its
        success response marks expandable fields (Stripe's); None elsewhere."""
        _, schema = self.media(op, self.success(op, (200, 201, 202, 204)))
        if schema is None:
            return None
        marked = self._expandable.get(op.operation_id)
        if marked is None:
            marked = self._expandable[op.operation_id] = marks_expandable(schema)
        return refusal(schema, paths) if marked else None

    def _record_named(self, session: Session, store: str, given: str) -> Record | None:
        """The session's record ``given`` of the top-level collection ``store``, as a read shows it."""
        res = self.world.owner(store)
        if res is None or res.scope_params or res.singleton:
            return None
        found = session.find(self.fixtures(session, res, ()), res, (), id_key(given))
        return self.public(res, found[1]) if found is not None else None

    def _with_new_key(self, schema: JSONSchema, hint: Record, res: Resource, new_key: str) -> Record:
        """``hint`` with ``new_key`` in its top-level member named like the id (the item path's
        parameter, else ``id``) where the response has one that admits it and the hint has none."""
        props = object_properties(schema, deref(schema, schema))
        for name in dict.fromkeys((res.id_param, "id")):
            if name and name in props and name not in hint:
                if self.shaper.is_valid(schema, props[name], new_key):
                    return {**hint, name: new_key}
                if new_key.isdigit() and self.shaper.is_valid(schema, props[name], int(new_key)):
                    return {**hint, name: int(new_key)}
        return hint

    def public(self, res: Resource, record: Record) -> Record:
        """A stored record as responses may show it: without its ``writeOnly`` and secret fields."""
        hidden = self._hidden.get(res.name)
        if hidden is None:
            props = self.properties(res)
            hidden = self._hidden[res.name] = frozenset(
                name for name, prop in props.items()
                if is_secret_name(name) or prop.get("writeOnly") is True
                or deref(res.schema or {}, prop).get("writeOnly") is True)
        if not hidden or hidden.isdisjoint(record):
            return record
        return {k: v for k, v in record.items() if k not in hidden}

    def stamp(self, res: Resource, record: Record, session: Session, fields: tuple[str, ...],
              written: Record) -> Record:
        """Server timestamps on the fields the schema has and the client did not write."""
        if not res.schema:
            return record
        props = self.properties(res)
        for name in fields:
            if name in props and name not in written:
                prop = deref(res.schema, props[name])
                form = prop.get("format") if isinstance(prop, dict) else None
                now = self.now(session, form if isinstance(form, str) else None)
                if self.shaper.is_valid(res.schema, props[name], now):
                    record = {**record, name: now}
        return record

    def settable(self, parsed: ParsedRequest, res: Resource | None = None) -> Record:
        """The record a write carries: the body, or the record inside its envelope
        (``{"tag": {...}}``), less the members the spec marks ``readOnly`` (a server-assigned id,
        a creation time), which the server of the spec would ignore."""
        if not isinstance(parsed.body, dict):
            return {}
        op = parsed.operation
        key = (op.operation_id, parsed.media_type or "", res.name if res else "")
        plan = self._bodies.get(key)
        if plan is None:
            plan = self._bodies[key] = body_plan(op, parsed.media_type, res.schema if res else None)
        envelope, read_only = plan
        body = parsed.body
        if envelope is not None and isinstance(body.get(envelope), dict):
            body = body[envelope]
        return {k: v for k, v in body.items() if k not in read_only} if read_only else dict(body)

    def written(self, res: Resource, parsed: ParsedRequest, extra: Record | None = None) -> Record:
        """The body's fields (and ``extra``) in the stored schema's types, then the path
        parameters naming the record's parents, which win over body fields of the same name
        (raises :class:`~simulator.service.writes.WriteRefused` for a field that cannot be stored as sent)."""
        changes = {**(extra or {}), **self.settable(parsed, res)}
        if not res.schema:
            return changes
        out = self.converter.changes(res.schema, changes)
        for name in res.aliases:  # an alias the representation lacks (a group's key) is kept as sent
            if name in changes and name not in out and isinstance(changes[name], (str, int)):
                out[name] = changes[name]
        for name in res.scope_params:
            # a parent named like the record's own id (gitlab's /projects/{id}/hooks) is not the id
            if name in parsed.path_params and name != res.id_field:
                try:
                    out.update(self.converter.changes(res.schema, {name: parsed.path_params[name]}))
                except WriteRefused:  # a parent named by a value the record's field cannot hold
                    continue
        return out

    def identify(self, res: Resource, record: Record, raw: Any) -> Record:
        """``record`` holding the id ``raw`` an item path gave: in the id field when it fits
        there, else in the first alias field it fits (``/orgs/{org}`` naming an org by its
        ``username`` while its ``id`` is a number)."""
        if not res.schema:
            return {**record, res.id_field: raw} if res.id_field else record
        for name in (res.id_field, *res.aliases):
            if not name:
                continue
            try:
                converted = self.converter.changes(res.schema, {name: raw})
            except WriteRefused:
                continue
            if name in converted:
                return {**record, **converted}
        return record

    @staticmethod
    def scope_of(res: Resource, parsed: ParsedRequest) -> tuple[str, ...]:
        return tuple(id_key(parsed.path_params.get(p, "")) for p in res.scope_params)

    def fixtures(self, session: Session, res: Resource, scope: tuple[str, ...]) -> Fixtures:
        """The fixtures the scope holds in ``session`` (none under a parent it created);
        :class:`NotFound` when the session deleted the parent (:mod:`simulator.state.scopes`)."""
        if not self.parents:
            return self.world
        try:
            return scope_fixtures(session, self.world, self.parents, res, scope)
        except ParentGone as exc:
            raise NotFound(str(exc), res.scope_params[exc.position]) from None

    # -- kinds --------------------------------------------------------------------------------

    def handle(self, session: Session, binding: Binding, res: Resource | None, parsed: ParsedRequest) -> Outcome:
        op = parsed.operation
        if res is None or binding.kind == "action":
            return self.action(op, parsed)
        if res.singleton:
            return self.document(session, binding, res, parsed)
        if binding.kind in ("replace", "update"):
            return self._update(session, res, parsed, replace=binding.kind == "replace", upsert=binding.upsert)
        return getattr(self, binding.kind)(session, res, parsed)

    def action(self, op: Operation, parsed: ParsedRequest) -> Outcome:
        inputs = parsed.inputs()
        return self.respond(op, self.success(op, (200, 201, 202, 204)), None, self.request_seed(op, inputs),
                            inputs=inputs)

    def document(self, session: Session, binding: Binding, res: Resource, parsed: ParsedRequest) -> Outcome:
        """A singleton's one document per scope (:func:`~simulator.environments.resources._singletons`):
        the world's until the session writes it. A read answers it; a PUT or PATCH (or a create)
        sets the members it writes and keeps the rest (a setting not sent stays as it was); a
        create that documents 409 answers it while the document exists; a DELETE
        removes it, after which a read answers 404, or ``{}`` where the read documents no 404
        and its schema admits an empty object (GitHub's interaction limits once removed); a
        PATCH that documents 404 answers 404 too (there is nothing to change), while a PUT sets
        the document again. A written member the document cannot hold as sent is left out, not
        refused: the write is valid for its own schema, which need not be the document's."""
        op = parsed.operation
        scope = self.scope_of(res, parsed)
        self.fixtures(session, res, scope)  # a 404 under a parent the session deleted
        changes = session.changes(res, scope)
        current = changes[""] if "" in changes else self.world.document(res, scope)
        seed = f"{self.seed}|document|{res.name}|{scope_key(scope)}|{session.writes}"
        if binding.kind == "read":
            status = self.success(op, (200, 204))
            if current is not None:
                return self.respond(op, status, current, seed, res=res)
            _, schema = self.media(op, status)
            if documented(op, 404) is None and schema is not None and self.shaper.is_valid(schema, schema, {}):
                return self.respond(op, status, {}, seed)
            raise NotFound(f"{res.name} does not exist")
        if binding.kind == "delete":
            if current is None:
                raise NotFound(f"{res.name} does not exist")
            session.put(res, scope, "", None)
            return self.respond(op, self.success(op, (204, 200, 202)), current, seed, res=res)
        if binding.kind == "create" and current is not None and any(r.status == "409" for r in op.responses):
            raise Conflict(f"{res.name} already exists")
        if current is None and op.method == "PATCH" and documented(op, 404) is not None:
            raise NotFound(f"{res.name} does not exist")  # a PATCH changes a document; a PUT sets one
        written = self._storable(res, parsed)
        record = self._store(session, res, {**(current or {}), **written}, written, seed, _UPDATED) \
            if res.schema else {}
        session.put(res, scope, "", record)
        return self.respond(op, self.success(op, (200, 201, 204)), record, seed, res=res)

    def _storable(self, res: Resource, parsed: ParsedRequest) -> Record:
        """:meth:`written` (query members the record has too), less the members that cannot be
        stored as sent (:class:`~simulator.service.writes.WriteRefused`)."""
        extra = {k: v for k, v in parsed.query.items() if k in self.properties(res)}
        try:
            return self.written(res, parsed, extra)
        except WriteRefused:
            out: Record = {}
            for name, value in {**extra, **self.settable(parsed, res)}.items():
                try:
                    out.update(self.converter.changes(res.schema or {}, {name: value}))
                except WriteRefused:
                    continue
            return out

    def list(self, session: Session, res: Resource, parsed: ParsedRequest) -> Outcome:
        op = parsed.operation
        criteria, filters = self._criteria(res, parsed)
        scope = self.scope_of(res, parsed)
        records = [r for _, r in session.select(self.fixtures(session, res, scope), res, scope, filters)]
        total = len(records)
        records = paginate(records, criteria)
        status = self.success(op, (200,))
        media, schema = self.media(op, status)
        if media is None or schema is None:
            return Outcome(status, NO_BODY)
        seed = self.request_seed(op, parsed.inputs())
        bare = self._bare.get((op.operation_id, status))
        if bare is None:
            bare = self._bare[(op.operation_id, status)] = bare_list(schema)
        shown = [self.public(res, r) for r in records]
        hint = shown if bare else wrap_list(schema, shown, total, status)
        body = self.shaper.conform(schema, schema, hint, seed, inputs=parsed.query, hide_secrets=True)
        return Outcome(status, body, media)

    def _criteria(self, res: Resource, parsed: ParsedRequest) -> tuple[dict[str, Any], dict[str, Any]]:
        """(what the request asks, paging included; the record field filters among it)."""
        op = parsed.operation
        props = self.properties(res)
        defaults = self._defaults.get(op.operation_id)
        if defaults is None:
            defaults = self._defaults[op.operation_id] = query_defaults(op)
        # a search by POST carries its criteria in the body; query parameters win
        criteria = {**defaults, **(parsed.body if isinstance(parsed.body, dict) else {}), **parsed.query}
        spelled = self.world.spellings(res)  # twilio filters by FriendlyName the records' friendly_name
        filters = {field: wanted for name, wanted in criteria.items()
                   if (field := field_named(props, spelled, name)) is not None and name not in PAGINATION
                   and (field == name or field not in criteria)}
        return criteria, filters

    def _raw_id(self, res: Resource, parsed: ParsedRequest) -> Any:
        if res.id_param and res.id_param in parsed.path_params:
            return parsed.path_params[res.id_param]
        if res.id_field and isinstance(parsed.body, dict):
            body = self.settable(parsed, res)
            if res.id_field in body:
                return body[res.id_field]
        raise NotFound(f"no {res.name} id in the request")

    def _find(self, session: Session, res: Resource, parsed: ParsedRequest) -> tuple[str, tuple[str, ...], Record]:
        """(key, scope, record) of the record the request names, by id or alias; for a read-only
        resource any id resolves; otherwise :class:`NotFound`."""
        raw = self._raw_id(res, parsed)
        scope = self.scope_of(res, parsed)
        found = session.find(self.fixtures(session, res, scope), res, scope, id_key(raw))
        if found is not None:
            return found[0], scope, found[1]
        if not res.writable:
            return id_key(raw), scope, self.world.open_record(res, scope, raw)
        raise NotFound(f"{res.name} {id_key(raw)!r} does not exist")

    def read(self, session: Session, res: Resource, parsed: ParsedRequest) -> Outcome:
        op = parsed.operation
        key, _, record = self._find(session, res, parsed)
        return self.respond(op, self.success(op, (200,)), record, f"{self.seed}|{res.name}|{key}", res=res)

    def create(self, session: Session, res: Resource, parsed: ParsedRequest,
               preferred: tuple[int, ...] = (201, 200)) -> Outcome:
        op = parsed.operation
        scope = self.scope_of(res, parsed)
        fixtures = self.fixtures(session, res, scope)
        names = self.member_names(res, parsed)
        if names is not None:  # GitHub's add-labels: members added by name, the collection answered
            self._add_members(session, res, fixtures, scope, names)
            return self.list(session, res, parsed)
        written = self.written(res, parsed)
        seed = f"{self.seed}|create|{res.name}|{session.writes}"
        hint = dict(written)
        made = False  # whether the id is this create's own (the client learns it from the answer)
        if res.id_param and res.id_param in parsed.path_params:  # PUT/POST /baskets/{name}
            raw: Any = parsed.path_params[res.id_param]
            hint = self.identify(res, hint, raw)
        elif res.id_field and written.get(res.id_field) not in (None, ""):  # a client-given id is kept
            raw = written[res.id_field]
        elif res.id_type == "integer":
            raw, made = session.next_integer_id(fixtures, res, scope), True
            hint = self.identify(res, hint, raw)
        else:
            raw, made = self.world.new_id(res, seed, lambda key: session.has(fixtures, res, scope, key)), True
            hint = self.identify(res, hint, raw)
        record = self._store(session, res, hint, written, seed, _CREATED + _UPDATED)
        key = id_key(record.get(res.id_field, raw) if res.id_field else raw)
        if any(r.status == "409" for r in op.responses) and session.find(fixtures, res, scope, key) is not None:
            raise Conflict(f"{res.name} {key!r} already exists")
        session.put(res, scope, key, record)
        return self.respond(op, self.success(op, preferred), record, seed, res=res, new_key=key if made else None)

    def member_names(self, res: Resource, parsed: ParsedRequest, *, empty: bool = False) -> tuple[str, ...] | None:
        """The names a POST to a collection adds as members, when its body is nothing but a list
        of them: ``["bug"]``, or one member named as the collection (``{"labels": ["bug"]}`` to
        ``.../labels``; ``{"labels": [{"name": "bug"}]}`` too), for a resource whose item path
        names a record by a string field, under a response that lists the collection (GitHub's
        add-labels to an issue or a runner). None otherwise: a create of one record. ``empty``:
        no name at all is a list of names too (a set that empties the collection)."""
        if (res.id_type != "string" or not res.id_param or not res.id_field or res.id_param in parsed.path_params
                or res.id_param != res.id_field):
            return None
        body = parsed.body
        if isinstance(body, dict):
            if [*body] != [res.collection_path.rstrip("/").rsplit("/", 1)[-1]]:
                return None
            (body,) = body.values()
        if not isinstance(body, list) or not (body or empty):
            return None
        names = tuple(item[res.id_field] if isinstance(item, dict) and [*item] == [res.id_field] else item
                      for item in body)
        if not all(isinstance(name, str) and name.strip() for name in names):
            return None
        media, schema = self.media(parsed.operation, self.success(parsed.operation, (200,)))
        if media is None or schema is None or wrap_list(schema, [], 0) is None:
            return None
        return names

    def _store(self, session: Session, res: Resource, hint: Record, written: Record, seed: str,
               stamps: tuple[str, ...]) -> Record:
        """The stored record: the written fields as they are, the rest generated to fit the
        schema; ``writeOnly`` fields are kept (responses leave them out)."""
        if not res.schema:
            return hint
        record = self.shaper.conform(res.schema, res.schema, hint, seed, name=res.store)
        if not isinstance(record, dict):
            return hint
        kept = {k: v for k, v in written.items() if k not in record}  # writeOnly ones
        return self.stamp(res, {**record, **kept} if kept else record, session, stamps, written)

    def _update(self, session: Session, res: Resource, parsed: ParsedRequest, *, replace: bool,
                upsert: bool = False) -> Outcome:
        op = parsed.operation
        if replace and op.path == res.collection_path:  # GitHub's set-labels: the members, by name
            names = self.member_names(res, parsed, empty=True)
            if names is None:
                return self.action(op, parsed)
            return self._set_members(session, res, parsed, names)
        try:
            key, scope, existing = self._find(session, res, parsed)
        except NotFound:
            if upsert and res.id_param in parsed.path_params:  # PUT that creates when absent
                return self.create(session, res, parsed, (201, 200, 204))
            raise
        props = self.properties(res)
        written = self.written(res, parsed, {k: v for k, v in parsed.query.items() if k in props})
        hint = dict(written) if replace else {**existing, **written}
        # the id and the field the item path names the record by stay (the path wins); so does
        # a creation time not written
        for name in (res.id_field, *addressed_by(res), *_CREATED):
            if name and name in existing and (name not in _CREATED or name not in written):
                hint[name] = existing[name]
        seed = f"{self.seed}|update|{res.name}|{key}|{session.writes}"
        record = self._store(session, res, hint, written, seed, _UPDATED)
        session.put(res, scope, key, record)
        return self.respond(op, self.success(op, (200, 201, 204)), record, seed, res=res)

    def delete(self, session: Session, res: Resource, parsed: ParsedRequest) -> Outcome:
        op = parsed.operation
        if op.path == res.collection_path and op.path != res.item_path:
            return self._clear(session, res, parsed)
        key, scope, existing = self._find(session, res, parsed)
        session.put(res, scope, key, None)
        status = self.success(op, (204, 200, 202))
        if self._answers_members(op, status):
            return self.list(session, res, parsed)  # the members left (GitHub's remove-label)
        seed = f"{self.seed}|delete|{res.name}|{key}"
        return self.respond(op, status, existing, seed, res=res)

    def _add_members(self, session: Session, res: Resource, fixtures: Fixtures, scope: tuple[str, ...],
                     names: tuple[str, ...]) -> None:
        """Each of ``names`` the scope lacks, made a member named so."""
        for name in dict.fromkeys(names):
            key = id_key(name)
            if session.find(fixtures, res, scope, key) is None:
                seed = f"{self.seed}|create|{res.name}|{session.writes}|{key}"
                hint = self.identify(res, {}, name)
                session.put(res, scope, key, self._store(session, res, hint, hint, seed, _CREATED + _UPDATED))

    def _set_members(self, session: Session, res: Resource, parsed: ParsedRequest, names: tuple[str, ...]) -> Outcome:
        """A PUT of the members' names to the collection: the members not named go, the named
        ones the scope lacks are added, and the collection is answered."""
        scope = self.scope_of(res, parsed)
        fixtures = self.fixtures(session, res, scope)
        wanted = {id_key(name) for name in names}
        for key, record in session.records(fixtures, res, scope):
            if key not in wanted and not any(id_key(record.get(alias)) in wanted for alias in res.aliases
                                             if isinstance(record.get(alias), (str, int))):
                session.put(res, scope, key, None)
        self._add_members(session, res, fixtures, scope, names)
        return self.list(session, res, parsed)

    def _clear(self, session: Session, res: Resource, parsed: ParsedRequest) -> Outcome:
        """A DELETE of the collection (no body, no required query): the members a list with the
        same query's filters shows go (DigitalOcean's ``DELETE /v2/volumes?name=...``), every
        member without one (an issue's labels, a runner's custom labels)."""
        op = parsed.operation
        scope = self.scope_of(res, parsed)
        for key, _ in session.select(self.fixtures(session, res, scope), res, scope, self._criteria(res, parsed)[1]):
            session.put(res, scope, key, None)
        status = self.success(op, (204, 200, 202))
        if self._answers_members(op, status):
            return self.list(session, res, parsed)
        return self.respond(op, status, None, self.request_seed(op, parsed.inputs()))

    def _answers_members(self, op: Operation, status: int) -> bool:
        """Whether a removal's answer is the collection (an array, or a list wrapper: GitHub's
        ``{"labels": [...], "total_count": n}`` for a runner)."""
        _, schema = self.media(op, status)
        return status == 200 and schema is not None and (
            array_items(schema, schema) is not None or wrap_list(schema, [], 0) is not None)


def query_defaults(op: Operation) -> dict[str, Any]:
    """The ``default`` of each query parameter: what the server uses when the client sends none
    (``limit`` 10 on museum's list, ``status=available`` on petstore's findByStatus)."""
    return {p.name: p.schema["default"] for p in op.parameters if p.location == "query" and "default" in p.schema}


def addressed_by(res: Resource) -> tuple[str, ...]:
    """The alias fields the item path parameter stands for (``{group_key}`` -> ``key``)."""
    names = param_field_names(res.id_param)
    return tuple(name for name in res.aliases if name in names)


def body_plan(op: Operation, media: str | None, record: JSONSchema | None) -> tuple[str | None, frozenset[str]]:
    """(envelope key, readOnly member names) of an operation's request body for ``media``: the
    key of the envelope the record comes in (when the record schema fits what is inside better
    than the body itself) and the record's members the spec marks ``readOnly``."""
    schema = op.request_body.content.get(media) if op.request_body is not None and media else None
    if not schema:
        return None, frozenset()
    inner, envelope = unwrap_record(schema, schema)
    if envelope is not None and record:
        fields = set(object_properties(record, record))
        if len(fields & set(object_properties(schema, inner))) <= len(fields & set(object_properties(schema, schema))):
            inner, envelope = schema, None
    props = object_properties(schema, inner)
    return envelope, frozenset(name for name, prop in props.items()
                               if prop.get("readOnly") is True or deref(schema, prop).get("readOnly") is True)


def paginate(records: list[Record], query: dict[str, Any]) -> list[Record]:
    if _PAGING.isdisjoint(query):
        return records
    limit = next((query[p] for p in LIMIT_PARAMS if isinstance(query.get(p), int)), None)
    offset = next((query[p] for p in OFFSET_PARAMS if isinstance(query.get(p), int)), 0)
    page = next((query[p] for p in PAGE_PARAMS if isinstance(query.get(p), int)), None)
    if page is not None and limit is not None and page >= 1:
        offset = (page - 1) * limit
    offset = max(offset, 0)
    if limit is not None and limit >= 0:
        return records[offset : offset + limit]
    return records[offset:]
