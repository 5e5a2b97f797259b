"""``make airflow`` (``python -m airflow_provider_bria.demo --serve``) end to end, as a user runs it.

The command runs with its own ``AIRFLOW_HOME`` and data folder (``--home``/``--data`` in a temporary folder),
a free API port (``--port 0``), free log-server ports and none of the caller's ``AIRFLOW*``/``BRIA_*``
variables, so it never clashes with a developer's ``make airflow`` (``<repo>/.airflow/serve``, port 8080).

1. it prints the UI address and the login within 180 s;
2. the API server reports the scheduler, triggerer and dag-processor healthy;
3. the printed login gets a token from ``POST /auth/token`` (and a wrong password does not);
4. the four example DAGs are listed by the REST API, without import errors;
5. every listening socket of the process tree is on the loopback interface;
6. Ctrl-C (SIGINT to the process group) makes it exit 0 in bounded time, leaving no process of the tree
   alive (``os.killpg(pgid, 0)`` on every process group it created, and every PID seen while it ran) and the
   API server and emulator ports closed;
7. Ctrl-C while it is still starting stops it too, without printing the "ready" banner.

Whatever happens, every process of the tree is SIGKILLed at the end. The command's output and the
components' logs are saved under ``tests/artifacts/system/make-airflow/``.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from serve_smoke import BANNER_BRIA, BANNER_LOGIN, BANNER_UI, LOOPBACK, ServeRun, port_open

pytestmark = pytest.mark.timeout(600)

STARTUP_TIMEOUT = 180.0
HEALTH_TIMEOUT = 120.0
DAGS_TIMEOUT = 150.0
#: demo.py's STOP_GRACE_SECONDS (20 s per component, waited in parallel) + the emulator's 5 s + margin
STOP_TIMEOUT = 60.0
EXAMPLE_DAGS = ("bria_dataset_preparation", "bria_training", "bria_scheduled_generation", "bria_retraining")
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
STARTED_API_SERVER = re.compile(r".*\bStarted api-server \(pid \d+\)")


class Served:
    """The running ``demo --serve`` and what its banner printed."""

    def __init__(self, run: ServeRun, ui_url: str, user: str, password: str, bria_url: str) -> None:
        self.run = run
        self.ui_url = ui_url.rstrip("/")
        self.user = user
        self.password = password
        self.bria_url = bria_url
        self._token: str | None = None

    def token(self) -> str:
        """A JWT for the printed login."""
        if self._token is None:
            resp = requests.post(
                f"{self.ui_url}/auth/token", json={"username": self.user, "password": self.password}, timeout=30
            )
            assert resp.status_code in (200, 201), f"login with the printed password: {resp.status_code} {resp.text}"
            self._token = resp.json()["access_token"]
        return self._token

    def api_get(self, path: str, **params: Any) -> Any:
        """``GET`` below the API server's URL with the token.

        :param path: e.g. ``/api/v2/dags``.
        """
        resp = requests.get(
            f"{self.ui_url}{path}", params=params, headers={"Authorization": f"Bearer {self.token()}"}, timeout=30
        )
        assert resp.status_code == 200, f"GET {path}: {resp.status_code} {resp.text[:500]}"
        return resp.json()


@pytest.fixture(scope="module")
def serve_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The temporary ``--home`` and ``--data`` (shared by both runs: the second one skips the migration)."""
    root = tmp_path_factory.mktemp("make-airflow")
    return {"home": root / "home", "data": root / "data", "root": root}


@pytest.fixture(scope="module")
def save_artifacts(artifacts: Path, serve_dirs: dict[str, Path]) -> Iterator[Path]:
    """At module end, copy the command outputs and component logs to ``tests/artifacts/system/make-airflow``."""
    target = artifacts / "make-airflow"
    target.mkdir(parents=True, exist_ok=True)
    yield target
    for path in serve_dirs["root"].glob("*.out"):
        shutil.copy2(path, target / path.name)
    logs = serve_dirs["home"] / "component-logs"
    if logs.is_dir():
        shutil.copytree(logs, target / "component-logs", dirs_exist_ok=True)


@pytest.fixture(scope="module")
def served(serve_dirs: dict[str, Path], save_artifacts: Path) -> Iterator[Served]:
    """``demo --serve`` started and its banner (UI address, login, Bria API) parsed; SIGKILLed at the end."""
    run = ServeRun(serve_dirs["home"], serve_dirs["data"], serve_dirs["root"] / "serve.out",
                   startup_timeout=STARTUP_TIMEOUT - 10)
    try:
        run.start()
        ui = run.wait_for_line(BANNER_UI, STARTUP_TIMEOUT)
        login = run.wait_for_line(BANNER_LOGIN, 10)
        bria = run.wait_for_line(BANNER_BRIA, 10)
        yield Served(run, ui["url"], login["user"], login["password"], bria["url"])
    finally:
        run.kill_all()


def _alive_or_fail(served: Served) -> None:
    assert served.run.proc is not None
    code = served.run.proc.poll()
    assert code is None, f"demo --serve exited early ({code}):\n{served.run.output()}"


