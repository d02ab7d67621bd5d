"""Drive every writable resource of a simulated API the way a client would, and count what holds.

For each writable resource: create it with a generated valid body (when the API can create it),
read it back through the item path, find it in the list, read every item the list shows,
replace and update it with generated bodies (reading back after each), delete it, and read it
once more (404). A *check* is one of those expectations; a failed check records why.

The client side knows only what a client generated from the spec knows: the operations, their
parameters and schemas. It finds an item's id the way a client does: the field named like the
item path's parameter (``petId`` -> ``id``/``petId``), else a conventional id field, else the
value it sent. Written scalar fields must read back equal, allowing the lossless conversions a
stored schema imposes (``"7"`` <-> ``7``). Fields the spec marks ``writeOnly`` or ``readOnly``
in the request, and secrets (see :func:`simulator.records.is_secret_name`), are not compared.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from simulator.datagen.generate import GenerationError, compile_schema, generate_value
from simulator.environments.envelopes import unwrap_record
from simulator.environments.resources import Resource, success_schema
from simulator.messages import SimRequest, SimResponse
from simulator.service.expansion import EXPAND
from simulator.service.simulator import Simulator
from simulator.service.validation import media_kind
from simulator.spec.model import JSONSchema, Operation
from simulator.spec.navigation import deref, object_properties, primary_type, sub_schema

_ID_SUFFIX = re.compile(r"(?i)^(.+?)[-_]?(id|key|slug|name|uuid|code|number)$")
_ID_NAMES = ("id", "uuid", "key", "slug", "name", "username", "login", "code", "_id", "$id")
_RETRIES = 4
_LIST_KEYS = ("data", "items", "results", "records", "content", "values", "list", "entries", "elements")
_SECRET = re.compile(r"(?i)(password|passwd|secret|token|api[-_]?key|private[-_]?key|credential)")


@dataclass
class Tally:
    """What held for one API: checks passed and failed, and why each failure happened."""

    label: str
    resources: int = 0
    passed: int = 0
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # refused writes retried with storable values
    sampled: int = 1  # every n-th writable resource was driven

    @property
    def checks(self) -> int:
        return self.passed + len(self.failures)

    def check(self, ok: bool, why: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failures.append(why)
        return ok

    def share(self) -> float:
        return 100.0 * self.passed / self.checks if self.checks else 100.0

    def figure(self) -> str:
        sampled = f" (1 in {self.sampled} driven)" if self.sampled > 1 else ""
        return (f"{self.passed}/{self.checks} checks ({self.share():.1f}%) over {self.resources} writable "
                f"resources{sampled}")


def same_scalar(sent: Any, got: Any) -> bool:
    """Equal, or equal after a lossless conversion between a number and its decimal text."""
    if sent == got and type(sent) is type(got):
        return True
    if isinstance(sent, bool) or isinstance(got, bool):
        return (sent == got and isinstance(sent, bool) and isinstance(got, bool)) or str(sent).lower() == str(got).lower()
    if isinstance(sent, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(sent, got)
    if isinstance(sent, str) and isinstance(got, (int, float)):
        sent, got = got, sent
    if isinstance(sent, (int, float)) and isinstance(got, str):
        try:
            return math.isclose(float(got), float(sent))
        except ValueError:
            return False
    return False


def reads_back_as_sent(sent: Any, got: Any) -> bool:
    """:func:`same_scalar`, or a scalar stored as the object it names (a region sent as ``"ams1"``
    reads back as ``{"slug": "ams1", ...}``; a git branch as ``{"ref": "main", ...}``; a flag as
    ``{"enabled": true}``)."""
    if isinstance(got, dict) and isinstance(sent, bool):
        return got.get("enabled") is sent
    if isinstance(got, dict) and not isinstance(sent, dict):
        return any(same_scalar(sent, got.get(name)) for name in (*_ID_NAMES, "number", "ref") if name in got)
    return same_scalar(sent, got)


def record_in(value: Any, wanted: set[str]) -> dict[str, Any] | None:
    """The record inside a body: the body itself, or the member of an envelope that best holds
    the ``wanted`` field names (``{"tag": {...}}``, ``{"data": {...}}``)."""
    if not isinstance(value, dict):
        return None
    best, best_fit = value, len(wanted & set(value))
    for member in value.values():
        if isinstance(member, dict) and len(wanted & set(member)) > best_fit:
            best, best_fit = member, len(wanted & set(member))
    return best


def records_in(value: Any) -> list[dict[str, Any]] | None:
    """The records a list body holds: the array, or the array under a wrapper key."""
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    if not isinstance(value, dict):
        return None
    for key in (*_LIST_KEYS, *value):
        member = value.get(key)
        if isinstance(member, list) and all(isinstance(v, dict) for v in member):
            return member
        if isinstance(member, dict):
            inner = records_in({k: v for k, v in member.items() if isinstance(v, list)})
            if inner:
                return inner
    return None


def id_candidates(param: str) -> list[str]:
    names = [param, "login"] if "user" in param.lower() else [param]
    m = _ID_SUFFIX.match(param)
    if m:
        base, suffix = m.group(1), m.group(2).lower()
        names += [suffix, f"{base}_{suffix}", f"{base}{suffix.capitalize()}"]
    return [*names, *_ID_NAMES, re.split(r"[-_.]", param)[-1]]  # floating_ip -> ip


def _form_fields(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A form as Stripe's clients write one: a list of scalars as the field repeated, objects and
    lists of objects in brackets (``metadata[plan]=pro``, ``items[0][price]=p_1``)."""
    fields: list[tuple[str, str]] = []

    def put(name: str, value: Any, top: bool) -> None:
        if isinstance(value, dict):
            for key, member in value.items():
                put(f"{name}[{key}]", member, False)
        elif isinstance(value, list):
            flat = not any(isinstance(item, (dict, list)) for item in value)
            for i, item in enumerate(value):
                put(name if flat and top else f"{name}[]" if flat else f"{name}[{i}]", item, False)
        elif value is not None:
            fields.append((name, _text(value)))

    for key, value in body.items():
        put(key, value, True)
    return fields


