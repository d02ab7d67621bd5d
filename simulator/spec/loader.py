"""Spec files -> :class:`~simulator.spec.model.Spec`: the I/O shell of spec loading.

Reads JSON (orjson) or YAML (libyaml when available, YAML 1.2 booleans, timestamps kept as
strings), recognises Swagger 2.0, OpenAPI 3.0 / 3.1 and ToolBench tool files, reads the files a
spec references (relative to the file that references them; ``http(s)`` only when asked), and
hands the documents to the pure builders (:mod:`.openapi3`, :mod:`.swagger2`, :mod:`.toolbench`).

Whatever makes a whole document unusable raises :class:`~simulator.errors.SpecError` with the
file and the JSON pointer; an operation that alone cannot be served lands in ``Spec.skipped``.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import posixpath
import re
from pathlib import Path
from typing import Any

import orjson
import yaml

from simulator.errors import SpecError

from .confine import ReadRefused, allowed_roots, check_inside, read_regular_file
from .model import Spec
from .openapi3 import Built, OpenAPI3Builder
from .refs import (
    Document,
    Documents,
    DocumentUnavailable,
    OutsideRefRefused,
    RefError,
    RemoteRefRefused,
    is_remote,
    walk_refs,
)
from .swagger2 import Swagger2Builder
from .toolbench import build_toolbench_spec, is_toolbench_query, is_toolbench_tool
from .yaml_limits import ANCHOR, AliasBombError, check_alias_expansion

REMOTE_TIMEOUT_S = 10.0
# a `$ref` whose value does not start with "#": only then is walking the document for files worth it
_NON_LOCAL_REF = re.compile(rb"""\$ref["']?\s*:\s*["']?(?=[^#"'\s])""")

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _YamlLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loading with YAML 1.2 booleans (``yes``/``on`` stay strings) and no timestamps
    (``2024-01-01`` stays the string the author wrote, as JSON Schema expects)."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_spec(path: str | Path, *, allow_remote_refs: bool = False, roots: tuple[str, ...] = ()) -> Spec:
    """Load the spec at ``path`` (Swagger 2.0, OpenAPI 3.0/3.1 or a ToolBench tool file).

    ``$ref`` s into other files are read relative to the referencing file, but only inside the
    spec's own folder, ``roots`` and ``$TOOLGRAD_SPEC_ROOTS`` (:mod:`.confine`; anything else is
    a :class:`SpecError` naming the reference, raised before the file is opened); ``http(s)``
    references raise :class:`SpecError` unless ``allow_remote_refs`` (then they are fetched,
    10 s timeout). Every file read must be a regular file within the size limit, and YAML
    aliases are bounded (:mod:`.yaml_limits`). The result is a pure function of the bytes read:
    no caching, no dependence on hash seeds.
    """
    source = Path(path)
    file = str(source)
    raw = _read(source)
    data = parse_document(raw, file)
    if is_toolbench_tool(data):
        return build_toolbench_spec(data, source, hashlib.sha256(raw).hexdigest())
    fmt = detect_format(data, file)
    if not isinstance(data.get("paths"), dict):
        raise SpecError(
            "the document has no 'paths' object, so there is nothing to serve", file=file, pointer="/paths",
            fix="add the API's paths (OpenAPI 3.1 documents with only webhooks cannot be served)",
        )
    root_path = posixpath.normpath(Path(os.path.abspath(source)).as_posix())
    reader = _DocumentReader(root_path, allow_remote_refs, allowed_roots(posixpath.dirname(root_path), roots))
    documents = Documents(Document("", root_path, data, raw), reader)
    builder = Swagger2Builder(documents) if fmt == "swagger-2.0" else OpenAPI3Builder(documents)
    try:
        if _NON_LOCAL_REF.search(raw):
            _read_referenced_documents(documents)
        built = builder.build()
    except RemoteRefRefused as exc:
        raise _refused_ref_error(exc, documents, file) from None
    except RecursionError:
        raise SpecError("the document nests too deeply to load", file=file) from None
    _check_servable(built, file)
    digest = hashlib.sha256()
    for doc in documents.loaded():
        digest.update(doc.raw)
    return Spec(
        title=built.title or source.stem,
        source=source,
        sha256=digest.hexdigest(),
        source_format=fmt,
        version=built.version,
        base_path=built.base_path,
        operations=built.operations,
        skipped=built.skipped,
        security_schemes=built.security_schemes,
        description=built.description,
    )



def _refused_ref_error(exc: RemoteRefRefused, documents: Documents, file: str) -> SpecError:
    """The :class:`SpecError` for a reference the loader refused to follow, located in the
    document that holds it, with the fix for its kind (outside the allowed folders, or remote)."""
    where = exc.where
    doc = documents[where.doc] if where is not None and where.doc else None
    fix = ("move the referenced file into the spec's folder, or allow its folder with $TOOLGRAD_SPEC_ROOTS"
           if isinstance(exc, OutsideRefRefused) else
           "download the referenced file and refer to it by a relative path, or load with allow_remote_refs=True")
    return SpecError(
        exc.message,
        file=doc.base if doc is not None else file,
        pointer=where.pointer if where is not None else "",
        fix=fix,
    )

# -- reading and parsing ---------------------------------------------------------------------------


def _read(source: Path) -> bytes:
    try:
        return read_regular_file(source)
    except ReadRefused as exc:
        raise SpecError(str(exc), file=str(source), fix="load a spec file (JSON or YAML) of a sensible size") from None
    except OSError as exc:
        raise SpecError(f"cannot read the file: {exc.strerror or exc}", file=str(source),
                        fix="check the path and its permissions") from None


def read_spec_document(path: str | Path) -> dict[str, Any]:
    """The root document of a spec file, parsed (read with the same limits as :func:`load_spec`)."""
    source = Path(path)
    return parse_document(_read(source), str(source))


def parse_document(raw: bytes, file: str) -> dict[str, Any]:
    """JSON or YAML bytes -> a JSON-like mapping (string keys everywhere); SpecError otherwise."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    data: Any
    if file.endswith(".json") or raw.lstrip()[:1] in (b"{", b"["):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if file.endswith(".json"):
                raise SpecError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                                file=file, fix="fix the JSON syntax at that position") from None
            data = _parse_yaml(raw, file)
    else:
        data = _parse_yaml(raw, file)
    if data is None:
        raise SpecError("the file is empty", file=file, fix="load an OpenAPI 3.x, Swagger 2.0 or ToolBench tool file")
    if not isinstance(data, dict):
        raise SpecError(f"not an API description: the document is a {type(data).__name__}, not a mapping",
                        file=file, fix="load an OpenAPI 3.x, Swagger 2.0 or ToolBench tool file")
    return data


