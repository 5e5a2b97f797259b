"""docs/your-first-dag.md, as a reader follows it (issue 15 item 1).

1. ``make dev DAGS=<folder>`` is ``demo --serve --dags <folder>``: started here with an isolated home, free
   ports, none of the caller's ``AIRFLOW*`` variables;
2. the DAG file is the page's own Python block, written into the user's DAGs folder;
3. in a second shell: ``source <home>/env.sh && airflow dags test hello_bria`` succeeds, and the page's check
   command finds the project on the emulator;
4. every process is SIGKILLed at the end.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from serve_smoke import BANNER_UI, REPO, ServeRun, clean_env

pytestmark = pytest.mark.timeout(600)

PAGE = REPO / "docs" / "your-first-dag.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", PAGE.read_text(), re.S)


def test_the_page_commands_run(tmp_path: Path) -> None:
    assert "make dev DAGS=~/bria-dags" in _blocks("bash")[0]
    makefile = (REPO / "Makefile").read_text()
    assert '-m airflow_provider_bria.demo --serve --dags "$(DAGS)" --home .airflow/dev' in makefile
    dags = tmp_path / "bria-dags"
    dags.mkdir()
    (dags / "hello_bria.py").write_text(_blocks("python")[0])
    home = tmp_path / "home"
    run = ServeRun(home, tmp_path / "data", tmp_path / "serve.out", extra_args=("--dags", str(dags)))
    try:
        run.start()
        run.wait_for_line(BANNER_UI, 180)
        env_file = home / "env.sh"
        assert env_file.is_file()
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"  # it holds the emulator token
        commands = [c.replace(".airflow/dev/env.sh", str(env_file)) for c in _blocks("bash")[1:3]]
        test = subprocess.run(["bash", "-c", commands[0]], env=clean_env(), capture_output=True, text=True,
                              timeout=300, cwd=str(REPO), check=False)
        assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-3000:]
        check = subprocess.run(["bash", "-c", commands[1]], env=clean_env(), capture_output=True, text=True,
                               timeout=120, cwd=str(REPO), check=False)
        assert check.returncode == 0, check.stderr[-3000:]
        assert "'project_name': 'My first Bria project'" in check.stdout, check.stdout
    finally:
        run.kill_all()