def _spelling(name: str) -> str:
    return re.sub(r"[-_.]", "", name).lower()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class RoundTrip:
    """One API's round trips, in process (``Simulator.handle``), one session per resource."""

    def __init__(self, sim: Simulator, label: str) -> None:
        self.sim = sim
        self.tally = Tally(label)
        self.ops = {op.operation_id: op for op in sim.env.spec.operations}
        self.session = ""
        self.values: dict[str, Any] = {}  # path parameter values of the resource under test

    # -- requests ---------------------------------------------------------------------------

    def generate(self, schema: JSONSchema, seed: str, name: str | None = None, complete: bool = False) -> Any:
        return generate_value(schema, f"roundtrip|{self.tally.label}|{seed}", name=name, complete=complete)

    def request(self, op: Operation, body: Any = None, overrides: dict[str, Any] | None = None) -> SimResponse:
        values = {**self.values, **(overrides or {})}
        path = op.path
        query: list[tuple[str, str]] = []
        headers: list[tuple[str, str]] = []
        for p in op.parameters:
            if p.location == "path":
                if p.name not in values or (p.name not in (overrides or {}) and not self.fits(p.schema, values[p.name])):
                    # a first value, or one this operation's schema for the parameter refuses (a
                    # spec typing one parameter two ways): a parent of its own
                    values[p.name] = self.generate(p.schema, f"path|{op.operation_id}|{p.name}", name=p.name)
                    self.values.setdefault(p.name, values[p.name])
                path = path.replace("{" + p.name + "}", quote(_text(values[p.name]), safe=""))
            elif p.required and primary_type(p.schema, p.schema) not in ("object", "array"):
                value = _text(self.generate(p.schema, f"{op.operation_id}|{p.name}", name=p.name))
                if p.location == "query":
                    query.append((p.name, value))
                elif p.location == "header":
                    headers.append((p.name.lower(), value))
                else:
                    headers.append(("cookie", f"{p.name}={value}"))
        content = b""
        media = self.media(op)
        if body is not None and media is not None:
            headers.append(("content-type", media))
            if media_kind(media) == "form":
                content = urlencode(_form_fields(body)).encode()
            else:
                content = orjson.dumps(body)
        return self.sim.handle(SimRequest(op.method, self.sim.base_path + path, tuple(query), tuple(headers),
                                          content), self.session)

    @staticmethod
    def fits(schema: JSONSchema, value: Any) -> bool:
        return bool(compile_schema(schema).is_valid(value))

    @staticmethod
    def media(op: Operation) -> str | None:
        """The request media type a client would pick: JSON, else a form, else none."""
        content = op.request_body.content if op.request_body else {}
        ranked = sorted((m for m in content if media_kind(m) in ("json", "form") and "*" not in m),
                        key=lambda m: (media_kind(m) != "json", m))
        return ranked[0] if ranked else None

    def body_for(self, op: Operation, seed: str) -> tuple[Any, JSONSchema | None]:
        """A generated body for the operation's JSON (else form) media type, and its schema."""
        media = self.media(op)
        schema = op.request_body.content.get(media) if op.request_body and media else None
        if schema is None:
            return None, None
        body = self.generate(schema, seed, complete=True)
        if isinstance(body, dict):
            # Stripe's expand names response fields to expand, not a field to store: generated
            # words there are paths it refuses (400), as Stripe does
            body.pop(EXPAND, None)
        return body, schema

    # -- the cycle --------------------------------------------------------------------------

    def run(self, sample_every: int = 1) -> Tally:
        self.tally.sampled = sample_every
        writable = [name for name in sorted(self.sim.model.resources) if self.sim.model.resources[name].writable]
        for name in writable[::sample_every]:
            res = self.sim.model.resources[name]
            if res.singleton:
                self.tally.resources += 1
                self.session, self.values = f"roundtrip-{name}", {}
                try:
                    self.document(res)
                except GenerationError as exc:
                    self.tally.skipped.append(f"{name}: no valid value can be generated ({exc})")
                continue
            if res.item_path is None:
                self.tally.skipped.append(f"{name}: no item path (the spec cannot address one record)")
                continue
            self.tally.resources += 1
            self.session = f"roundtrip-{name}"
            self.values = {}
            try:
                self.resource(res)
            except GenerationError as exc:
                self.tally.skipped.append(f"{name}: no valid value can be generated ({exc})")
        return self.tally

    def kinds(self, res: Resource) -> dict[str, list[Operation]]:
        out: dict[str, list[Operation]] = {}
        for op_id, b in sorted(self.sim.model.bindings.items()):
            if b.resource == res.name:
                out.setdefault(b.kind, []).append(self.ops[op_id])
        return out

    def item_op(self, ops: list[Operation], res: Resource) -> Operation | None:
        return next((op for op in ops if op.path == res.item_path), None)

    def resource(self, res: Resource) -> None:
        kinds = self.kinds(res)
        name = res.name
        read = self.item_op(kinds.get("read", []), res)
        if read is not None:  # parents as the read types them: twilio's create types {ConferenceSid} loosely
            for p in read.parameters:
                if p.location == "path" and p.name != res.id_param and p.name not in self.values:
                    self.values[p.name] = self.generate(p.schema, f"path|{read.operation_id}|{p.name}", name=p.name)
        created = self.create(res, kinds.get("create", []))
        if created is None:
            created = self.listed(res, kinds.get("list", []), read)
        if created is None:
            self.tally.skipped.append(f"{name}: nothing to try (no create succeeded and no list shows a record)")
            return
        item_id, sent, created_by = created
        if read is not None:
            self.read_back(res, read, item_id, sent, "create", created_by)
        self.list_reads(res, kinds.get("list", []), read, item_id)
        for kind in ("replace", "update"):
            for op in kinds.get(kind, []):
                if op.path == res.item_path:
                    self.write(res, op, read, item_id, kind)
        delete = self.item_op(kinds.get("delete", []), res)
        if delete is not None:
            answer = self.request(delete, overrides={res.id_param or "": item_id})
            self.tally.check(200 <= answer.status < 300, f"{name}: delete answered {answer.status}: "
                                                           f"{answer.body[:200]!r}")
            if read is not None:
                gone = self.request(read, overrides={res.id_param or "": item_id})
                self.tally.check(gone.status == 404, f"{name}: read after delete answered {gone.status}")

    def document(self, res: Resource) -> None:
        """A singleton (one document per scope): it reads; each write reads back what it set; a
        delete makes the read answer 404 (or ``{}``), and a create after it reads back again."""
        kinds = self.kinds(res)
        read = kinds["read"][0]
        first = self.request(read)
        self.tally.check(200 <= first.status < 300, f"{res.name}: read answered {first.status}: {first.body[:200]!r}")
        for kind in ("update", "delete", "create"):
            for op in kinds.get(kind, []):
                if kind == "delete":
                    answer = self.request(op)
                    self.tally.check(200 <= answer.status < 300,
                                     f"{res.name}: delete {op.operation_id} answered {answer.status}")
                    gone = self.request(read)
                    self.tally.check(gone.status == 404 or (gone.status == 200 and gone.json() == {}),
                                     f"{res.name}: read after delete answered {gone.status}: {gone.body[:100]!r}")
                    continue
                answer, body = self.send_write(res, op, f"{kind}|{op.operation_id}")
                if self.tally.check(200 <= answer.status < 300, f"{res.name}: {kind} {op.operation_id} answered "
                                                                 f"{answer.status}: {answer.body[:300]!r}"):
                    self.read_back(res, read, None, _inner_sent(body), kind, op)

    def send_write(self, res: Resource, op: Operation, seed: str,
                   overrides: dict[str, Any] | None = None) -> tuple[SimResponse, Any]:
        """Send a generated body; when the simulator refuses a field its stored schema cannot
        hold (the request and the record schema type it differently), send the field again with
        a value of the stored schema, as a client reading the docs would, and note it."""
        body, schema = self.body_for(op, seed)
        answer = self.request(op, body, overrides)
        for attempt in range(_RETRIES):
            refused = _refused_field(answer)
            if refused is None or not isinstance(body, dict) or not res.schema:
                break
            stored = object_properties(res.schema, res.schema).get(refused)
            inner = _inner_sent(body)
            if stored is None or refused not in inner:
                break
            value = generate_value(sub_schema(res.schema, stored), f"roundtrip|{seed}|{refused}|{attempt}")
            wanted = primary_type(schema or {}, object_properties(schema or {}, schema or {}).get(refused, {}))
            inner[refused] = str(value) if wanted == "string" and not isinstance(value, str) else value
            self.tally.notes.append(f"{res.name}: {op.operation_id} refused {refused!r} as sent "
                                    f"({_detail(answer)}); sent a stored-schema value instead")
            answer = self.request(op, body, overrides)
        return answer, body

    def create(self, res: Resource, creates: list[Operation]) -> tuple[Any, dict[str, Any], Operation | None] | None:
        for op in creates:
            answer, body = self.send_write(res, op, f"create|{op.operation_id}")
            ok = self.tally.check(200 <= answer.status < 300,
                                  f"{res.name}: create {op.operation_id} answered {answer.status}: {answer.body[:300]!r}")
            if not ok:
                continue
            sent = _inner_sent(body)
            if res.id_param and "{" + res.id_param + "}" in op.path:
                return self.values[res.id_param], sent, op
            found = self.id_of(res, answer.json(), sent)
            if self.tally.check(found is not None, f"{res.name}: create {op.operation_id} answer names no id: "
                                                   f"{answer.body[:200]!r}"):
                return found, sent, op
        return None

    def id_of(self, res: Resource, body: Any, sent: dict[str, Any]) -> Any:
        if isinstance(body, list):  # a create answering the list of what it made
            body = body[0] if len(body) == 1 else None
        candidates = id_candidates(res.id_param or "id")
        has_id = isinstance(body, dict) and any(isinstance(body.get(c), (str, int, float)) for c in candidates)
        record = body if has_id else record_in(body, set(sent) | set(candidates))
        param = res.id_param or "id"
        # the field named as the item path names it, in any case and separators, first: {Sid} ->
        # sid, {CallSid} -> call_sid (a twilio credential's answer has a username too)
        spelled = [k for k in (record or {}) if _spelling(k) == _spelling(param)]
        names = [param, *spelled, *id_candidates(param)]
        for name in names:
            for source in (record or {}, sent):
                value = source.get(name)
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
                    return value
        return None

    def listed(self, res: Resource, lists: list[Operation],
               read: Operation | None) -> tuple[Any, dict[str, Any], Operation | None] | None:
        for op in lists:
            answer = self.request(op)
            for record in records_in(answer.json() if answer.status == 200 else None) or []:
                found = self.id_of(res, record, {})
                if found is not None:
                    return found, {}, None
        return None

    def read_back(self, res: Resource, read: Operation, item_id: Any, sent: dict[str, Any], after: str,
                  wrote: Operation | None) -> None:
        answer = self.request(read, overrides={res.id_param or "": item_id})
        if not self.tally.check(200 <= answer.status < 300, f"{res.name}: read {item_id!r} after {after} "
                                                             f"answered {answer.status}: {answer.body[:200]!r}"):
            return
        if not answer.body:
            return  # a check endpoint (GitHub's 204 "is blocked"): found, nothing to compare
        comparable = self.comparable(res, read, sent, wrote, after)
        record = record_in(answer.json(), set(comparable)) or {}
        for key, value in sorted(comparable.items()):
            self.tally.check(key in record and reads_back_as_sent(value, record[key]),
                             f"{res.name}: {key} written {value!r} after {after}, read {record.get(key, '(absent)')!r}")

    def comparable(self, res: Resource, read: Operation, sent: dict[str, Any], wrote: Operation | None,
                   kind: str) -> dict[str, Any]:
        """The sent scalar fields a read can show: documented by the read's response, neither
        write-only nor read-only (in the request) nor a secret; not a path parameter's namesake
        (the path wins) and, after a replace or update, not the id (writes keep it)."""
        schema = success_schema(read) or {}
        props = object_properties(schema, unwrap_record(schema, schema)[0])
        shown = set(props)
        request = (self.body_for(wrote, "schema")[1] if wrote is not None else None) or {}
        request_props = object_properties(request, request)
        for sub in list(request_props.values()):
            if len(request_props) == 1 and primary_type(request, sub) == "object":
                request_props = object_properties(request, sub)  # the record inside an envelope
        in_path = {p.name for p in wrote.parameters if p.location == "path"} if wrote is not None else set()
        out = {}
        for key, value in sent.items():
            if isinstance(value, (dict, list)) or value is None or key not in shown or _SECRET.search(key):
                continue
            if any(deref(root, prop).get(flag) for root, prop in ((schema, props.get(key, {})),
                                                                 (request, request_props.get(key, {})))
                   for flag in ("writeOnly", "readOnly")):
                continue
            if key in in_path or (kind != "create" and (key == res.id_field or key in id_candidates(res.id_param
                                                                                                or "id")[:4])):
                continue  # the item path names the record: the id and the field the path stands for stay
            out[key] = value
        return out

    def list_reads(self, res: Resource, lists: list[Operation], read: Operation | None, item_id: Any) -> None:
        for op in lists:
            # a required or defaulted query parameter may filter the new record out (petstore's
            # status=available): membership is checked on plain lists only
            required = [p for p in op.parameters if p.location == "query" and (p.required or "default" in p.schema)]
            answer = self.request(op)
            if not self.tally.check(answer.status == 200, f"{res.name}: list {op.operation_id} answered "
                                                          f"{answer.status}: {answer.body[:200]!r}"):
                continue
            records = records_in(answer.json())
            if not self.tally.check(records is not None, f"{res.name}: list {op.operation_id} shows no records"):
                continue
            ids = [self.id_of(res, r, {}) for r in records or []]
            if not required and op.path == res.collection_path:
                self.tally.check(any(same_scalar(item_id, i) for i in ids),
                                 f"{res.name}: list {op.operation_id} does not show the new {item_id!r} ({ids[:8]})")
            if read is None:
                continue
            for listed_id in ids[:10]:
                if listed_id is None:
                    self.tally.check(False, f"{res.name}: a record listed by {op.operation_id} names no id")
                    continue
                answer = self.request(read, overrides={res.id_param or "": listed_id})
                self.tally.check(200 <= answer.status < 300, f"{res.name}: listed {listed_id!r} reads {answer.status}")

    def write(self, res: Resource, op: Operation, read: Operation | None, item_id: Any, kind: str) -> None:
        answer, body = self.send_write(res, op, f"{kind}|{op.operation_id}", {res.id_param or "": item_id})
        if not self.tally.check(200 <= answer.status < 300, f"{res.name}: {kind} {op.operation_id} answered "
                                                             f"{answer.status}: {answer.body[:300]!r}"):
            return
        if read is not None:
            self.read_back(res, read, item_id, _inner_sent(body), kind, op)


def _refused_field(answer: SimResponse) -> str | None:
    """The field a "cannot be stored as sent" problem names (None for any other answer)."""
    if answer.status not in (400, 422) or b"cannot be stored as sent" not in answer.body:
        return None
    for error in (answer.json() or {}).get("errors", []):
        if isinstance(error, dict) and error.get("name"):
            return str(error["name"])
    return None


def _detail(answer: SimResponse) -> str:
    body = answer.json()
    return str(body.get("detail", ""))[:160] if isinstance(body, dict) else ""


def _inner_sent(body: Any) -> dict[str, Any]:
    """The record a request body carries: itself, or the object inside a one-member envelope."""
    if not isinstance(body, dict):
        return {}
    if len(body) == 1:
        (member,) = body.values()
        if isinstance(member, dict):
            return member
    return body


def round_trip(sim: Simulator, label: str, sample_every: int = 1) -> Tally:
    return RoundTrip(sim, label).run(sample_every)


FIGURES: dict[str, Tally] = {}  # label -> tally, for the terminal summary (conftest.py)


__all__ = ["FIGURES", "RoundTrip", "Tally", "round_trip", "same_scalar"]
