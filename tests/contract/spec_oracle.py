"""Bria's published OpenAPI as a test oracle (reads the committed machine-made extract only).

The extract ``tests/contract/spec/bria-openapi-extract.json`` is produced by ``make_extract.py`` from
``../shared/reference/``; this module never reads ``../shared`` and imports nothing from
``airflow_provider_bria``, so it cannot agree with our code by construction.

Path templates are the URL paths with the version prefix, exactly as in the extract, e.g.
``"/v1/tailored-gen/datasets/{dataset_id}"`` or ``"/v2/status/{request_id}"``. Methods are case-insensitive.

API (small on purpose)::

    load_extract() -> dict                                   # the whole OpenAPI document (cached)
    operations() -> list[tuple[str, str]]                    # every (METHOD, path template)
    match_path(method, url_path) -> str                      # "/v1/tailored-gen/models/7" -> template
    documented_statuses(method, template) -> list[str]       # e.g. ["201", "400", ..., "5XX"]
    is_documented_status(method, template, status) -> bool   # honours "5XX"-style ranges
    request_schema(method, template, media=...) -> dict|None # JSON Schema (converted from OpenAPI 3.0)
    response_schema(method, template, status, media=...) -> dict|None
    validate_request(method, template, body, media=...)      # raises SpecViolation
    validate_response(method, template, status, body, media=...)  # raises SpecViolation
    examples(method, template) -> list[tuple[str, str, object]]   # (kind "request"|status, media, value)

``validate_response`` raises when the status is not documented for the operation, or when the body does
not match the schema documented for that status. A documented status without a schema accepts any body.
Schemas are OpenAPI 3.0 objects converted to JSON Schema (``nullable`` becomes a ``null`` type;
``format`` is not checked: Bria's own examples use naive timestamps; ``oneOf`` is read as ``anyOf``, because
Bria's alternatives overlap - e.g. start_training's two 400 bodies have no required fields, so any object
matches both and a strict ``oneOf`` would reject Bria's own answers) and checked with ``jsonschema``'s
Draft 4 validator (OpenAPI 3.0's schema dialect is a Draft 4/5 subset).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema

EXTRACT_PATH = Path(__file__).resolve().parent / "spec" / "bria-openapi-extract.json"
JSON = "application/json"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class SpecViolation(AssertionError):
    """A request or response that Bria's published OpenAPI does not allow."""


@functools.lru_cache(maxsize=1)
def load_extract() -> dict[str, Any]:
    """Return the extract document (parsed once per process; do not mutate it)."""
    return json.loads(EXTRACT_PATH.read_text(encoding="utf-8"))


def operations() -> list[tuple[str, str]]:
    """Every documented ``(METHOD, path template)`` pair, sorted."""
    return sorted(
        (method.upper(), path)
        for path, item in load_extract()["paths"].items()
        for method in item
        if method in _METHODS
    )


@functools.lru_cache(maxsize=1)
def _path_patterns() -> list[tuple[re.Pattern[str], str]]:
    patterns = []
    for template in load_extract()["paths"]:
        regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        patterns.append((re.compile(f"^{regex}$"), template))
    # literal segments beat parameters: "/models/upload_model" before "/models/{model_id}"
    patterns.sort(key=lambda item: (item[1].count("{"), -len(item[1])))
    return patterns


def match_path(method: str, url_path: str) -> str:
    """The template documenting ``METHOD url_path``; raises :class:`SpecViolation` if none does."""
    for pattern, template in _path_patterns():
        if pattern.match(url_path) and method.lower() in load_extract()["paths"][template]:
            return template
    raise SpecViolation(f"{method.upper()} {url_path} is not a documented operation")


def _operation(method: str, template: str) -> dict[str, Any]:
    try:
        return load_extract()["paths"][template][method.lower()]
    except KeyError:
        raise SpecViolation(f"{method.upper()} {template} is not a documented operation") from None


def documented_statuses(method: str, template: str) -> list[str]:
    """Status codes (strings, possibly ranges such as ``"5XX"``) documented for the operation."""
    return sorted(_operation(method, template).get("responses", {}))


