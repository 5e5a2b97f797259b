"""The Bria plugin for the Airflow UI: a gallery of generated images and videos, and a Bria overview.

Registered through the package's ``airflow.plugins`` entry point, so installing the provider is enough. It adds

* a FastAPI app served by the API server under ``/bria`` (:mod:`airflow_provider_bria.plugins.app`);
* UI entries (``external_views``): "Bria" in the navigation (the overview), "Bria gallery" on DAG run and task
  instance pages.

Both need Airflow 3.1 or later (``external_views`` with ``destination`` and URL templates). On an older Airflow the
plugin registers nothing and logs one line. The FastAPI app is built only when the API server asks for it, so
the scheduler and task processes, which load plugins too, never import FastAPI for it.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

#: Oldest Airflow line with everything the plugin uses (external views on DAG run and task instance pages).
MIN_AIRFLOW = (3, 1)
URL_PREFIX = "/bria"


def airflow_version() -> tuple[int, int]:
    """The installed Airflow's ``(major, minor)``."""
    from airflow import __version__

    parts = __version__.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def supported(version: tuple[int, int] | None = None) -> bool:
    """Whether this Airflow can serve the plugin.

    :param version: ``(major, minor)``; the installed one when ``None``.
    """
    return (version or airflow_version()) >= MIN_AIRFLOW


def external_views() -> list[dict[str, Any]]:
    """The UI entries: navigation (overview), DAG run and task instance pages (galleries)."""
    return [
        {"name": "Bria", "href": f"{URL_PREFIX}/overview", "destination": "nav", "url_route": "bria",
         "category": "browse"},
        {"name": "Bria gallery", "href": f"{URL_PREFIX}/gallery/{{DAG_ID}}/{{RUN_ID}}", "destination": "dag_run",
         "url_route": "bria-run-gallery"},
        {"name": "Bria gallery",
         "href": f"{URL_PREFIX}/gallery/{{DAG_ID}}/{{RUN_ID}}/{{TASK_ID}}?map_index={{MAP_INDEX}}",
         "destination": "task_instance", "url_route": "bria-task-gallery"},
    ]


class BriaPlugin(AirflowPlugin):
    """Bria gallery and overview (Airflow 3.1+; nothing on older lines)."""

    name = "bria"

    def __init__(self) -> None:
        self._supported = supported()
        if not self._supported:
            from airflow import __version__

            log.info("Bria UI plugin skipped: Airflow %s lacks external views (needs %d.%d+)", __version__,
                     *MIN_AIRFLOW)
        self.external_views = external_views() if self._supported else []

    @cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The FastAPI app, built on first access (only the API server reads this)."""
        if not self._supported:
            return []
        from airflow_provider_bria.plugins.app import create_app

        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Bria gallery and overview"}]
