"""The hook's read methods are typed with the ``TypedDict`` shapes of :mod:`airflow_provider_bria.results`, as a
user's mypy sees them: ``hook_results.py`` must check clean, ``wrong_types.py`` (the negative control) must not."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_bria import results

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHECKED = HERE / "hook_results.py"
CONTROL = HERE / "wrong_types.py"


def test_every_read_method_is_asserted() -> None:
    text = CHECKED.read_text()
    missing = [name for name in results.HOOK_READ_METHODS if f"hook.{name}(" not in text]
    assert not missing, f"hook_results.py does not assert the type of {missing}"


def test_mypy_sees_the_typed_results() -> None:
    pytest.importorskip("mypy")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-error-summary",
         "--hide-error-context", "--no-pretty", "--show-error-codes", "--config-file", str(REPO / "pyproject.toml"),
         str(CHECKED), str(CONTROL)],
        cwd=REPO, capture_output=True, text=True, timeout=280, check=False,
    )
    out = proc.stdout + proc.stderr
    errors = [line for line in out.splitlines() if ": error:" in line]
    in_checked = [line for line in errors if line.startswith(str(CHECKED.relative_to(REPO)))]
    in_control = [line for line in errors if line.startswith(str(CONTROL.relative_to(REPO)))]
    assert not in_checked, "\n".join(in_checked)
    expected = {n + 1 for n, line in enumerate(CONTROL.read_text().splitlines()) if "# expected error" in line}
    reported = {int(m.group(1)) for line in in_control if (m := re.search(r":(\d+):", line))}
    assert reported == expected, out
