"""Fixtures of the plugin tests: Airflow's real API app (plugins mounted from the entry point), JWTs, a run.

The app is ``airflow.api_fastapi.app.create_app()`` itself, so the Bria app is mounted exactly as the API server
mounts it, and authentication/authorisation go through Airflow's SimpleAuthManager.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operators" / "generation"))

#: The tests' auth manager refuses the user ``viewer`` every DAG named here (SimpleAuthManager has no per-DAG
#: rules; the check itself stays Airflow's).
DENIED_DAGS: set[str] = set()


@pytest.fixture(scope="session")
def api_app(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Airflow's API app with SimpleAuthManager (users ``admin`` and ``viewer``), the Bria plugin mounted.

    Skipped on Airflow 3.0, where the plugin registers nothing (no app to mount).
    """
    from airflow_provider_bria.plugins import supported

    if not supported():
        pytest.skip("the Bria UI plugin needs Airflow 3.1+ (it registers nothing on older lines)")
    home = tmp_path_factory.mktemp("auth")
    env = {
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(24),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(24),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from airflow.api_fastapi.app import create_app, get_auth_manager, purge_cached_app

    purge_cached_app()
    app = create_app()
    manager = get_auth_manager()
    original = manager.is_authorized_dag

    def is_authorized_dag(*, details: Any = None, **kwargs: Any) -> bool:
        if details is not None and details.id in DENIED_DAGS and kwargs["user"].get_name() == "viewer":
            return False
        return original(details=details, **kwargs)

    manager.is_authorized_dag = is_authorized_dag  # type: ignore[method-assign]
    yield app
    purge_cached_app()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def denied_dags() -> Iterator[set[str]]:
    """DAG ids refused to ``viewer`` during the test."""
    yield DENIED_DAGS
    DENIED_DAGS.clear()


@pytest.fixture(scope="session")
def token(api_app: Any) -> Callable[[str], str]:
    """``token(role)``: a JWT for the user ``admin`` or ``viewer`` signed by Airflow's auth manager."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    def make(name: str) -> str:
        return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=name, role=name))

    return make


@pytest.fixture
def client(api_app: Any) -> Any:
    """An anonymous TestClient of the API app."""
    from fastapi.testclient import TestClient

    return TestClient(api_app)


@pytest.fixture
def admin(client: Any, token: Callable[[str], str]) -> Any:
    """The TestClient with the admin's JWT as a bearer token."""
    client.headers["Authorization"] = f"Bearer {token('admin')}"
    return client
