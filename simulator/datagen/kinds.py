"""Realistic values by name *kind* (``email``, ``city``, ``timestamp``...): one maker per kind,
in :data:`KIND_MAKERS`. :mod:`simulator.datagen.names` tells a property's kind from its name;
the vocabulary comes from :mod:`simulator.datagen.values`.

A maker takes the caller's ``random.Random``, the JSON type wanted, the schema node and the
epoch, and returns a candidate of that type (None when the kind has no value of that type);
the walk checks the candidate against the schema. Hold
:data:`~simulator.datagen.values.GENERATION_LOCK` while calling them (Faker is shared).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from random import Random
from typing import Any

from .values import (
    SHORT_WORDS,
    company,
    date_text,
    date_time_text,
    domain_name,
    email,
    faker_with,
    first_name,
    image_url,
    ipv4,
    ipv6,
    label,
    last_name,
    moment,
    money,
    password,
    sentence,
    slug,
    url,
    username,
    uuid_text,
)

_MIME_TYPES = ("application/json", "text/plain", "image/png", "image/jpeg", "application/pdf", "text/csv")
_STATUSES = ("active",)


def _token(rng: Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _kind_timestamp(rng: Random, json_type: str, node: dict[str, Any], epoch: datetime.datetime) -> Any:
    when = moment(rng, epoch)
    if json_type == "string":
        fmt = node.get("format")
        if fmt == "date":
            return when.date().isoformat()
        if fmt == "time":
            return when.strftime("%H:%M:%SZ")
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    if json_type in ("integer", "number"):
        return int(when.timestamp())
    return None


def _kind_timestamp_ms(rng: Random, json_type: str, node: dict[str, Any], epoch: datetime.datetime) -> Any:
    if json_type not in ("integer", "number"):
        return None
    return int(moment(rng, epoch).timestamp()) * 1000 + rng.randrange(1000)


def _kind_date(rng: Random, json_type: str, node: dict[str, Any], epoch: datetime.datetime) -> Any:
    if json_type != "string":
        return _kind_timestamp(rng, json_type, node, epoch)
    if node.get("format") == "date-time":
        return date_time_text(rng, epoch)
    return date_text(rng, epoch)


def _kind_birth_date(rng: Random, json_type: str, node: dict[str, Any], epoch: datetime.datetime) -> Any:
    if json_type != "string":
        return None
    born = epoch.date() - datetime.timedelta(days=rng.randint(18 * 365, 80 * 365))
    return born.isoformat()


def _kind_id(rng: Random, json_type: str, node: dict[str, Any], epoch: datetime.datetime) -> Any:
    if json_type == "integer":
        return rng.randint(1, 99999)
    if json_type == "number":
        return float(rng.randint(1, 99999))
    if node.get("format") == "uuid" or rng.random() < 0.3:
        return uuid_text(rng)
    return f"{rng.choice(SHORT_WORDS)}-{rng.randint(1, 99999)}"


def _numeric(make: Callable[[Random], Any]) -> Callable[..., Any]:
    def kind(rng: Random, json_type: str, node: dict[str, Any], epoch: datetime.datetime) -> Any:
        if json_type not in ("integer", "number", "string"):
            return None
        value = make(rng)
        if json_type == "string":  # numbers sent as text, e.g. Twilio's "num_media": "2"
            return str(value)
        return round(value) if json_type == "integer" else value

    return kind


def _textual(make: Callable[[Random], Any]) -> Callable[..., Any]:
    def kind(rng: Random, json_type: str, node: dict[str, Any], epoch: datetime.datetime) -> Any:
        return make(rng) if json_type == "string" else None

    return kind


def _kind_money(rng: Random, json_type: str, node: dict[str, Any], epoch: datetime.datetime) -> Any:
    if json_type == "integer":
        return rng.randint(1, 500)
    if json_type == "number":
        return money(rng)
    if json_type == "string":
        return f"{money(rng):.2f}"
    return None


def _kind_color(rng: Random, json_type: str, node: dict[str, Any], epoch: datetime.datetime) -> Any:
    if json_type != "string":
        return None
    if "pattern" in node or rng.random() < 0.5:
        return f"#{rng.getrandbits(24):06x}"
    return faker_with(rng).color_name().lower()


def _kind_state(rng: Random, json_type: str, node: dict[str, Any], epoch: datetime.datetime) -> Any:
    if json_type != "string":
        return None
    if node.get("maxLength", 99) <= 3:
        return faker_with(rng).state_abbr()
    return faker_with(rng).state()


def _kind_street(rng: Random) -> str:
    return f"{rng.randint(1, 9999)} {last_name(rng)} {faker_with(rng).street_suffix()}"


KindMaker = Callable[[Random, str, dict[str, Any], datetime.datetime], Any]

KIND_MAKERS: dict[str, KindMaker] = {
    "email": _textual(email),
    "first_name": _textual(first_name),
    "last_name": _textual(last_name),
    "full_name": _textual(lambda rng: f"{first_name(rng)} {last_name(rng)}"),
    "username": _textual(username),
    "label": _textual(label),
    "city": _textual(lambda rng: faker_with(rng).city()),
    "country": _textual(lambda rng: faker_with(rng).country()),
    "country_code": _textual(lambda rng: faker_with(rng).country_code()),
    "state": _kind_state,
    "street": _textual(_kind_street),
    "postal_code": _textual(lambda rng: faker_with(rng).postcode()),
    "phone": _textual(lambda rng: faker_with(rng).phone_number()),
    "company": _textual(company),
    "title": _textual(lambda rng: faker_with(rng).catch_phrase()),
    "sentence": _textual(sentence),
    "url": _textual(url),
    "image": _textual(image_url),
    "currency": _textual(lambda rng: faker_with(rng).currency_code()),
    "money": _kind_money,
    "count": _numeric(lambda rng: rng.randint(0, 20)),
    "latitude": _numeric(lambda rng: round(rng.uniform(-90, 90), 6)),
    "longitude": _numeric(lambda rng: round(rng.uniform(-180, 180), 6)),
    "color": _kind_color,
    "hex_color": _textual(lambda rng: f"#{rng.getrandbits(24):06x}"),
    "language": _textual(lambda rng: faker_with(rng).language_code()),
    "locale": _textual(lambda rng: faker_with(rng).locale().replace("_", "-")),
    "timezone": _textual(lambda rng: faker_with(rng).timezone()),
    "ip": _textual(ipv4),
    "ipv6": _textual(ipv6),
    "hostname": _textual(domain_name),
    "uuid": _textual(uuid_text),
    "id": _kind_id,
    "timestamp": _kind_timestamp,
    "timestamp_ms": _kind_timestamp_ms,
    "date": _kind_date,
    "birth_date": _kind_birth_date,
    "status": _textual(lambda rng: rng.choice(_STATUSES)),
    "tag": _textual(lambda rng: rng.choice(SHORT_WORDS)),
    "password": _textual(password),
    "token": _textual(_token),
    "slug": _textual(slug),
    "sha": _textual(lambda rng: f"{rng.getrandbits(160):040x}"),
    "branch": _textual(lambda rng: rng.choice(("main", "master", "develop", f"feature/{slug(rng)}"))),
    "version": _textual(lambda rng: f"{rng.randint(0, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"),
    "age": _numeric(lambda rng: rng.randint(18, 90)),
    "year": _numeric(lambda rng: rng.randint(1990, 2024)),
    "gender": _textual(lambda rng: rng.choice(("female", "male", "other"))),
    "job": _textual(lambda rng: faker_with(rng).job()),
    "file_name": _textual(
        lambda rng: f"{rng.choice(SHORT_WORDS)}.{rng.choice(('pdf', 'png', 'txt', 'csv'))}"
    ),
    "mime_type": _textual(lambda rng: rng.choice(_MIME_TYPES)),
    "user_agent": _textual(lambda rng: faker_with(rng).user_agent()),
    "path": _textual(lambda rng: "/" + "/".join(rng.choice(SHORT_WORDS) for _ in range(rng.randint(1, 3)))),
    "port": _numeric(lambda rng: rng.choice((80, 443, 8080, 5432, 6379, rng.randint(1024, 65535)))),
    "percent": _numeric(lambda rng: round(rng.uniform(0, 100), 1)),
    "rating": _numeric(lambda rng: rng.randint(1, 5)),
    "dimension": _numeric(lambda rng: rng.randint(16, 1920)),
}
