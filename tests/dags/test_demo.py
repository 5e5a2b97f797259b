"""``make demo`` / ``make airflow`` (``airflow_provider_bria.demo``): the full demo run and its building blocks."""

from __future__ import annotations

import contextlib
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


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Airflow home for this module's demo subprocesses (migrated by the first one only)."""
    return tmp_path_factory.mktemp("demo-home")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BRIA_"))}


def test_demo_runs_the_four_dags_and_lists_existing_pngs(tmp_path: Path, demo_home: Path) -> None:
    """The real thing, in a subprocess with its own Airflow home and data folder (like ``make demo``)."""
    env = _clean_env()
    home, data = demo_home, tmp_path / "data"
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


def _wait_gone(pids: list[int], timeout: float = 15.0) -> list[int]:
    """The processes of ``pids`` still running (zombies count as gone) after waiting up to ``timeout``."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_killing_the_demo_during_a_dag_run_stops_the_emulator(
    tmp_path: Path, demo_home: Path, sig: signal.Signals
) -> None:
    """``kill <pid>`` (or Ctrl-C) while a task runs: the demo exits with 128+signal and its emulator is gone."""
    import psutil

    argv = [sys.executable, "-m", "airflow_provider_bria.demo", "--home", str(demo_home), "--data", str(tmp_path)]
    proc = subprocess.Popen(
        [*argv, "--training-seconds", "60"],  # training outlasts the test: the signal lands inside dag.test()
        cwd=REPO,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "[2/4] dag.test() bria_training" in line:
                break
        else:
            pytest.fail("the demo ended before training:\n" + "".join(lines[-60:]))
        url = re.search(r"listening on (http://\S+)", "".join(lines)).group(1)
        children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert children, "the emulator runs as a child of the demo"
        time.sleep(3)  # inside the training task (deferred: the in-process triggerer polls the emulator)
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = "".join(lines) + rest
    assert proc.returncode == 128 + sig, out[-4000:]
    assert f"{signal.Signals(sig).name} received during a DAG run" in out
    assert _wait_gone(children) == []
    port = int(url.rsplit(":", 1)[1].strip("/"))
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # nothing listens there any more


class _FakeBackend:
    def __init__(self) -> None:
        self.stopped = 0

    def stop(self) -> None:
        self.stopped += 1


def test_stopper_outside_a_dag_run_raises_system_exit() -> None:
    stopper = demo.DemoStopper()
    with pytest.raises(SystemExit) as info:
        stopper(signal.SIGTERM, None)
    assert info.value.code == 143
    with pytest.raises(SystemExit) as info:
        stopper(signal.SIGHUP, None)
    assert info.value.code == 129


def test_stopper_holds_a_signal_while_the_emulator_starts() -> None:
    stopper = demo.DemoStopper()
    started: list[str] = []

    def start() -> None:
        with stopper.holding():
            stopper(signal.SIGTERM, None)  # arrives mid-start: held back
            started.append("backend")  # the start completes, so the caller can stop what it started

    with pytest.raises(SystemExit) as info:
        start()
    assert started == ["backend"]
    assert info.value.code == 143
    with stopper.holding():
        pass  # nothing pending: nothing raised


def test_stopper_takes_signals_back_from_the_task_runner_and_chains_to_it() -> None:
    """The in-process task runner installs its SIGTERM handler per task; the stopper goes back on top of it."""
    stopper = demo.DemoStopper()
    calls: list[int] = []
    previous = signal.getsignal(signal.SIGTERM)
    stopper.install()
    try:
        assert signal.getsignal(signal.SIGTERM) is stopper
        signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))  # what the task runner does
        stopper.reinstall()  # the listener, at task start
        assert signal.getsignal(signal.SIGTERM) is stopper
        with pytest.raises(SystemExit):
            stopper(signal.SIGTERM, None)
        assert calls == [signal.SIGTERM]  # the task's on_kill ran first
        signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(-signum))
        stopper.reinstall()
        stopper.task_done()  # that task ended: its on_kill must not run later
        with pytest.raises(SystemExit):
            stopper(signal.SIGTERM, None)
        assert calls == [signal.SIGTERM]
    finally:
        stopper.uninstall()
    assert signal.getsignal(signal.SIGTERM) == previous


def test_stopper_listener_is_an_airflow_listener() -> None:
    from airflow_provider_bria._compat import get_listener_manager

    stopper = demo.DemoStopper()
    listener = stopper.listener()
    manager = get_listener_manager()
    manager.add_listener(listener)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        stopper._previous[signal.SIGTERM] = previous  # as after install()
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        manager.hook.on_task_instance_running(previous_state=None, task_instance=SimpleNamespace())
        assert signal.getsignal(signal.SIGTERM) is stopper
        manager.hook.on_task_instance_success(previous_state=None, task_instance=SimpleNamespace())
        assert stopper._chained == {}
    finally:
        manager.pm.unregister(listener)
        signal.signal(signal.SIGTERM, previous)


def test_stop_processes_kills_what_a_cleanly_exited_leader_left_behind() -> None:
    """A component that exits on SIGTERM can leave workers in its process group: they are killed too."""
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            "w = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']); "
            "print(w.pid, flush=True); time.sleep(60)",
        ],
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    worker = int(leader.stdout.readline())
    try:
        demo.stop_processes({"leader": leader}, grace=5.0)
        assert leader.returncode == -signal.SIGTERM  # the leader itself stopped on SIGTERM
        assert _wait_gone([worker]) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)
