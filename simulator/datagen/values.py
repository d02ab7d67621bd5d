"""Realistic leaf values: the vocabulary (names, places, text), one maker per string ``format``, plus
plain text; the makers per name *kind* build on it in :mod:`simulator.datagen.kinds`.

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
from email.utils import format_datetime
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
SHORT_WORDS: tuple[str, ...] = tuple(word for word in _WORDS if 3 <= len(word) <= 8) or _WORDS
_SPEECH: dict[str, Any] = getattr(_FAKER.provider("faker.providers.lorem"), "parts_of_speech", None) or {}
_ADJECTIVES: tuple[str, ...] = tuple(_SPEECH.get("adjective", ())) or SHORT_WORDS
_NOUNS: tuple[str, ...] = tuple(_SPEECH.get("noun", ())) or SHORT_WORDS
_FREE_EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "example.com", "example.org")
_TLDS = ("com", "com", "com", "net", "org", "io")
_COMPANY_SUFFIXES = ("Inc", "LLC", "Group", "Ltd", "and Sons", "Labs")


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

    def _randbelow(self, n: int) -> int:
        """``Random._randbelow_with_getrandbits`` (what ``choice``, ``randrange`` and ``shuffle``
        draw with), with ``getrandbits`` and ``_next`` inlined for the usual ``n`` below 2**64:
        the same numbers, a few calls fewer each (the generator makes some 50,000 a certify run)."""
        k = n.bit_length()
        if not 0 < k <= 64:
            return self._randbelow_with_getrandbits(n)  # type: ignore[attr-defined]  # (not in typeshed)
        mask, shift = self._MASK, 64 - k
        while True:
            self._state = z = (self._state + 0x9E3779B97F4A7C15) & mask
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
            r = (z ^ (z >> 31)) >> shift
            if r < n:
                return r

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


def first_name(rng: Random) -> str:
    return rng.choices(_FIRST_NAMES[0], cum_weights=_FIRST_NAMES[1])[0]


def last_name(rng: Random) -> str:
    return rng.choices(_LAST_NAMES[0], cum_weights=_LAST_NAMES[1])[0]


_LAST_NAMES_ASCII = [_ascii_lower(name) or "example" for name in _LAST_NAMES[0]]


def domain_name(rng: Random) -> str:
    name = rng.choices(_LAST_NAMES_ASCII, cum_weights=_LAST_NAMES[1])[0]
    return f"{name}.{rng.choice(_TLDS)}"


def faker_with(rng: Random) -> Faker:
    _FAKER.random = rng  # type: ignore[attr-defined]  # the proxy forwards it to its one generator
    return _FAKER


def moment(rng: Random, epoch: datetime.datetime) -> datetime.datetime:
    """A moment up to two years before ``epoch``, whole seconds, in UTC."""
    if epoch.tzinfo is None:
        epoch = epoch.replace(tzinfo=datetime.UTC)
    return (epoch - datetime.timedelta(seconds=rng.randrange(2 * 365 * 86400))).astimezone(datetime.UTC)


def date_time_text(rng: Random, epoch: datetime.datetime) -> str:
    return moment(rng, epoch).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc_2822_text(when: datetime.datetime) -> str:
    """``when`` as RFC 2822 writes a date-time (``Fri, 24 May 2019 17:44:46 +0000``; the
    ``date-time-rfc-2822`` format of Twilio's spec), in English whatever the locale."""
    return format_datetime(when.astimezone(datetime.UTC))


def date_text(rng: Random, epoch: datetime.datetime) -> str:
    return moment(rng, epoch).date().isoformat()


def words(rng: Random, count: int) -> str:
    return " ".join(rng.choice(SHORT_WORDS) for _ in range(count))


def label(rng: Random) -> str:
    """A thing's name (a team's, a feed's, a droplet's): Faker's adjective and noun, "Pleasant Harbor"."""
    return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}".title()


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
    local = f"{_ascii_lower(first_name(rng))}.{_ascii_lower(last_name(rng))}"
    if rng.random() < 0.3:
        local += str(rng.randint(1, 99))
    return f"{local}@{rng.choice(_FREE_EMAIL_DOMAINS)}"


def username(rng: Random) -> str:
    base = _ascii_lower(first_name(rng)) + rng.choice(("", "_", "."))
    return base + (_ascii_lower(last_name(rng)) if rng.random() < 0.5 else str(rng.randint(1, 999)))


def url(rng: Random) -> str:
    path = "/".join(rng.choice(SHORT_WORDS) for _ in range(rng.randint(0, 2)))
    return f"https://www.{domain_name(rng)}/{path}"


def image_url(rng: Random) -> str:
    return f"https://images.{domain_name(rng)}/{rng.choice(SHORT_WORDS)}-{rng.randint(1, 9999)}.png"


def company(rng: Random) -> str:
    if rng.random() < 0.5:
        return f"{last_name(rng)} {rng.choice(_COMPANY_SUFFIXES)}"
    return f"{last_name(rng)}-{last_name(rng)}"


def slug(rng: Random) -> str:
    return "-".join(rng.choice(SHORT_WORDS) for _ in range(rng.randint(1, 3)))


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


def password(rng: Random) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(10, 14))) + rng.choice("!#%&*")


FormatMaker = Callable[[Random, datetime.datetime], str]
RFC_2822 = "date-time-rfc-2822"  # the format name Twilio's spec gives its dates
TEXT_FORMATS = frozenset({RFC_2822})
"""Formats whose text form is the point (no validator checks it): a property's name does not
override them (``date_created`` gets an RFC 2822 date-time, not the ISO one its name suggests)."""

FORMAT_MAKERS: dict[str, FormatMaker] = {
    "date": date_text,
    "date-time": date_time_text,
    RFC_2822: lambda rng, epoch: rfc_2822_text(moment(rng, epoch)),
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
    "uri-template": lambda rng, _: f"https://api.{domain_name(rng)}/{rng.choice(SHORT_WORDS)}/{{id}}",
    "hostname": lambda rng, _: domain_name(rng),
    "idn-hostname": lambda rng, _: domain_name(rng),
    "ipv4": lambda rng, _: ipv4(rng),
    "ipv6": lambda rng, _: ipv6(rng),
    "byte": lambda rng, _: base64.b64encode(rng.randbytes(rng.randint(6, 18))).decode(),
    "binary": lambda rng, _: "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(8, 16))),
    "password": lambda rng, _: password(rng),
    "phone": lambda rng, _: faker_with(rng).phone_number(),
    "phone-number": lambda rng, _: faker_with(rng).phone_number(),
    "tel": lambda rng, _: faker_with(rng).phone_number(),
    "regex": lambda rng, _: "^[a-z]+$",
    "json-pointer": lambda rng, _: "/" + "/".join(rng.choice(SHORT_WORDS) for _ in range(2)),
    "relative-json-pointer": lambda rng, _: f"{rng.randint(0, 3)}/{rng.choice(SHORT_WORDS)}",
    "slug": lambda rng, _: slug(rng),
    # numbers written as strings (OpenAPI "type: string, format: int64 / decimal")
    "int32": lambda rng, _: str(rng.randint(1, 99999)),
    "int64": lambda rng, _: str(rng.randint(1, 10**9)),
    "decimal": lambda rng, _: f"{money(rng):.2f}",
    "double": lambda rng, _: f"{money(rng):.2f}",
    "float": lambda rng, _: f"{money(rng):.2f}",
}
