"""Helpers shared by the route modules: body parsing, typed field access, ids and JSON responses.

Bodies are parsed by hand (no pydantic models) so that every validation error has the exact shape Bria
documents for that endpoint, and so that the hot read paths stay cheap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response

from airflow_provider_bria.emulator import errors
from airflow_provider_bria.emulator.errors import ApiError
from airflow_provider_bria.emulator.runtime import Runtime
from airflow_provider_bria.emulator.settings import MAX_JSON_DEPTH
from airflow_provider_bria.exceptions import BriaInputError

ErrorFactory = Callable[[int, str], ApiError]


def runtime(request: Request) -> Runtime:
    """The emulator runtime of the app serving ``request``.

    :param request: the request.
    """
    return request.app.state.runtime


def base_url(request: Request) -> str:
    """The request's own base URL (scheme, host, port), without trailing slash.

    :param request: the request.
    """
    return str(request.base_url).rstrip("/")


def respond(body: Any, status: int = 200) -> Response:
    """A JSON response (``None`` with 204 gives an empty body).

    :param body: JSON-serialisable body.
    :param status: HTTP status code.
    """
    if status == 204:
        return Response(status_code=204)
    return Response(content=json.dumps(body), status_code=status, media_type="application/json")


def v1_error(status: int, text: str) -> ApiError:
    """``{"message": ...}``, the default v1 error shape.

    :param status: HTTP status code.
    :param text: the message.
    """
    return errors.message(status, text)


def v2_error(status: int, text: str) -> ApiError:
    """The v2 error envelope.

    :param status: HTTP status code.
    :param text: the details.
    """
    return errors.v2_error(status, text)


def require_path_variant(request: Request, variant: str) -> None:
    """404 (as for an unknown route) when ``--path-variants`` switched this spelling of a path off.

    :param request: the request.
    :param variant: ``"documented"`` or ``"alternate"``.
    """
    chosen = runtime(request).settings.path_variants
    if chosen not in ("both", variant):
        raise errors.for_path(request.url.path, 404, "Not Found")


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), computed without recursion.

    :param value: the parsed value.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in node if isinstance(child, (dict, list)))
    return deepest


async def json_body(request: Request, *, err: ErrorFactory = v1_error, allow_empty: bool = False) -> dict[str, Any]:
    """The request's JSON object body.

    :param request: the request.
    :param err: error factory for the endpoint's shape.
    :param allow_empty: whether an empty body means ``{}``.
    :raises ApiError: 400 for a missing, malformed or non-object body; 415 for a body whose ``Content-Type``
        is missing or not JSON (the spec documents ``application/json`` bodies only).
    """
    raw = await request.body()
    if not raw.strip():
        if allow_empty:
            return {}
        raise err(400, "Request body must be a JSON object")
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        shown = media_type or "none"
        raise err(415, f"Unsupported Media Type: send the body as application/json (Content-Type was {shown})")
    try:
        value = json.loads(raw)
    except ValueError:
        raise err(400, "Request body is not valid JSON") from None
    except RecursionError:
        raise err(400, f"Request body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise err(400, f"Request body is nested deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(value, dict):
        raise err(400, "Request body must be a JSON object")
    return value


def _explicit_null(body: dict[str, Any], name: str, nullable: bool, err: ErrorFactory) -> None:
    """400 for ``"name": null``: no request field of Bria's spec is nullable (absent is the way to omit one)."""
    if not nullable and name in body and body[name] is None:
        raise err(400, f"{name} must not be null (leave it out instead)")


def get_str(
    body: dict[str, Any],
    name: str,
    *,
    required: bool = False,
    err: ErrorFactory = v1_error,
    nullable: bool = False,
) -> str | None:
    """A string field (``None`` when absent).

    :param body: the parsed body.
    :param name: the field.
    :param required: whether a missing or blank value is an error.
    :param err: error factory.
    :param nullable: accept an explicit ``null`` as absent (only for fields outside the newest spec).
    """
    _explicit_null(body, name, nullable or required, err)
    value = body.get(name)
    if value is None:
        if required:
            raise err(400, f"{name} is required")
        return None
    if not isinstance(value, str):
        raise err(400, f"{name} must be a string")
    if required and not value.strip():
        raise err(400, f"{name} must not be empty")
    return value


def get_bool(body: dict[str, Any], name: str, default: bool, *, err: ErrorFactory = v1_error) -> bool:
    """A boolean field (``0``/``1`` accepted, as Bria's own clients send them).

    :param body: the parsed body.
    :param name: the field.
    :param default: value when absent.
    :param err: error factory.
    """
    _explicit_null(body, name, False, err)
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise err(400, f"{name} must be a boolean")


def get_int(body: dict[str, Any], name: str, *, required: bool = False, err: ErrorFactory = v1_error) -> int | None:
    """An integer field (integral strings accepted, as ids often arrive as strings).

    :param body: the parsed body.
    :param name: the field.
    :param required: whether absence is an error.
    :param err: error factory.
    """
    _explicit_null(body, name, required, err)
    value = body.get(name)
    if value is None:
        if required:
            raise err(400, f"{name} is required")
        return None
    if isinstance(value, bool):
        raise err(400, f"{name} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise err(400, f"{name} must be an integer")


def get_str_list(body: dict[str, Any], name: str, *, err: ErrorFactory = v1_error) -> list[str] | None:
    """A list-of-strings field (``None`` when absent).

    :param body: the parsed body.
    :param name: the field.
    :param err: error factory.
    """
    _explicit_null(body, name, False, err)
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise err(400, f"{name} must be an array of non-empty strings")
    return value


def parse_id(value: str, what: str, *, err: ErrorFactory = v1_error) -> int:
    """A path id; anything but an integer is an unknown object (404).

    :param value: the path segment.
    :param what: ``"Project"``, ``"Dataset"``... for the message.
    :param err: error factory.
    """
    text = value.strip()
    if not text.isdigit():
        raise err(404, f"{what} not found")
    return int(text)


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter (``true``/``false``/``1``/``0``).

    :param request: the request.
    :param name: the parameter.
    :param default: value when absent.
    """
    value = request.query_params.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise v1_error(400, f"{name} must be a boolean (true or false)")


def input_error(exc: BriaInputError, status: int = 400, *, err: ErrorFactory = v1_error) -> ApiError:
    """Turn a shared-contract validation error into an API error.

    :param exc: the error raised by :mod:`airflow_provider_bria.contract`.
    :param status: HTTP status code.
    :param err: error factory.
    """
    return err(status, str(exc))