def _parse_yaml(raw: bytes, file: str) -> Any:
    try:
        return _json_keys(load_yaml_bounded(raw))
    except AliasBombError as exc:
        raise SpecError(f"the YAML is refused: {exc}", file=file,
                        fix="replace the anchors and aliases with $ref") from None
    except RecursionError:
        raise SpecError("the YAML nests too deeply", file=file, fix="flatten the document") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"not valid YAML or JSON: {problem}{where}", file=file,
                        fix="fix the syntax at that position") from None


def load_yaml_bounded(raw: bytes | str, loader_class: type[yaml.SafeLoader] | None = None) -> Any:
    """YAML (by default 1.2 booleans, no timestamps) with alias expansion measured before
    anything is built: :class:`AliasBombError` for a document whose aliases expand too far."""
    loader = (loader_class or _YamlLoader)(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if ANCHOR.search(raw.encode() if isinstance(raw, str) else raw):
            check_alias_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _json_keys(node: Any) -> Any:
    """YAML's non-string keys (``200:``) as strings, and values JSON cannot carry as text."""
    if isinstance(node, dict):
        return {_key(k): _json_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_json_keys(v) for v in node]
    if node is None or isinstance(node, str | bool | int | float):
        return node
    return str(node)  # explicit !!timestamp, !!binary, !!set ...


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def detect_format(data: dict[str, Any], file: str) -> str:
    """``"swagger-2.0"``, ``"openapi-3.0"`` or ``"openapi-3.1"``; SpecError for anything else."""
    if is_toolbench_query(data):
        raise SpecError(
            "this is a ToolBench query file (a query record with its relevant APIs), not a tool file",
            file=file, fix="load the tool files (<Category>__<tool>.json, with 'tool_name' and 'api_list') instead",
        )
    if "swagger" in data:
        version = str(data["swagger"])
        if version.startswith("2."):
            return "swagger-2.0"
        raise SpecError(f"unsupported Swagger version {version!r}", file=file, pointer="/swagger",
                        fix="convert the document to Swagger 2.0 or OpenAPI 3.x")
    if "openapi" in data:
        version = str(data["openapi"])
        if version.startswith("3.0"):
            return "openapi-3.0"
        if re.match(r"3\.[1-9]", version):  # 3.2 adds to 3.1 and is read by the 3.1 rules
            return "openapi-3.1"
        raise SpecError(f"unsupported OpenAPI version {version!r}", file=file, pointer="/openapi",
                        fix="use OpenAPI 3.0 or 3.1 (or Swagger 2.0)")
    raise SpecError(
        "not an API description: no 'openapi' or 'swagger' key, and not a ToolBench tool file",
        file=file, fix="load an OpenAPI 3.x, Swagger 2.0 or ToolBench tool file (with 'tool_name' and 'api_list')",
    )


class _DocumentReader:
    """Reads a referenced document (a file, or a URL when allowed) for :class:`Documents`."""

    def __init__(self, root_path: str, allow_remote: bool, roots: tuple[str, ...] = ()) -> None:
        self.root_dir = posixpath.dirname(root_path)
        self.allow_remote = allow_remote
        self.roots = roots or allowed_roots(self.root_dir)

    def __call__(self, target: str) -> Document:
        if is_remote(target):
            if not self.allow_remote:
                raise RemoteRefRefused(target, f"remote $ref to {target!r} refused")
            import httpx  # only remote $refs need it: every command that loads a spec would pay the import

            try:
                response = httpx.get(target, timeout=REMOTE_TIMEOUT_S, follow_redirects=True)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise DocumentUnavailable(f"cannot fetch {target}: {exc}") from None
            raw, key = response.content, target.split("#", 1)[0]
        else:
            try:
                check_inside(target, self.roots, f"$ref to {target!r}")
            except ReadRefused as exc:
                raise OutsideRefRefused(target, str(exc)) from None
            try:
                raw = read_regular_file(target)
            except OSError as exc:
                raise DocumentUnavailable(f"cannot read {target}: {exc.strerror or exc}") from None
            key = posixpath.relpath(target, self.root_dir)
        try:
            data = parse_document(raw, target)
        except SpecError as exc:
            raise DocumentUnavailable(exc.message) from None
        return Document(key, target, data, raw)


def _read_referenced_documents(documents: Documents) -> None:
    """Read every document reachable through ``$ref`` s now, so the digest covers them all and
    a refused remote reference is reported where it is written, before anything is built."""
    pending = [documents.root]
    seen = {documents.root.key}
    while pending:
        doc = pending.pop(0)
        for pointer, ref in walk_refs(doc.data):
            if ref.startswith("#"):
                continue
            try:
                target = documents.resolve(ref, doc.key)
            except RemoteRefRefused as exc:  # and OutsideRefRefused: fatal, reported where written
                raise exc.locate(doc.key, pointer) from None
            except RefError:
                continue  # reported by the operations that need it
            if target.doc not in seen:
                seen.add(target.doc)
                pending.append(documents[target.doc])


def _check_servable(built: Built, file: str) -> None:
    if built.operations:
        return
    if built.skipped:
        first = built.skipped[0]
        raise SpecError(
            f"no operation can be served; the first problem: {first.reason}", file=file, pointer=first.pointer,
            fix="fix the reference or definition named above (every operation hits a problem like it)",
        )
    raise SpecError("the document declares no operations under 'paths'", file=file, pointer="/paths",
                    fix="add at least one operation (get, post, ...) to a path")
