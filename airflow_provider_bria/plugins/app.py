"""The Bria FastAPI app served by Airflow's API server under :data:`URL_PREFIX`.

Routes (all ``GET``, all server-rendered):

* ``/gallery/{dag_id}/{run_id}`` — every generation task instance of a DAG run;
* ``/gallery/{dag_id}/{run_id}/{task_id}?map_index=-1`` — one task instance;
* ``/media/{dag_id}/{run_id}/{task_id}/{map_index}/{name}[?thumb=1]`` — one file of that task's output folder;
* ``/review-image/{dag_id}/{run_id}/{task_id}/{name}[?thumb=1]`` — an image a review task offered (XCom
  ``review_images``: ``{"folder": uri, "names": [...]}``);
* ``/overview`` — Bria projects → datasets → models.

Authentication and authorisation are Airflow's own FastAPI dependencies
(:func:`airflow.api_fastapi.core_api.security.requires_access_dag`): the user's JWT (the UI's session cookie or a
bearer token) must be valid, and the user must be allowed to read the DAG in the path (its task instances for
galleries and files). The file route only serves a name the task's own output folder lists (see
:func:`~airflow_provider_bria.plugins.outputs.open_media`).
"""

from __future__ import annotations

import io
import logging
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from airflow_provider_bria.hooks import DEFAULT_CONN_NAME
from airflow_provider_bria.plugins import URL_PREFIX, airflow_data, bria_status, outputs, pages

log = logging.getLogger(__name__)

#: Longest side of a thumbnail, pixels.
THUMB_PIXELS = 320
#: Largest image turned into a thumbnail (bytes); larger files are served whole.
MAX_THUMB_SOURCE_BYTES = 40 * 1024 * 1024
#: The Bria connection the overview reads (``[bria] ui_conn_id``).
DEFAULT_CONN_ID = DEFAULT_CONN_NAME
_HEADERS = {"Content-Security-Policy": pages.CSP, "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store", "Referrer-Policy": "same-origin"}


def _dag_read(entity: Any = None) -> Any:
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return Depends(requires_access_dag("GET", entity))


def _entity(name: str) -> Any:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    return DagAccessEntity[name]


def _user_dep() -> Any:
    from airflow.api_fastapi.core_api.security import get_user

    return Depends(get_user)


def can_read_dag(user: Any, dag_id: str) -> bool:
    """Whether ``user`` may read ``dag_id`` (Airflow's auth manager decides).

    :param user: the authenticated user.
    :param dag_id: the DAG id.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    return bool(get_auth_manager().is_authorized_dag(method="GET", details=DagDetails(id=dag_id), user=user))


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=_HEADERS)


def _gallery_of(task: airflow_data.TaskOutput) -> tuple[outputs.Gallery | None, str | None]:
    if task.output_path is None:
        return None, None
    try:
        return outputs.read_gallery(task.output_path, only=task.produced), None
    except Exception as err:  # noqa: BLE001 - a store error is shown on the page, not a 500
        log.warning("Could not read %s: %s", task.output_path, err)
        return None, f"{type(err).__name__}: {err}"


def _media_url(request: Request, dag_id: str, run_id: str, task: airflow_data.TaskOutput) -> Any:
    root = request.scope.get("root_path", "").rstrip("/")
    base = "/".join((root + "/media", pages.q(dag_id), pages.q(run_id), pages.q(task.task_id), str(task.map_index)))

    def url(name: str, *, thumb: bool) -> str:
        return f"{base}/{pages.q(name)}" + ("?thumb=1" if thumb else "")

    return url


def _airflow_root(request: Request) -> str:
    """The Airflow UI's path prefix (empty at the root): the mount path minus :data:`URL_PREFIX`."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return root[: -len(URL_PREFIX)] if root.endswith(URL_PREFIX) else ""


def _thumbnail(data: bytes) -> bytes | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.thumbnail((THUMB_PIXELS, THUMB_PIXELS))
            out = io.BytesIO()
            (img if img.mode in ("RGB", "RGBA", "L", "LA", "P") else img.convert("RGB")).save(out, format="PNG")
            return out.getvalue()
    except Exception:  # noqa: BLE001 - not decodable: the caller serves the file as it is
        return None


def _check_name(name: str) -> None:
    try:
        outputs.check_media_name(name)
    except outputs.MediaNotFound:
        raise HTTPException(404, "Not a gallery file") from None


def _serve(folder: str, name: str, thumb: bool) -> Response:
    """Stream a listed media file of ``folder`` (or a PNG thumbnail of an image)."""
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300",
               "Content-Security-Policy": "default-src 'none'; sandbox"}
    try:
        if thumb and outputs.media_type(name) != "video/mp4":
            small = _thumbnail(outputs.read_media(folder, name, max_bytes=MAX_THUMB_SOURCE_BYTES))
            if small is not None:
                return Response(small, media_type="image/png", headers=headers)
        mime, size, chunks = outputs.open_media(folder, name)
    except outputs.MediaNotFound:
        raise HTTPException(404, "Not a file of this task's folder") from None
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(chunks, media_type=mime, headers=headers)


