"""Realistic leaf values: one maker per name *kind* and per string ``format``, plus plain text.

Every maker takes the caller's ``random.Random`` (never a global one) and returns a candidate;
:mod:`simulator.datagen.generate` decides whether the candidate fits the schema. Faker supplies the
vocabulary through one module-level instance whose ``random`` is set before each use. Where
Faker's own method is slow (weighted name tables rebuilt on every call), the same Faker data
is sampled through precomputed cumulative weights instead.

Not thread-safe on its own: callers hold :data:`GENERATION_LOCK` while they use these makers.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import string
import threading
import uuid
from collections.abc import Callable
from random import Random
from typing import Any

from faker import Faker

GENERATION_LOCK = threading.RLock()

_FAKER = Faker("en_US")


def _weighted_table(table: Any) -> tuple[list[str], list[float]]:
    items = list(table.items()) if isinstance(table, dict) else [(item, 1.0) for item in table]
    return [key for key, _ in items], list(itertools.accumulate(float(weight) for _, weight in items))


_PERSON = _FAKER.provider("faker.providers.person")
_FIRST_NAMES = _weighted_table(getattr(_PERSON, "first_names", ("Alex", "Sam", "Kim")))
_LAST_NAMES = _weighted_table(getattr(_PERSON, "last_names", ("Smith", "Jones", "Lee")))
_WORDS: tuple[str, ...] = tuple(
    getattr(_FAKER.provider("faker.providers.lorem"), "word_list", ()) or ("alpha", "beta", "gamma")
)
_SHORT_WORDS: tuple[str, ...] = tuple(word for word in _WORDS if 3 <= len(word) <= 8) or _WORDS
_FREE_EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "example.com", "example.org")
_TLDS = ("com", "com", "com", "net", "org", "io")
_COMPANY_SUFFIXES = ("Inc", "LLC", "Group", "Ltd", "and Sons", "Labs")
_STATUSES = ("active",)
_MIME_TYPES = ("application/json", "text/plain", "image/png", "image/jpeg", "application/pdf", "text/csv")


class SeededRandom(Random):
    """``random.Random`` driven by SplitMix64: cheap to create, so every value can have its own.

    Seeding the stock Mersenne Twister costs microseconds (it fills 624 words of state) and a
    generated object needs one generator per field; this one keeps 64 bits of state. All of
    ``Random``'s methods work on top of the two primitives overridden here. Its stream is fixed
    by the algorithm below, independent of the Python version.
    """

    _MASK = (1 << 64) - 1

    def __init__(self, seed: int) -> None:  # no super().__init__: that would seed the Twister
        self._state = seed & self._MASK
        self.gauss_next = None

    def seed(self, a: Any = None, version: int = 2) -> None:
        if not isinstance(a, int):
            raise TypeError("SeededRandom takes an int seed")
        self._state = a & self._MASK

    def getstate(self) -> Any:
        return self._state

    def setstate(self, state: Any) -> None:
        self._state = int(state)

    def _next(self) -> int:
        mask = self._MASK
        self._state = z = (self._state + 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    def random(self) -> float:
        return (self._next() >> 11) * (1.0 / 9007199254740992.0)

    def getrandbits(self, k: int) -> int:
        if k <= 64:
            return self._next() >> (64 - k) if k > 0 else 0
        value = bits = 0
        while bits < k:
            value = (value << 64) | self._next()
            bits += 64
        return value >> (bits - k)


def _ascii_lower(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch in string.ascii_lowercase or ch.isdigit())


def _first(rng: Random) -> str:
    return rng.choices(_FIRST_NAMES[0], cum_weights=_FIRST_NAMES[1])[0]


def _last(rng: Random) -> str:
    return rng.choices(_LAST_NAMES[0], cum_weights=_LAST_NAMES[1])[0]


_LAST_NAMES_ASCII = [_ascii_lower(name) or "example" for name in _LAST_NAMES[0]]


def _domain(rng: Random) -> str:
    name = rng.choices(_LAST_NAMES_ASCII, cum_weights=_LAST_NAMES[1])[0]
    return f"{name}.{rng.choice(_TLDS)}"


def _faker(rng: Random) -> Faker:
    _FAKER.random = rng  # type: ignore[attr-defined]  # the proxy forwards it to its one generator
    return _FAKER


def moment(rng: Random, epoch: datetime.datetime) -> datetime.datetime:
    """A moment up to two years before ``epoch``, whole seconds, in UTC."""
    if epoch.tzinfo is None:
        epoch = epoch.replace(tzinfo=datetime.UTC)
    return (epoch - datetime.timedelta(seconds=rng.randrange(2 * 365 * 86400))).astimezone(datetime.UTC)


def date_time_text(rng: Random, epoch: datetime.datetime) -> str:
    return moment(rng, epoch).strftime("%Y-%m-%dT%H:%M:%SZ")


def date_text(rng: Random, epoch: datetime.datetime) -> str:
    return moment(rng, epoch).date().isoformat()


def words(rng: Random, count: int) -> str:
    return " ".join(rng.choice(_SHORT_WORDS) for _ in range(count))


def sentence(rng: Random) -> str:
    text = words(rng, rng.randint(4, 9))
    return text[0].upper() + text[1:] + "."


def plain_text(rng: Random, min_length: int = 0, max_length: int | None = None) -> str:
    """A few lorem words, padded or cut to fit ``min_length..max_length`` code points."""
    text = words(rng, rng.randint(1, 3))
    if len(text) < min_length:
        parts = [text]
        length = len(text)
        while length < min_length:
            part = " " + words(rng, 4) if length + 40 < min_length else rng.choice(string.ascii_lowercase)
            parts.append(part)
            length += len(part)
        text = "".join(parts)
    if max_length is not None and len(text) > max_length:
        text = text[:max_length]
        if len(text) > min_length and text.endswith(" "):
            text = text.rstrip() or text
        if len(text) < min_length:
            text += "x" * (min_length - len(text))
    return text


def email(rng: Random) -> str:
    local = f"{_ascii_lower(_first(rng))}.{_ascii_lower(_last(rng))}"
    if rng.random() < 0.3:
        local += str(rng.randint(1, 99))
    return f"{local}@{rng.choice(_FREE_EMAIL_DOMAINS)}"


def username(rng: Random) -> str:
    base = _ascii_lower(_first(rng)) + rng.choice(("", "_", "."))
    return base + (_ascii_lower(_last(rng)) if rng.random() < 0.5 else str(rng.randint(1, 999)))


def url(rng: Random) -> str:
    path = "/".join(rng.choice(_SHORT_WORDS) for _ in range(rng.randint(0, 2)))
    return f"https://www.{_domain(rng)}/{path}"


def image_url(rng: Random) -> str:
    return f"https://images.{_domain(rng)}/{rng.choice(_SHORT_WORDS)}-{rng.randint(1, 9999)}.png"


def company(rng: Random) -> str:
    if rng.random() < 0.5:
        return f"{_last(rng)} {rng.choice(_COMPANY_SUFFIXES)}"
    return f"{_last(rng)}-{_last(rng)}"


def slug(rng: Random) -> str:
    return "-".join(rng.choice(_SHORT_WORDS) for _ in range(rng.randint(1, 3)))


def uuid_text(rng: Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def ipv4(rng: Random) -> str:
    return f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ipv6(rng: Random) -> str:
    return ":".join(f"{rng.getrandbits(16):x}" for _ in range(8))


def money(rng: Random) -> float:
    return round(rng.uniform(1, 500), 2)


def _duration(rng: Random) -> str:
    return rng.choice((f"P{rng.randint(1, 30)}D", f"PT{rng.randint(1, 59)}M", f"PT{rng.randint(1, 12)}H"))


def _time_text(rng: Random, epoch: datetime.datetime) -> str:
    return moment(rng, epoch).strftime("%H:%M:%SZ")


def _password(rng: Random) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(10, 14))) + rng.choice("!#%&*")


def _token(rng: Random) -> str:
    return f"{rng.getrandbits(128):032x}"


FormatMaker = Callable[[Random, datetime.datetime], str]

FORMAT_MAKERS: dict[str, FormatMaker] = {
    "date": date_text,
    "date-time": date_time_text,
    "time": _time_text,
    "duration": lambda rng, _: _duration(rng),
    "email": lambda rng, _: email(rng),
    "idn-email": lambda rng, _: email(rng),
    "uuid": lambda rng, _: uuid_text(rng),
    "uri": lambda rng, _: url(rng),
    "url": lambda rng, _: url(rng),
    "iri": lambda rng, _: url(rng),
    "uri-reference": lambda rng, _: "/" + slug(rng),
    "iri-reference": lambda rng, _: "/" + slug(rng),
    "uri-template": lambda rng, _: f"https://api.{_domain(rng)}/{rng.choice(_SHORT_WORDS)}/{{id}}",
    "hostname": lambda rng, _: _domain(rng),
    "idn-hostname": lambda rng, _: _domain(rng),
    "ipv4": lambda rng, _: ipv4(rng),
    "ipv6": lambda rng, _: ipv6(rng),
    "byte": lambda rng, _: base64.b64encode(rng.randbytes(rng.randint(6, 18))).decode(),
    "binary": lambda rng, _: "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(8, 16))),
    "password": lambda rng, _: _password(rng),
    "phone": lambda rng, _: _faker(rng).phone_number(),
    "phone-number": lambda rng, _: _faker(rng).phone_number(),
    "tel": lambda rng, _: _faker(rng).phone_number(),
    "regex": lambda rng, _: "^[a-z]+$",
    "json-pointer": lambda rng, _: "/" + "/".join(rng.choice(_SHORT_WORDS) for _ in range(2)),
    "relative-json-pointer": lambda rng, _: f"{rng.randint(0, 3)}/{rng.choice(_SHORT_WORDS)}",
    "slug": lambda rng, _: slug(rng),
    # numbers written as strings (OpenAPI "type: string, format: int64 / decimal")
    "int32": lambda rng, _: str(rng.randint(1, 99999)),
    "int64": lambda rng, _: str(rng.randint(1, 10**9)),
    "decimal": lambda rng, _: f"{money(rng):.2f}",
    "double": lambda rng, _: f"{money(rng):.2f}",
    "float": lambda rng, _: f"{money(rng):.2f}",
}


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
    return f"{rng.choice(_SHORT_WORDS)}-{rng.randint(1, 99999)}"


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
    return _faker(rng).color_name().lower()


def _kind_state(rng: Random, json_type: str, node: dict[str, Any], epoch: datetime.datetime) -> Any:
    if json_type != "string":
        return None
    if node.get("maxLength", 99) <= 3:
        return _faker(rng).state_abbr()
    return _faker(rng).state()


def _kind_street(rng: Random) -> str:
    return f"{rng.randint(1, 9999)} {_last(rng)} {_faker(rng).street_suffix()}"


KindMaker = Callable[[Random, str, dict[str, Any], datetime.datetime], Any]

KIND_MAKERS: dict[str, KindMaker] = {
    "email": _textual(email),
    "first_name": _textual(_first),
    "last_name": _textual(_last),
    "full_name": _textual(lambda rng: f"{_first(rng)} {_last(rng)}"),
    "username": _textual(username),
    "label": _textual(lambda rng: words(rng, rng.randint(1, 2)).title()),
    "city": _textual(lambda rng: _faker(rng).city()),
    "country": _textual(lambda rng: _faker(rng).country()),
    "country_code": _textual(lambda rng: _faker(rng).country_code()),
    "state": _kind_state,
    "street": _textual(_kind_street),
    "postal_code": _textual(lambda rng: _faker(rng).postcode()),
    "phone": _textual(lambda rng: _faker(rng).phone_number()),
    "company": _textual(company),
    "title": _textual(lambda rng: _faker(rng).catch_phrase()),
    "sentence": _textual(sentence),
    "url": _textual(url),
    "image": _textual(image_url),
    "currency": _textual(lambda rng: _faker(rng).currency_code()),
    "money": _kind_money,
    "count": _numeric(lambda rng: rng.randint(0, 20)),
    "latitude": _numeric(lambda rng: round(rng.uniform(-90, 90), 6)),
    "longitude": _numeric(lambda rng: round(rng.uniform(-180, 180), 6)),
    "color": _kind_color,
    "hex_color": _textual(lambda rng: f"#{rng.getrandbits(24):06x}"),
    "language": _textual(lambda rng: _faker(rng).language_code()),
    "locale": _textual(lambda rng: _faker(rng).locale().replace("_", "-")),
    "timezone": _textual(lambda rng: _faker(rng).timezone()),
    "ip": _textual(ipv4),
    "ipv6": _textual(ipv6),
    "hostname": _textual(_domain),
    "uuid": _textual(uuid_text),
    "id": _kind_id,
    "timestamp": _kind_timestamp,
    "timestamp_ms": _kind_timestamp_ms,
    "date": _kind_date,
    "birth_date": _kind_birth_date,
    "status": _textual(lambda rng: rng.choice(_STATUSES)),
    "tag": _textual(lambda rng: rng.choice(_SHORT_WORDS)),
    "password": _textual(_password),
    "token": _textual(_token),
    "slug": _textual(slug),
    "sha": _textual(lambda rng: f"{rng.getrandbits(160):040x}"),
    "branch": _textual(lambda rng: rng.choice(("main", "master", "develop", f"feature/{slug(rng)}"))),
    "version": _textual(lambda rng: f"{rng.randint(0, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"),
    "age": _numeric(lambda rng: rng.randint(18, 90)),
    "year": _numeric(lambda rng: rng.randint(1990, 2024)),
    "gender": _textual(lambda rng: rng.choice(("female", "male", "other"))),
    "job": _textual(lambda rng: _faker(rng).job()),
    "file_name": _textual(
        lambda rng: f"{rng.choice(_SHORT_WORDS)}.{rng.choice(('pdf', 'png', 'txt', 'csv'))}"
    ),
    "mime_type": _textual(lambda rng: rng.choice(_MIME_TYPES)),
    "user_agent": _textual(lambda rng: _faker(rng).user_agent()),
    "path": _textual(lambda rng: "/" + "/".join(rng.choice(_SHORT_WORDS) for _ in range(rng.randint(1, 3)))),
    "port": _numeric(lambda rng: rng.choice((80, 443, 8080, 5432, 6379, rng.randint(1024, 65535)))),
    "percent": _numeric(lambda rng: round(rng.uniform(0, 100), 1)),
    "rating": _numeric(lambda rng: rng.randint(1, 5)),
    "dimension": _numeric(lambda rng: rng.randint(16, 1920)),
}