def _status_key(method: str, template: str, status: int | str) -> str | None:
    responses = _operation(method, template).get("responses", {})
    code = str(status)
    if code in responses:
        return code
    if f"{code[0]}XX" in responses:
        return f"{code[0]}XX"
    if "default" in responses:
        return "default"
    return None


def is_documented_status(method: str, template: str, status: int | str) -> bool:
    """Whether ``status`` is documented for the operation (``"5XX"`` covers 500-599)."""
    return _status_key(method, template, status) is not None


def to_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Convert an OpenAPI 3.0 schema object to an equivalent JSON Schema (Draft 4) object."""

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: convert(value) for key, value in node.items() if key not in ("example", "examples", "format")}
        if "properties" in node:
            out["properties"] = {name: convert(sub) for name, sub in node["properties"].items()}
        if "oneOf" in out:  # Bria's alternatives often overlap (no required fields): read as "any of"
            out["anyOf"] = out.pop("oneOf")
        if out.pop("nullable", False):
            if isinstance(out.get("type"), str):
                out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
            for key in ("anyOf", "oneOf"):
                if key in out:
                    out[key] = [*out[key], {"type": "null"}]
        return out

    return convert(copy.deepcopy(schema))


def request_schema(method: str, template: str, media: str = JSON) -> dict[str, Any] | None:
    """JSON Schema of the request body for ``media``, or ``None`` when the operation documents no body."""
    content = (_operation(method, template).get("requestBody") or {}).get("content") or {}
    if media not in content or "schema" not in content[media]:
        return None
    return to_json_schema(content[media]["schema"])


def response_schema(method: str, template: str, status: int | str, media: str = JSON) -> dict[str, Any] | None:
    """JSON Schema of the response body for ``status`` and ``media``; ``None`` when none is documented.

    :raises SpecViolation: if ``status`` itself is not documented for the operation.
    """
    key = _status_key(method, template, status)
    if key is None:
        raise SpecViolation(
            f"{method.upper()} {template}: status {status} is not documented "
            f"(documented: {', '.join(documented_statuses(method, template))})"
        )
    content = _operation(method, template)["responses"][key].get("content") or {}
    if media not in content or "schema" not in content[media]:
        return None
    return to_json_schema(content[media]["schema"])


def _check(schema: dict[str, Any] | None, body: Any, what: str) -> None:
    if schema is None:
        return
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}" for e in errors[:10]]
        raise SpecViolation(f"{what} does not match Bria's schema:\n  " + "\n  ".join(lines))


def validate_request(method: str, template: str, body: Any, media: str = JSON) -> None:
    """Raise :class:`SpecViolation` unless ``body`` matches the documented request schema."""
    content = (_operation(method, template).get("requestBody") or {}).get("content") or {}
    if body is not None and content and media not in content:
        raise SpecViolation(f"{method.upper()} {template}: media type {media} not documented ({sorted(content)})")
    _check(request_schema(method, template, media), body, f"request body of {method.upper()} {template}")


def validate_response(method: str, template: str, status: int | str, body: Any, media: str = JSON) -> None:
    """Raise :class:`SpecViolation` unless ``status`` is documented and ``body`` matches its schema."""
    schema = response_schema(method, template, status, media)
    _check(schema, body, f"{status} response of {method.upper()} {template}")


def examples(method: str, template: str) -> list[tuple[str, str, Any]]:
    """Documented examples as ``(kind, media, value)``: kind is ``"request"`` or the status code."""
    operation = _operation(method, template)
    found: list[tuple[str, str, Any]] = []

    def collect(kind: str, content: dict[str, Any]) -> None:
        for media, body in content.items():
            if "example" in body:
                found.append((kind, media, body["example"]))
            for example in (body.get("examples") or {}).values():
                if "value" in example:
                    found.append((kind, media, example["value"]))

    collect("request", (operation.get("requestBody") or {}).get("content") or {})
    for status, response in operation.get("responses", {}).items():
        collect(status, response.get("content") or {})
    return found
