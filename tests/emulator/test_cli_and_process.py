"""The ``bria-emulator`` command, its flags, start-up time, and the :class:`EmulatorProcess` wrapper."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_bria.emulator.process import EmulatorError, EmulatorProcess

LINE = re.compile(r"^Bria emulator listening on http://127\.0\.0\.1:(\d+)$")
SCRIPT = Path(sys.executable).parent / "bria-emulator"


def _spawn(cmd: list[str]) -> tuple[subprocess.Popen[str], str, float]:
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().rstrip("\n")
    return proc, line, time.monotonic() - started


def _terminate(proc: subprocess.Popen[str]) -> int:
    os.kill(proc.pid, signal.SIGTERM)
    code = proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return code


def test_console_script_is_installed() -> None:
    assert SCRIPT.is_file(), "run `make venv`: pyproject declares the bria-emulator console script"
    assert os.access(SCRIPT, os.X_OK)
    assert "airflow_provider_bria.emulator.__main__" in SCRIPT.read_text()


def test_console_script_port_0_starts_fast_and_stops_on_sigterm(capsys: pytest.CaptureFixture[str]) -> None:
    proc, line, elapsed = _spawn([str(SCRIPT), "--port", "0", "--api-token", "cli-token"])
    try:
        match = LINE.match(line)
        assert match, line
        port = int(match.group(1))
        assert port > 0
        resp = requests.get(
            f"http://127.0.0.1:{port}/v1/tailored-gen/projects", headers={"api_token": "cli-token"}, timeout=10
        )
        assert resp.status_code == 200
        assert resp.json() == []
        with capsys.disabled():
            print(f"\n[emulator] bria-emulator --port 0 printed its listening line after {elapsed:.2f} s")
    finally:
        assert _terminate(proc) == 0


def test_module_entry_point_and_fixed_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    proc, line, _ = _spawn([sys.executable, "-m", "airflow_provider_bria.emulator", "--port", str(free)])
    try:
        assert line == f"Bria emulator listening on http://127.0.0.1:{free}"
        # without --api-token any non-empty token is accepted
        resp = requests.get(f"http://127.0.0.1:{free}/v1/tailored-gen/models", headers={"api_token": "x"}, timeout=10)
        assert resp.status_code == 200
        # the port is taken now: a second emulator on it exits 1 with a message
        clash = subprocess.run(
            [sys.executable, "-m", "airflow_provider_bria.emulator", "--port", str(free)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert clash.returncode == 1
        assert "cannot bind" in clash.stderr
        assert clash.stdout == ""
    finally:
        _terminate(proc)


def test_token_from_environment() -> None:
    env = {**os.environ, "BRIA_EMULATOR_API_TOKEN": "env-token"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_bria.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        port = int(LINE.match(proc.stdout.readline().rstrip("\n")).group(1))  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/v1/tailored-gen/projects"
        assert requests.get(url, headers={"api_token": "env-token"}, timeout=10).status_code == 200
        assert requests.get(url, headers={"api_token": "other"}, timeout=10).status_code == 401
    finally:
        _terminate(proc)


def test_help_lists_every_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "airflow_provider_bria.emulator", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for flag in (
        "--host",
        "--port",
        "--api-token",
        "--training-seconds",
        "--job-seconds",
        "--fault-rate",
        "--seed",
        "--state-file",
        "--max-zip-mb",
        "--access-log",
    ):
        assert flag in out


@pytest.mark.parametrize(
    "args",
    [
        ["--fault-rate", "1.5"],
        ["--fault-rate", "-0.1"],
        ["--training-seconds", "-1"],
        ["--job-seconds", "x"],
        ["--port", "abc"],
    ],
)
def test_bad_flags_exit_2(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_bria.emulator", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "error" in result.stderr


def test_importing_the_provider_or_process_wrapper_does_not_import_fastapi() -> None:
    code = (
        "import sys; import airflow_provider_bria, airflow_provider_bria.emulator, "
        "airflow_provider_bria.emulator.process; "
        "bad = [m for m in ('fastapi', 'uvicorn', 'starlette', 'PIL') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_process_wrapper(start_emulator: Any) -> None:
    emu = start_emulator(training_seconds=5, job_seconds=0.5)
    assert isinstance(emu, EmulatorProcess)
    assert emu.running
    assert emu.health()
    assert emu.startup_seconds is not None
    assert emu.startup_seconds < 20
    assert emu.url == f"http://127.0.0.1:{emu.port}"
    assert repr(emu).startswith("EmulatorProcess(url=")
    assert emu.token not in repr(emu)
    assert emu.token not in " ".join(emu.command())
    assert emu.token.encode() not in Path(f"/proc/{emu.pid}/cmdline").read_bytes()  # not visible in `ps`
    settings = emu.state()["settings"]
    assert (settings["training_seconds"], settings["job_seconds"], settings["token_required"]) == (5.0, 0.5, True)
    assert "api_token" not in settings
    emu.set_timing(training_seconds=1, job_seconds=0)
    assert emu.state()["settings"]["training_seconds"] == 1.0
    requests.get(f"{emu.url}/v1/tailored-gen/projects", headers={"api_token": emu.token}, timeout=10)
    requests.get(f"{emu.url}/v2/status/x", headers={"api_token": emu.token}, timeout=10)
    assert [r["path"] for r in emu.requests("/v2/")] == ["/v2/status/x"]
    assert len(emu.requests()) == 2
    assert set(emu.requests()[0]) == {"t", "method", "path", "status", "fault", "handler_status"}
    emu.reset()
    assert emu.requests() == []
    assert emu.state()["settings"]["training_seconds"] == 5.0
    pid = emu.pid
    emu.stop()
    assert not emu.running
    emu.stop()  # idempotent
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_process_wrapper_context_manager_and_start_failure() -> None:
    with EmulatorProcess(api_token="ctx") as emu:
        assert requests.get(f"{emu.url}/_emulator/health", timeout=10).ok
        pid = emu.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(EmulatorError, match="exited with code 2"):
        EmulatorProcess(extra_args=["--no-such-flag"]).start()
    with pytest.raises(EmulatorError, match="not started"):
        EmulatorProcess().state()