def conn_id() -> str:
    """``[bria] ui_conn_id`` (default :data:`DEFAULT_CONN_ID`)."""
    from airflow.configuration import conf

    return conf.get("bria", "ui_conn_id", fallback=DEFAULT_CONN_ID) or DEFAULT_CONN_ID


def run_gallery_page(request: Request, dag_id: str, run_id: str) -> HTMLResponse:
    """Every generation task instance of a DAG run (404 when there is no such run)."""
    tasks = airflow_data.task_outputs(dag_id, run_id)
    if tasks is None:
        return _html(pages.layout("Bria gallery", f"<p class=error>No run {pages.esc(run_id)} of "
                                                   f"{pages.esc(dag_id)}.</p>"), 404)
    sections = []
    for task in tasks:
        if task.output_path is None and not task.failures:
            continue
        gallery, error = _gallery_of(task)
        sections.append(pages.task_section(task, gallery, error, _media_url(request, dag_id, run_id, task),
                                           heading=True))
    return _html(pages.gallery_page(
        f"Bria gallery · {dag_id} · {run_id}", sections,
        empty_note="No task of this run wrote generated files (not a generation run, or it has not run yet).",
    ))


def task_gallery_page(request: Request, dag_id: str, run_id: str, task_id: str, map_index: int) -> HTMLResponse:
    """One task instance's gallery (404 when there is no such task instance)."""
    tasks = airflow_data.task_outputs(dag_id, run_id, task_id=task_id, map_index=map_index)
    if not tasks:
        return _html(pages.layout("Bria gallery", f"<p class=error>No task instance {pages.esc(task_id)}"
                                                   f"[{map_index}] in run {pages.esc(run_id)}.</p>"), 404)
    task = tasks[0]
    gallery, error = _gallery_of(task)
    section = pages.task_section(task, gallery, error, _media_url(request, dag_id, run_id, task), heading=False)
    label = task_id + (f"[{map_index}]" if map_index >= 0 else "")
    return _html(pages.gallery_page(f"Bria gallery · {label} ({task.state})", [section]))


def overview_page(request: Request, refresh: bool, user: Any) -> HTMLResponse:
    """Bria projects, datasets and models, with the model asset events ``user`` may see (502: Bria unreachable)."""
    conn = conn_id()
    try:
        data, error = bria_status.overview(conn, refresh=refresh), None
    except bria_status.StatusError as err:
        data, error = None, str(err)
    try:
        events = airflow_data.model_events()
    except Exception as err:  # noqa: BLE001 - the Bria part is still worth showing
        log.warning("Could not read model asset events: %s", err)
        events = {}
    readable: dict[str, bool] = {}

    def can_read(dag_id: str) -> bool:
        if dag_id not in readable:
            readable[dag_id] = can_read_dag(user, dag_id)
        return readable[dag_id]

    airflow_root = _airflow_root(request)

    def run_url(dag_id: str, run_id: str) -> str:
        return f"{airflow_root}/dags/{pages.q(dag_id)}/runs/{pages.q(run_id)}"

    return _html(pages.overview_page(data, error, events, conn, run_url, can_read), 200 if data else 502)


def create_app() -> FastAPI:
    """Build the Bria FastAPI app (mounted by the API server at :data:`URL_PREFIX`)."""
    app = FastAPI(title="Bria", docs_url=None, redoc_url=None, openapi_url=None)
    ti_read = _dag_read(_entity("TASK_INSTANCE"))

    @app.get("/gallery/{dag_id}/{run_id}", response_class=HTMLResponse, dependencies=[ti_read])
    def run_gallery(request: Request, dag_id: str, run_id: str) -> HTMLResponse:
        return run_gallery_page(request, dag_id, run_id)

    @app.get("/gallery/{dag_id}/{run_id}/{task_id}", response_class=HTMLResponse, dependencies=[ti_read])
    def task_gallery(request: Request, dag_id: str, run_id: str, task_id: str,
                     map_index: int = Query(-1, ge=-1)) -> HTMLResponse:
        return task_gallery_page(request, dag_id, run_id, task_id, map_index)

    @app.get("/media/{dag_id}/{run_id}/{task_id}/{map_index}/{name}", dependencies=[ti_read])
    def media(dag_id: str, run_id: str, task_id: str, map_index: int, name: str, thumb: bool = False) -> Response:
        _check_name(name)
        folder = airflow_data.output_path(dag_id, run_id, task_id, map_index)
        if folder is None:
            raise HTTPException(404, "This task instance has no output folder")
        return _serve(folder, name, thumb)

    @app.get("/review-image/{dag_id}/{run_id}/{task_id}/{name}", dependencies=[ti_read])
    def review_image(dag_id: str, run_id: str, task_id: str, name: str, thumb: bool = False) -> Response:
        _check_name(name)
        offered = airflow_data.review_images(dag_id, run_id, task_id)
        if offered is None or name not in offered[1]:
            raise HTTPException(404, "This task offered no such image for review")
        return _serve(offered[0], name, thumb)

    @app.get("/overview", response_class=HTMLResponse, dependencies=[_dag_read()])
    def overview(request: Request, refresh: bool = False, user: Any = _user_dep()) -> HTMLResponse:
        return overview_page(request, refresh, user)

    return app
