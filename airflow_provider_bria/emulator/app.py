"""The emulator's ASGI application: :func:`create_app` builds FastAPI routes behind the gateway.

Errors always leave in a documented Bria shape: handlers raise
:class:`~airflow_provider_bria.emulator.errors.ApiError` with the exact body; unknown routes, wrong methods
and unexpected exceptions get the default shape of their path (v2 envelope on ``/v2/``, ``{"message"}``
elsewhere), never FastAPI's ``{"detail": ...}``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_bria.emulator import errors
from airflow_provider_bria.emulator.errors import ApiError
from airflow_provider_bria.emulator.gateway import GatewayMiddleware
from airflow_provider_bria.emulator.guard import GuardMiddleware
from airflow_provider_bria.emulator.runtime import Runtime
from airflow_provider_bria.emulator.settings import Settings

log = logging.getLogger("bria.emulator")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(content=json.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _json(exc.status, exc.body, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    text = exc.detail if isinstance(exc.detail, str) else errors.reason(exc.status_code)
    err = errors.for_path(request.url.path, exc.status_code, text)
    return _json(err.status, err.body, dict(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    text = "; ".join(str(e.get("msg", e)) for e in exc.errors()) or "Invalid request"
    err = errors.for_path(request.url.path, 400, text)
    return _json(err.status, err.body)


async def _too_deep(request: Request, exc: Exception) -> Response:
    err = errors.for_path(request.url.path, 400, "JSON is nested too deeply")
    return _json(err.status, err.body)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("Unexpected error on %s %s", request.method, request.url.path)
    err = errors.for_path(request.url.path, 500, "Internal server error")
    return _json(err.status, err.body)


def create_app(settings: Settings | None = None) -> GuardMiddleware:
    """Build the emulator application.

    :param settings: the settings (defaults when ``None``).
    :returns: the ASGI app (guard, then gateway, then FastAPI); ``.runtime`` holds the state.
    """
    from airflow_provider_bria.emulator.routes import (
        admin,
        bulk,
        datasets,
        generation,
        helpers,
        images,
        models,
        projects,
    )

    runtime = Runtime(settings or Settings())
    api = FastAPI(title="Bria Tailored Generation API emulator", docs_url=None, redoc_url=None, openapi_url=None)
    api.state.runtime = runtime
    api.add_exception_handler(ApiError, _api_error)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(RecursionError, _too_deep)
    api.add_exception_handler(Exception, _unexpected)
    for module in (admin, projects, datasets, bulk, images, helpers, models, generation):
        api.include_router(module.router)
    return GuardMiddleware(GatewayMiddleware(api, runtime), runtime)
