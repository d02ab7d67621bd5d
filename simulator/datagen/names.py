"""Field-name heuristics: which *kind* of realistic value a property name asks for.

``classify_name("avatarURL") == "image"``, ``classify_name("created_at") == "timestamp"``.
The table is data; :mod:`simulator.datagen.kinds` turns a kind into a value, and
:mod:`simulator.datagen.generate` keeps the value only when it validates against the schema.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Whole normalised names (tokens joined by "_") that are unambiguous on their own.
EXACT_NAMES: dict[str, str] = {
    "email": "email",
    "email_address": "email",
    "mail": "email",
    "first_name": "first_name",
    "firstname": "first_name",
    "given_name": "first_name",
    "forename": "first_name",
    "last_name": "last_name",
    "lastname": "last_name",
    "family_name": "last_name",
    "surname": "last_name",
    "name": "full_name",
    "full_name": "full_name",
    "fullname": "full_name",
    "display_name": "full_name",
    "real_name": "full_name",
    "contact_name": "full_name",
    "author_name": "full_name",
    "owner_name": "full_name",
    "customer_name": "full_name",
    "person_name": "full_name",
    "username": "username",
    "user_name": "username",
    "login": "username",
    "screen_name": "username",
    "nickname": "username",
    "handle": "username",
    "country_code": "country_code",
    "country_iso": "country_code",
    "country_iso_code": "country_code",
    "zip": "postal_code",
    "zipcode": "postal_code",
    "zip_code": "postal_code",
    "postal_code": "postal_code",
    "postalcode": "postal_code",
    "postcode": "postal_code",
    "post_code": "postal_code",
    "phone": "phone",
    "phone_number": "phone",
    "phonenumber": "phone",
    "mobile": "phone",
    "mobile_number": "phone",
    "telephone": "phone",
    "fax": "phone",
    "company_name": "company",
    "organization_name": "company",
    "organisation_name": "company",
    "business_name": "company",
    "street_address": "street",
    "address_line": "street",
    "address_line1": "street",
    "address_line_1": "street",
    "address1": "street",
    "ip_address": "ip",
    "ipv4": "ip",
    "ip_v4": "ip",
    "ipv6": "ipv6",
    "ip_v6": "ipv6",
    "host_name": "hostname",
    "domain_name": "hostname",
    "file_name": "file_name",
    "filename": "file_name",
    "mime_type": "mime_type",
    "content_type": "mime_type",
    "media_type": "mime_type",
    "user_agent": "user_agent",
    "time_zone": "timezone",
    "timezone": "timezone",
    "tz": "timezone",
    "birth_date": "birth_date",
    "birthdate": "birth_date",
    "birthday": "birth_date",
    "date_of_birth": "birth_date",
    "dob": "birth_date",
    "api_key": "token",
    "access_token": "token",
    "refresh_token": "token",
    "secret": "password",
    "client_secret": "password",
    "total_count": "count",
    "currency_code": "currency",
    "language_code": "language",
    "lang": "language",
    "locale": "locale",
    "latitude": "latitude",
    "lat": "latitude",
    "longitude": "longitude",
    "lon": "longitude",
    "lng": "longitude",
    "long": "longitude",
    "hex_color": "hex_color",
    "color_hex": "hex_color",
}

# The last two tokens of a name ("avatar_url" in "user_avatar_url").
PAIR_SUFFIXES: dict[str, str] = {
    "avatar_url": "image",
    "image_url": "image",
    "photo_url": "image",
    "picture_url": "image",
    "thumbnail_url": "image",
    "logo_url": "image",
    "icon_url": "image",
    "html_url": "url",
    "first_name": "first_name",
    "given_name": "first_name",
    "last_name": "last_name",
    "family_name": "last_name",
    "middle_name": "first_name",
    "maiden_name": "last_name",
    "nick_name": "username",
    "city_name": "city",
    "country_name": "country",
    "state_name": "state",
    "bank_name": "company",
    "user_name": "username",
    "screen_name": "username",
    "display_name": "full_name",
    "full_name": "full_name",
    "company_name": "company",
    "file_name": "file_name",
    "host_name": "hostname",
    "domain_name": "hostname",
    "country_code": "country_code",
    "postal_code": "postal_code",
    "zip_code": "postal_code",
    "phone_number": "phone",
    "email_address": "email",
    "ip_address": "ip",
    "street_address": "street",
    "time_zone": "timezone",
    "content_type": "mime_type",
    "mime_type": "mime_type",
    "currency_code": "currency",
    "language_code": "language",
    "birth_date": "birth_date",
}

# The last token of a name.
LAST_TOKENS: dict[str, str] = {
    "email": "email",
    "city": "city",
    "town": "city",
    "country": "country",
    "state": "state",
    "region": "state",
    "province": "state",
    "county": "state",
    "street": "street",
    "address": "street",
    "zip": "postal_code",
    "zipcode": "postal_code",
    "postcode": "postal_code",
    "postal": "postal_code",
    "phone": "phone",
    "mobile": "phone",
    "telephone": "phone",
    "company": "company",
    "organization": "company",
    "organisation": "company",
    "org": "company",
    "employer": "company",
    "title": "title",
    "headline": "title",
    "subject": "title",
    "description": "sentence",
    "summary": "sentence",
    "bio": "sentence",
    "about": "sentence",
    "note": "sentence",
    "notes": "sentence",
    "comment": "sentence",
    "message": "sentence",
    "body": "sentence",
    "text": "sentence",
    "caption": "sentence",
    "reason": "sentence",
    "url": "url",
    "uri": "url",
    "website": "url",
    "homepage": "url",
    "link": "url",
    "href": "url",
    "endpoint": "url",
    "image": "image",
    "avatar": "image",
    "photo": "image",
    "picture": "image",
    "thumbnail": "image",
    "logo": "image",
    "icon": "image",
    "currency": "currency",
    "price": "money",
    "amount": "money",
    "cost": "money",
    "total": "money",
    "subtotal": "money",
    "balance": "money",
    "fee": "money",
    "tax": "money",
    "discount": "money",
    "salary": "money",
    "quantity": "count",
    "qty": "count",
    "count": "count",
    "stock": "count",
    "latitude": "latitude",
    "lat": "latitude",
    "longitude": "longitude",
    "lon": "longitude",
    "lng": "longitude",
    "color": "color",
    "colour": "color",
    "language": "language",
    "locale": "locale",
    "timezone": "timezone",
    "ip": "ip",
    "domain": "hostname",
    "hostname": "hostname",
    "host": "hostname",
    "uuid": "uuid",
    "guid": "uuid",
    "id": "id",
    "key": "id",
    "at": "timestamp",
    "timestamp": "timestamp",
    "datetime": "timestamp",
    "time": "timestamp",
    "created": "timestamp",
    "updated": "timestamp",
    "modified": "timestamp",
    "date": "date",
    "on": "date",
    "status": "status",
    "tag": "tag",
    "tags": "tag",
    "label": "tag",
    "labels": "tag",
    "keyword": "tag",
    "keywords": "tag",
    "category": "tag",
    "password": "password",
    "passwd": "password",
    "pwd": "password",
    "token": "token",
    "slug": "slug",
    "sha": "sha",
    "hash": "sha",
    "checksum": "sha",
    "digest": "sha",
    "etag": "sha",
    "version": "version",
    "branch": "branch",
    "age": "age",
    "year": "year",
    "gender": "gender",
    "sex": "gender",
    "job": "job",
    "occupation": "job",
    "profession": "job",
    "username": "username",
    "login": "username",
    "handle": "username",
    "filename": "file_name",
    "path": "path",
    "port": "port",
    "percent": "percent",
    "percentage": "percent",
    "rating": "rating",
    "score": "rating",
    "width": "dimension",
    "height": "dimension",
    "size": "count",
    "name": "label",
    "firstname": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
}

# Prefixes of "<prefix>_name" that mean a person rather than a thing.
_PERSON_PREFIXES = frozenset(
    {"author", "owner", "customer", "contact", "person", "member", "user", "real", "sender", "recipient"}
)
# Last words of an object's name (made singular) that make it a person, whose ``name`` is then a
# person's name: ``assignees``, ``merged_by``, ``billable_owner``.
_PERSON_WORDS = (_PERSON_PREFIXES - {"real"}) | frozenset({
    "actor", "admin", "agent", "approver", "artist", "assignee", "assigner", "attendee", "by", "collaborator",
    "committer", "creator", "developer", "employee", "follower", "guest", "invitee", "inviter", "lead",
    "maintainer", "participant", "patient", "people", "player", "reporter", "requester", "reviewer",
    "student", "submitter", "subscriber", "uploader",
})
# The kinds of a member that make its object a person, whatever the object is called.
_PERSON_FIELD_KINDS = frozenset({"first_name", "last_name", "username", "birth_date"})

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


def name_tokens(name: str) -> tuple[str, ...]:
    """Split ``camelCase``, ``snake_case``, ``kebab-case`` and ``Mixed.Case`` into lower-case tokens."""
    tokens: list[str] = []
    for part in _SEPARATORS.split(name):
        if part:
            tokens.extend(piece.lower() for piece in _CAMEL_BOUNDARY.split(part) if piece)
    return tuple(tokens)


# Last words that are singular although they end in "s" (after the endings in _SINGULAR_ENDINGS).
_ALREADY_SINGULAR = frozenset({"alias", "atlas", "canvas", "gas", "news", "series", "species", "bus", "tennis", "iris"})
# "-us" (status, virus, campus, previous), "-sis"/"-xis" (analysis, axis) and "-ss" (address)
_SINGULAR_ENDINGS = ("ss", "us", "sis", "xis")
# Plurals of words that end in "u", which the "-us" rule above would keep as they are.
_U_PLURALS = frozenset({"menus", "gurus", "emus", "haikus", "tofus"})


def singular(name: str) -> str:
    """A rough singular of a collection's name, for naming its items and resources: ``photoUrls``
    -> ``photoUrl``, ``categories`` -> ``category``, ``boxes`` -> ``box``, ``statuses`` ->
    ``status``, ``emojis`` -> ``emoji``. A name whose last word already reads as singular is kept
    (``status``, ``findByStatus``, ``audio-analysis``, ``previous``), as is one of three letters or
    fewer. Surrounding whitespace is dropped. Pure and case-preserving."""
    name = name.strip()
    lower = name.lower()
    tokens = name_tokens(name)
    last = tokens[-1] if tokens else ""
    if last in _ALREADY_SINGULAR or (last.endswith(_SINGULAR_ENDINGS) and last not in _U_PLURALS):
        return name
    if lower.endswith("ies") and len(name) > 4:
        return name[:-3] + ("Y" if name[-3].isupper() else "y")
    if lower.endswith(("sses", "shes", "ches", "xes")) and len(name) > 4:
        return name[:-2]
    if lower.endswith("es") and last[:-2] in _ALREADY_SINGULAR | {"status", "virus", "campus", "bonus", "census"}:
        return name[:-2]
    if lower.endswith("s") and len(name) > 3:
        return name[:-1]
    return name


@lru_cache(maxsize=8192)
def classify_name(name: str) -> str | None:
    """The kind of realistic value a property called ``name`` holds, or None when it says nothing."""
    tokens = name_tokens(name)
    if not tokens:
        return None
    if tokens[-1] in ("ms", "millis", "msec") and len(tokens) >= 2:
        inner = classify_name("_".join(tokens[:-1]))
        return "timestamp_ms" if inner in ("timestamp", "date") else None
    joined = "_".join(tokens)
    if joined in EXACT_NAMES:
        return EXACT_NAMES[joined]
    if len(tokens) >= 2:
        pair = f"{tokens[-2]}_{tokens[-1]}"
        if pair in PAIR_SUFFIXES:
            return PAIR_SUFFIXES[pair]
        if tokens[-1] == "name":
            return "full_name" if tokens[-2] in _PERSON_PREFIXES else "label"
        if tokens[-1] == "id" and tokens[-2] in ("u", "uu", "g"):
            return "uuid"
        if tokens[0] in ("num", "number", "n") and tokens[-1] != "id":
            return "count"
        if tokens[0] in ("is", "has", "can", "should", "allow", "enable"):
            return None
    return LAST_TOKENS.get(tokens[-1])


def is_person_field(name: str) -> bool:
    """Whether an object with a member called ``name`` is a person (a first name, a login, a
    birth date, a gender), whatever the object is called. Not an avatar: gitlab's projects and
    groups have one too."""
    return classify_name(name) in _PERSON_FIELD_KINDS or "gender" in name_tokens(name)


@lru_cache(maxsize=8192)
def member_name(parent: str | None, key: str, person: bool = False) -> str:
    """The name that steers the value of member ``key`` of an object called ``parent`` (None: an
    object without a name, a response's root). A ``name`` is a tag's or a category's a word, an
    organisation's a company's name, a person's (by the object's own name, or ``person``: it
    has a member :func:`is_person_field` accepts) a person's name, and anything else's (a team,
    a repository, a droplet, a feed) a label: "Pleasant Harbor", not "Megan Burch". Any other
    key is itself."""
    if key != "name":
        return key
    kind = classify_name(parent) if parent else None
    if kind == "tag":
        return "tag"
    if kind == "company":
        return "company_name"
    tokens = name_tokens(singular(parent)) if parent else ()
    if person or (tokens and tokens[-1] in _PERSON_WORDS):
        return key
    return "label_name"
