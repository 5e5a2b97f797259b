"""A hung test fails instead of stalling the run, even after code under test cleared SIGALRM.

Airflow's ``execution_timeout`` (run in-process by ``dag.test()``) arms and then clears the process's real-time
timer, which cancels pytest-timeout's signal method: a DAG test waiting forever (for example for a human-in-the-loop
answer) then stalled the matrix. The suite's ``timeout_method`` is therefore ``thread``; this runs a test that
clears the timer and sleeps, under the suite's own configuration, and expects pytest-timeout to end it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

HUNG = '''
import signal, time

def test_hangs_after_clearing_sigalrm():
    signal.setitimer(signal.ITIMER_REAL, 0)  # what Airflow's execution_timeout does when a task ends
    time.sleep(120)
'''


def test_a_hang_is_ended_by_the_configured_timeout(tmp_path: Path) -> None:
    test_file = tmp_path / "test_hung.py"
    test_file.write_text(HUNG)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path),
         "-p", "no:randomly", "-p", "no:cacheprovider", "-o", "addopts=", "--timeout=3", "-q", str(test_file)],
        cwd=tmp_path, capture_output=True, text=True, timeout=100, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Timeout" in out, out
    assert "test_hangs_after_clearing_sigalrm" in out, out
