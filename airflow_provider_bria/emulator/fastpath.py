"""The two polling endpoints, answered without FastAPI's routing and dependency machinery.

``GET /v1/tailored-gen/models/{id}`` (training sensors) and ``GET /v2/status/{request_id}`` (job triggers)
are what thousands of concurrent pollers hit. The gateway answers them here after auth and fault
injection, which cuts the per-request cost several times. The FastAPI routes call the same functions, so
the answers are identical either way.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

from airflow_provider_bria.emulator.runtime import Runtime
from airflow_provider_bria.emulator.views import job_view, model_view

_MODEL = re.compile(r"/v1/tailored-gen/models/(\d+)")
_STATUS = re.compile(r"/v2/status/([^/]+)")


def model_reply(rt: Runtime, model_id: int) -> tuple[int, Any]:
    """``GET /v1/tailored-gen/models/{model_id}``: status code and body.

    :param rt: the runtime.
    :param model_id: the model id.
    """
    with rt.store.read() as tx:
        doc = tx.get("models", model_id)
    if doc is None:
        return 404, {"message": "Model not found"}
    return 200, model_view(doc)


def status_reply(rt: Runtime, request_id: str, base: str) -> tuple[int, Any]:
    """``GET /v2/status/{request_id}``: status code and body.

    :param rt: the runtime.
    :param request_id: the job's request id.
    :param base: the request's base URL, for result URLs.
    """
    with rt.store.read() as tx:
        job = tx.get("jobs", request_id.strip())
    if job is None:
        return 404, {"status": "NOT_FOUND"}
    return 200, job_view(job, base)


def scope_base_url(scope: MutableMapping[str, Any]) -> str:
    """The base URL of a request (scheme and ``Host`` header, as Starlette computes it).

    :param scope: the ASGI scope.
    """
    host = None
    for name, value in scope.get("headers") or ():
        if name == b"host":
            host = value.decode("latin-1")
            break
    if host is None:
        server_host, port = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server_host}:{port}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}".rstrip("/")


def reply(rt: Runtime, scope: MutableMapping[str, Any]) -> tuple[int, Any] | None:
    """The answer to a polling request, or ``None`` when the request is not one (FastAPI handles it).

    :param rt: the runtime.
    :param scope: the ASGI scope.
    """
    if scope["method"] != "GET":
        return None
    path = scope["path"]
    match = _MODEL.fullmatch(path)
    if match:
        return model_reply(rt, int(match.group(1)))
    match = _STATUS.fullmatch(path)
    if match:
        return status_reply(rt, match.group(1), scope_base_url(scope))
    return None
