"""The Bria side of the overview: projects, their datasets and models, read through a Bria connection.

Answers are cached for :data:`CACHE_SECONDS` per connection (the overview is opened often, Bria's list
endpoints are not free), and every failure becomes a :class:`StatusError` with a message a user can act on.
The api_token never appears in a message: the hook's errors already keep it out, and nothing here adds it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from airflow_provider_bria.exceptions import (
    BriaAuthError,
    BriaConnectionConfigError,
    BriaError,
    BriaServerError,
    BriaTransportError,
)
from airflow_provider_bria.results import DatasetResult, ModelResult, ProjectResult

#: Seconds an overview answer is reused (knob: ``[bria] ui_cache_seconds``).
CACHE_SECONDS = 30.0
#: Bound on the projects listed (each costs two more requests).
MAX_PROJECTS = 50
#: Request timeout (seconds) of the overview's Bria calls, so a slow Bria cannot hold a page for long.
REQUEST_TIMEOUT = 15.0

_cache: dict[str, tuple[float, Overview]] = {}
_lock = threading.Lock()


class StatusError(Exception):
    """Bria or the connection is unavailable; the message says which and what to do."""


@dataclass
class ProjectStatus:
    """One project with its datasets and models.

    :param project: the project as Bria returns it.
    :param datasets: its datasets.
    :param models: its models.
    """

    project: ProjectResult
    datasets: list[DatasetResult] = field(default_factory=list)
    models: list[ModelResult] = field(default_factory=list)


@dataclass
class Overview:
    """Every project (up to :data:`MAX_PROJECTS`) and when it was read.

    :param projects: the projects.
    :param read_at: epoch seconds of the read.
    :param truncated: more projects than :data:`MAX_PROJECTS`.
    """

    projects: list[ProjectStatus]
    read_at: float
    truncated: bool = False


def cache_seconds() -> float:
    """``[bria] ui_cache_seconds`` (default :data:`CACHE_SECONDS`)."""
    from airflow.configuration import conf

    try:
        return max(0.0, float(conf.get("bria", "ui_cache_seconds", fallback=str(CACHE_SECONDS))))
    except ValueError:
        return CACHE_SECONDS


def _fetch(conn_id: str) -> Overview:
    from airflow_provider_bria.hooks.bria import BriaHook

    hook = BriaHook(conn_id, timeout=REQUEST_TIMEOUT, retry_limit=1)
    projects = hook.list_projects()
    out = []
    for project in projects[:MAX_PROJECTS]:
        pid = project.get("id")
        if pid is None:
            continue
        datasets = hook.list_project_datasets(pid)
        models = hook.list_project_models(pid)
        out.append(ProjectStatus(project=project, datasets=datasets, models=models))
    return Overview(projects=out, read_at=time.time(), truncated=len(projects) > MAX_PROJECTS)


def explain(err: BaseException, conn_id: str) -> str:
    """A user-facing message for a failed read.

    :param err: the error.
    :param conn_id: the connection id.
    """
    name = type(err).__name__
    if name in ("AirflowNotFoundException", "ConnectionNotFound") or "isn't defined" in str(err):
        return (f"The Airflow connection {conn_id!r} is not defined: add a connection of type 'bria' with that id "
                "(Admin → Connections, or AIRFLOW_CONN_" + conn_id.upper() + ").")
    if isinstance(err, BriaConnectionConfigError):
        return f"The Airflow connection {conn_id!r} is not usable: {err}"
    if isinstance(err, BriaAuthError):
        return f"Bria refused the api_token of connection {conn_id!r} (HTTP {err.status_code}): check the token."
    if isinstance(err, BriaTransportError):
        return f"Bria is unreachable through connection {conn_id!r}: {err}"
    if isinstance(err, BriaServerError):
        return f"Bria answered with a server error (HTTP {err.status_code}); try again later."
    if isinstance(err, BriaError):
        return f"Bria could not be read through connection {conn_id!r}: {err}"
    return f"Bria could not be read through connection {conn_id!r}: {name}"


def overview(conn_id: str, *, refresh: bool = False) -> Overview:
    """The projects, datasets and models, from the cache when younger than :func:`cache_seconds`.

    :param conn_id: the Bria connection id.
    :param refresh: ignore the cache.
    :raises StatusError: when Bria or the connection is unavailable.
    """
    ttl = cache_seconds()
    with _lock:
        hit = _cache.get(conn_id)
        if hit and not refresh and time.monotonic() - hit[0] < ttl:
            return hit[1]
    try:
        result = _fetch(conn_id)
    except Exception as err:  # noqa: BLE001 - every failure becomes a message on the page
        raise StatusError(explain(err, conn_id)) from None
    with _lock:
        _cache[conn_id] = (time.monotonic(), result)
    return result


def clear_cache() -> None:
    """Forget every cached answer."""
    with _lock:
        _cache.clear()
