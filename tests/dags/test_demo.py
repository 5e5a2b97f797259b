"""``make demo`` / ``make airflow`` (``airflow_provider_bria.demo``): the full demo run and its building blocks."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow_provider_bria import demo

REPO = Path(__file__).resolve().parents[2]


def test_demo_runs_the_four_dags_and_lists_existing_pngs(tmp_path: Path) -> None:
    """The real thing, in a subprocess with its own Airflow home and data folder (like ``make demo``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BRIA_"))}
    home, data = tmp_path / "home", tmp_path / "data"
    argv = [sys.executable, "-m", "airflow_provider_bria.demo", "--home", str(home), "--data", str(data)]
    # Its own session, so a timeout can end the demo *and* the emulator it started (by process group id).
    proc = subprocess.Popen(
        [*argv, "--training-seconds", "2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=280)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"make demo did not finish in 280 s:\n{stdout[-3000:]}")
    proc = subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    for dag_id in demo.DAG_ORDER:
        assert re.search(rf"^\s+{dag_id}\s+SUCCESS", out, flags=re.MULTILINE), dag_id
    counts = re.search(r"Objects in the emulator: (.*)", out).group(1)
    assert "projects=1" in counts
    assert "models=2" in counts
    assert "trainings_started=2" in counts
    listed = re.findall(r"^\s{4}(/\S+\.png)$", out, flags=re.MULTILINE)
    assert len(listed) == 6  # 3 default prompts x 2 images
    for path in listed:
        assert Path(path).is_file()
        assert Path(path).is_relative_to(data / "outputs")
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (home / "airflow.db").is_file()
    assert not re.search(r"demo-[0-9a-f]{16}", out + proc.stderr)  # the emulator's token is never printed


def test_demo_exit_code() -> None:
    ok = [demo.RunResult(d, "success", 1.0) for d in demo.DAG_ORDER]
    png = [Path("/x.png")]
    assert demo.demo_exit_code(ok, png) == 0
    assert demo.demo_exit_code(ok, []) == 1  # no image on disk
    assert demo.demo_exit_code(ok[:3], png) == 1  # stopped early
    failed = ok[:2] + [demo.RunResult(demo.DAG_ORDER[2], "failed", 1.0)] + ok[3:]
    assert demo.demo_exit_code(failed, png) == 1
    assert demo.demo_exit_code(list(reversed(ok)), png) == 1


def test_connection_json_and_env() -> None:
    assert json.loads(demo.conn_json("http://127.0.0.1:1", "tok")) == {
        "conn_type": "bria",
        "host": "http://127.0.0.1:1",
        "password": "tok",
    }
    env = demo.airflow_env(Path("/h"), Path("/d"))
    assert env["AIRFLOW_HOME"] == "/h"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/d"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "sqlite:////h/airflow.db"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"


def test_run_conf_keeps_everything_under_the_data_folder(tmp_path: Path) -> None:
    confs = demo.demo_run_conf(tmp_path, real_api=False)
    assert list(confs) == list(demo.DAG_ORDER)
    assert confs["bria_dataset_preparation"]["image_source"] == str(tmp_path / "images")
    assert confs["bria_scheduled_generation"]["output_folder"] == (tmp_path / "outputs").as_uri()
    assert confs["bria_retraining"]["new_images_source"] == str(tmp_path / "new-images")


def test_poll_interval_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    args = SimpleNamespace(poll_interval=None)
    monkeypatch.delenv("BRIA_API_TOKEN", raising=False)
    assert demo._poll_interval(args) == 1.0
    monkeypatch.setenv("BRIA_API_TOKEN", "x")
    assert demo._poll_interval(args) == 60.0  # never hammer the real API
    assert demo._poll_interval(SimpleNamespace(poll_interval=5)) == 5.0


def test_real_api_backend_starts_no_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIA_API_TOKEN", "secret-token")
    monkeypatch.delenv("BRIA_API_HOST", raising=False)
    backend = demo.start_backend(training_seconds=1, job_seconds=1)
    assert backend.real_api
    assert backend.url == "https://engine.prod.bria-api.com"
    assert backend.token == "secret-token"
    monkeypatch.setenv("BRIA_API_HOST", "https://example.test")
    assert demo.start_backend(training_seconds=1, job_seconds=1).url == "https://example.test"


def test_local_path() -> None:
    assert demo._local_path("file:///tmp/a%20b.png") == Path("/tmp/a b.png")
    assert demo._local_path("/tmp/x.png") == Path("/tmp/x.png")
    assert demo._local_path("s3://bucket/x.png") is None


def test_repo_root_finds_the_dags() -> None:
    assert demo.repo_root() == REPO


def test_admin_password_is_generated_once(tmp_path: Path) -> None:
    first = demo._admin_password(tmp_path)
    assert len(first) >= 12
    assert demo._admin_password(tmp_path) == first
    stored = json.loads((tmp_path / "simple_auth_manager_passwords.json.generated").read_text())
    assert stored == {"admin": first}
    assert (tmp_path / "simple_auth_manager_passwords.json.generated").stat().st_mode & 0o077 == 0


def test_free_port_prefers_the_requested_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        other = demo._free_port(busy)
        assert other != busy
    assert demo._free_port(other) == other


def test_stop_processes_terminates_then_kills(tmp_path: Path) -> None:
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
            "time.sleep(60)",
        ],
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stubborn.stdout.readline().strip() == "ready"  # its SIGTERM handler is installed
    started = time.monotonic()
    demo.stop_processes({"polite": polite, "stubborn": stubborn}, grace=1.0)
    assert polite.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 30
