"""The real-API smoke check refuses to run without an explicit token, and works end to end (on the emulator)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from airflow_provider_bria import smoke


def test_refuses_without_the_explicit_token_variable(monkeypatch: Any) -> None:
    env = {k: v for k, v in os.environ.items() if k != smoke.TOKEN_VAR}
    env["BRIA_API_TOKEN"] = "a-token-it-must-not-pick-up"  # the SDK's variable is not enough
    env[smoke.HOST_VAR] = "http://127.0.0.1:9"  # nothing listens: a connection attempt would fail loudly
    proc = subprocess.run([sys.executable, "-m", "airflow_provider_bria.smoke", "--write"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == smoke.EXIT_REFUSED
    assert f"set {smoke.TOKEN_VAR}" in proc.stdout


def test_checks_pass_against_the_emulator_and_leave_nothing_behind(emulator: Any, monkeypatch: Any,
                                                                   capsys: Any) -> None:
    monkeypatch.setenv(smoke.TOKEN_VAR, emulator.token)
    monkeypatch.setenv(smoke.HOST_VAR, emulator.url)
    assert smoke.main(["--write"]) == 0
    out = capsys.readouterr().out
    assert "[ok] auth + list projects" in out
    assert "[ok] v2 status of an unknown id" in out
    assert "[ok] upload_image encoding=json" in out
    assert "[ok] upload_image encoding=multipart" in out
    assert emulator.token not in out
    counts = emulator.state()["counts"]
    assert counts.get("projects", 0) == 0
    assert counts.get("datasets", 0) == 0


def test_a_wrong_token_fails_the_check(emulator: Any, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setenv(smoke.TOKEN_VAR, "wrong-token")
    monkeypatch.setenv(smoke.HOST_VAR, emulator.url)
    assert smoke.main([]) == 1
    assert "[FAIL] auth + list projects: BriaAuthError" in capsys.readouterr().out
