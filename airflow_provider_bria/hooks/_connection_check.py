"""The connection test of the Airflow UI ("Test" button) as a method of
:class:`~airflow_provider_bria.hooks.bria.BriaHook`.
"""

from __future__ import annotations

from airflow_provider_bria.contract import Paths
from airflow_provider_bria.exceptions import BriaAuthError, BriaError, BriaNotFoundError
from airflow_provider_bria.hooks._base import HookSurface, as_list
from airflow_provider_bria.hooks._redact import drop_queries


class BriaConnectionCheckMixin(HookSurface):
    """``test_connection``. Mixed into :class:`~airflow_provider_bria.hooks.bria.BriaHook`."""

    def test_connection(self) -> tuple[bool, str]:
        """Check host and token with one cheap authenticated call (list projects, no retries)."""
        try:
            body = self.request("GET", Paths.PROJECTS, retry=False)
        except BriaAuthError as exc:
            return False, f"Bria rejected the API token (HTTP {exc.status_code}): {exc.message}"
        except BriaNotFoundError as exc:
            return False, f"{exc.path} was not found on {self.base_url}: is the host the Bria API? ({exc.message})"
        except BriaError as exc:
            return False, str(exc)
        except Exception as exc:  # connection missing, etc.: report, never raise from a UI test
            return False, drop_queries(f"{type(exc).__name__}: {exc}")
        count = len(as_list(body))
        return True, f"Connected to {self.base_url}: the API token is valid ({count} project(s) visible)"