def test_banner_prints_loopback_ui_and_login(served: Served) -> None:
    ui = urlsplit(served.ui_url)
    assert ui.hostname == "127.0.0.1", served.ui_url
    assert ui.port, served.ui_url
    assert served.user == "admin"
    assert len(served.password) >= 8
    assert urlsplit(served.bria_url).hostname == "127.0.0.1", served.bria_url
    assert port_open("127.0.0.1", urlsplit(served.bria_url).port or 0), "the emulator does not accept connections"
    resp = requests.get(served.ui_url + "/", timeout=30)
    assert resp.status_code == 200, resp.text[:300]
    assert "<html" in resp.text.lower(), resp.text[:300]


def test_components_report_healthy(served: Served) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    body: Any = None
    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    while time.monotonic() < deadline:
        _alive_or_fail(served)
        try:
            body = requests.get(f"{served.ui_url}/api/v2/monitor/health", timeout=10).json()
        except (requests.RequestException, ValueError) as err:
            body = repr(err)
        if isinstance(body, dict) and all((body.get(p) or {}).get("status") == "healthy" for p in parts):
            break
        time.sleep(1.0)
    else:
        pytest.fail(f"not all of {parts} healthy in {HEALTH_TIMEOUT:g} s; last health: {body}")


def test_printed_login_works(served: Served) -> None:
    assert served.token().count(".") == 2  # a JWT
    authed = requests.get(
        f"{served.ui_url}/api/v2/dags", headers={"Authorization": f"Bearer {served.token()}"}, timeout=30
    )
    assert authed.status_code == 200, authed.text[:300]
    wrong = requests.post(
        f"{served.ui_url}/auth/token", json={"username": served.user, "password": served.password + "x"}, timeout=30
    )
    assert wrong.status_code == 401, f"a wrong password was accepted: {wrong.status_code} {wrong.text[:200]}"
    anonymous = requests.get(f"{served.ui_url}/api/v2/dags", timeout=30)
    assert anonymous.status_code in (401, 403), anonymous.status_code


def test_example_dags_listed(served: Served) -> None:
    deadline = time.monotonic() + DAGS_TIMEOUT
    known: set[str] = set()
    while time.monotonic() < deadline:
        _alive_or_fail(served)
        known = {d["dag_id"] for d in served.api_get("/api/v2/dags", limit=100)["dags"]}
        if set(EXAMPLE_DAGS) <= known:
            break
        time.sleep(2.0)
    errors = served.api_get("/api/v2/importErrors", limit=100)["import_errors"]
    assert not errors, f"DAG import errors: {errors}"
    assert set(EXAMPLE_DAGS) <= known, f"missing after {DAGS_TIMEOUT:g} s: {set(EXAMPLE_DAGS) - known}"


def test_listens_on_loopback_only(served: Served) -> None:
    _alive_or_fail(served)
    sockets = served.run.listening_sockets()
    ports = {port for _, _, port in sockets}
    assert urlsplit(served.ui_url).port in ports, f"API server socket not found among {sockets}"
    exposed = [s for s in sockets if s[1] not in LOOPBACK]
    assert not exposed, f"listening beyond 127.0.0.1: {exposed}"


def test_ctrl_c_stops_everything(served: Served) -> None:
    run = served.run
    _alive_or_fail(served)
    seen = " | ".join(run.commands.values())
    for name in COMPONENTS:  # the tracking really saw the components, so the leftover check can fail
        assert f"airflow {name}" in seen, f"{name} not seen among the descendants: {seen}"
    assert run.pgid is not None
    run.interrupt()
    code = run.wait_exit(STOP_TIMEOUT)
    assert code is not None, f"still running {STOP_TIMEOUT:g} s after Ctrl-C:\n{run.output()}"
    assert code == 0, f"exit code {code} after Ctrl-C:\n{run.output()}"
    deadline = time.monotonic() + 10
    while run.leftovers() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not run.leftovers(), f"processes left after Ctrl-C: {run.leftovers()}"
    assert not run.group_exists(run.pgid), "the command's process group still exists"
    for url in (served.ui_url, served.bria_url):
        parts = urlsplit(url)
        assert not port_open(parts.hostname or "", parts.port or 0), f"{url} still accepts connections"
    assert "Stopped." in run.output(10)


def test_ctrl_c_during_startup(served: Served, serve_dirs: dict[str, Path]) -> None:
    served.run.kill_all()  # the first run is over (or failed): never two on one home
    run = ServeRun(serve_dirs["home"], serve_dirs["data"], serve_dirs["root"] / "serve-interrupted.out",
                   startup_timeout=STARTUP_TIMEOUT - 10)
    try:
        run.start()
        run.wait_for_line(STARTED_API_SERVER, STARTUP_TIMEOUT)
        interrupted_at = len(run.lines)
        run.interrupt()
        started = time.monotonic()
        code = run.wait_exit(STOP_TIMEOUT)
        took = time.monotonic() - started
        assert code is not None, f"still running {STOP_TIMEOUT:g} s after Ctrl-C during start-up:\n{run.output()}"
        after = run.lines[interrupted_at:]
        assert not any(BANNER_UI.match(line) for line in after), (
            f"Ctrl-C during start-up was ignored until the API server answered (exit {code} after {took:.1f} s):\n"
            + "\n".join(after)
        )
        deadline = time.monotonic() + 10
        while run.leftovers() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not run.leftovers(), f"processes left after Ctrl-C during start-up: {run.leftovers()}"
    finally:
        run.kill_all()
