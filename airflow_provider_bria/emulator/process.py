"""Run the emulator in a child process and drive its admin API (standard library only).

Used by the test suite, the demo and users' own CI::

    with EmulatorProcess(api_token="secret", training_seconds=2) as emu:
        ...  # point a bria connection at emu.url with emu.token
        emu.set_model_status(model_id, "Failed")
        assert emu.state()["duplicates"]["projects"] == []

Importing this module imports neither FastAPI nor uvicorn.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 5.0
_LINE_PREFIX = "Bria emulator listening on "
TOKEN_ENV = "BRIA_EMULATOR_API_TOKEN"  # noqa: S105 (an environment variable name)
DEFAULT_CLIENT_TOKEN = "emulator-token"  # noqa: S105 (accepted by an emulator started without --api-token)


class EmulatorError(RuntimeError):
    """The emulator process could not be started or did not answer."""


class EmulatorProcess:
    """A ``python -m airflow_provider_bria.emulator`` child process.

    :param host: interface to bind.
    :param port: TCP port (0 = a free port, read back from the first output line).
    :param api_token: the only token the emulator accepts (``None``: any non-empty token).
    :param training_seconds: time from start_training to ``Completed``.
    :param job_seconds: time a v2 job stays ``IN_PROGRESS``.
    :param fault_rate: fraction of API requests that fail on purpose.
    :param seed: seed for faults and unseeded generations.
    :param state_file: SQLite state file (``None``: a temporary database).
    :param allow_private_fetch: pass ``--allow-private-fetch`` (image_url/zip_url may be on 127.0.0.1).
    :param extra_args: more command-line arguments.
    :param env: environment of the child (the current one when ``None``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_token: str | None = None,
        training_seconds: float = 30,
        job_seconds: float = 1,
        fault_rate: float = 0.0,
        seed: int | None = None,
        state_file: str | os.PathLike[str] | None = None,
        allow_private_fetch: bool = False,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.api_token = api_token
        self.training_seconds = training_seconds
        self.job_seconds = job_seconds
        self.fault_rate = fault_rate
        self.seed = seed
        self.state_file = os.fspath(state_file) if state_file is not None else None
        self.allow_private_fetch = allow_private_fetch
        self.extra_args = tuple(extra_args)
        self.env = dict(env) if env is not None else None
        self.url: str = ""
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: Any = None
        self._tail: collections.deque[str] = collections.deque(maxlen=50)
        self._reader: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"EmulatorProcess(url={self.url!r}, pid={self.pid!r})"

    # ---- lifecycle -----------------------------------------------------------------------------
    @property
    def token(self) -> str:
        """A token the emulator accepts."""
        return self.api_token or DEFAULT_CLIENT_TOKEN

    @property
    def pid(self) -> int | None:
        """The child's process id (``None`` before start)."""
        return self._proc.pid if self._proc else None

    def command(self) -> list[str]:
        """The command line that starts the emulator (the token is passed in the environment)."""
        cmd = [
            sys.executable,
            "-m",
            "airflow_provider_bria.emulator",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--training-seconds",
            str(self.training_seconds),
            "--job-seconds",
            str(self.job_seconds),
            "--fault-rate",
            str(self.fault_rate),
        ]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        if self.state_file is not None:
            cmd += ["--state-file", self.state_file]
        if self.allow_private_fetch:
            cmd.append("--allow-private-fetch")
        return cmd + list(self.extra_args)

    def start(self) -> EmulatorProcess:
        """Start the child and wait (at most 20 s) for its listening line."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by stop())
        started = time.monotonic()
        self._proc = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self._child_env(),
            bufsize=1,
        )
        first: list[str] = []
        reader = threading.Thread(target=self._read_stdout, args=(first,), name="bria-emulator-stdout", daemon=True)
        reader.start()
        self._reader = reader
        deadline = started + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not first and self._proc.poll() is None:
            time.sleep(0.01)
        if not first:
            self._fail_start(
                "did not print its listening line within 20 s"
                if self._proc.poll() is None
                else f"exited with code {self._proc.returncode}"
            )
        self.url = first[0][len(_LINE_PREFIX) :].strip().rstrip("/")
        self.port = int(urllib.parse.urlsplit(self.url).port or self.port)
        self.startup_seconds = time.monotonic() - started
        return self

    def _child_env(self) -> dict[str, str]:
        """The child's environment; the token travels here, not on the command line (``ps`` shows argv)."""
        env = dict(os.environ if self.env is None else self.env)
        env.pop(TOKEN_ENV, None)
        if self.api_token is not None:
            env[TOKEN_ENV] = self.api_token
        return env

    def _read_stdout(self, first: list[str]) -> None:
        proc = self._proc
        if proc is None or proc.stdout is None:
            return
        for line in proc.stdout:
            if not first and line.startswith(_LINE_PREFIX):
                first.append(line)
            else:
                self._tail.append(line.rstrip())

    def _fail_start(self, why: str) -> None:
        log = self.stderr_text()
        self.stop()
        raise EmulatorError(f"Bria emulator {why}: {' '.join(self.command()[2:])}\n{log[-4000:]}")

    def stderr_text(self) -> str:
        """What the child wrote to stderr so far."""
        if self._stderr is None:
            return ""
        try:
            self._stderr.flush()
            self._stderr.seek(0)
            return self._stderr.read()
        except (OSError, ValueError):
            return ""

    def stop(self) -> None:
        """Stop the child: SIGTERM by PID, SIGKILL after 5 s."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT_SECONDS)
            except ProcessLookupError:
                pass
        if self._reader is not None:
            self._reader.join(timeout=STOP_TIMEOUT_SECONDS)  # EOF follows the child's exit
            self._reader = None
        if proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    @property
    def running(self) -> bool:
        """Whether the child is alive."""
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- admin API -----------------------------------------------------------------------------
    def _admin(self, method: str, path: str, body: Any = None, *, timeout: float = 10.0) -> Any:
        if not self.url:
            raise EmulatorError("The emulator is not started")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 (the emulator's own http URL)
            f"{self.url}/_emulator/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"api_token": self.token, **({"Content-Type": "application/json"} if data is not None else {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise EmulatorError(f"{method} /_emulator/{path}: HTTP {exc.code} {exc.read()[:500]!r}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise EmulatorError(f"{method} /_emulator/{path}: {exc}") from None
        return json.loads(raw) if raw else None

    def state(self) -> dict[str, Any]:
        """``GET /_emulator/state``: counts, duplicates, trainings per model, settings."""
        return self._admin("GET", "state")

    def reset(self) -> None:
        """``POST /_emulator/reset``: empty state, start-up timing and faults restored."""
        self._admin("POST", "reset", {})

    def set_model_status(self, model_id: int | str, status: str) -> dict[str, Any]:
        """Force a model status (e.g. ``"Failed"``).

        :param model_id: the model.
        :param status: any model status.
        """
        return self._admin("POST", f"models/{model_id}/status", {"status": status})

    def requests(self, path_prefix: str | None = None) -> list[dict[str, Any]]:
        """The request log (``[{"t", "method", "path", "status", "fault"}]``).

        :param path_prefix: keep only paths starting with it.
        """
        query = f"?{urllib.parse.urlencode({'path_prefix': path_prefix})}" if path_prefix else ""
        return self._admin("GET", f"requests{query}")

    def set_faults(
        self, fault_rate: float, seed: int | None = None, *, rules: Sequence[Mapping[str, Any]] = ()
    ) -> dict[str, Any]:
        """Set the whole fault configuration at run time (reset restores the start-up rate, removes rules).

        ``set_faults(0.0)`` turns every fault off. A rule fails chosen requests deterministically::

            emu.set_faults(0.0, rules=[{"method": "POST", "path_regex": r"/start_training$",
                                        "phase": "after", "kind": "drop", "nth": 1}])

        :param fault_rate: 0-1, for requests no rule faulted.
        :param seed: re-seed the random fault sequence.
        :param rules: targeted faults: ``method`` (default any), ``path_regex`` (``re.search``; default every
            path), ``phase`` (``"before"``/``"after"``, default ``"after"``), ``kind`` (429, 500-599 or
            ``"drop"``, default ``"drop"``), ``nth`` (default 1), ``times`` (default 1).
        :return: the fault configuration (``GET /_emulator/faults``).
        """
        return self._admin("POST", "faults", {"fault_rate": fault_rate, "seed": seed, "rules": list(rules)})

    def faults(self) -> dict[str, Any]:
        """``GET /_emulator/faults``: rate, seed and the rules with their ``matched``/``fired`` counters."""
        return self._admin("GET", "faults")

    def set_timing(self, *, training_seconds: float | None = None, job_seconds: float | None = None) -> None:
        """Change training/job durations at run time (reset restores the start-up values).

        :param training_seconds: seconds from start_training to ``Completed``.
        :param job_seconds: seconds a v2 job stays ``IN_PROGRESS``.
        """
        self._admin("POST", "settings", {"training_seconds": training_seconds, "job_seconds": job_seconds})

    def health(self) -> bool:
        """Whether the emulator answers."""
        try:
            return self._admin("GET", "health", timeout=2.0) == {"status": "ok"}
        except EmulatorError:
            return False
