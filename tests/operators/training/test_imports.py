"""Importing the training modules (DAG parsing) must stay light: no emulator, FastAPI, Pillow or requests."""

from __future__ import annotations

import json
import subprocess
import sys


def test_training_modules_import_without_heavy_dependencies() -> None:
    code = (
        "import json, sys\n"
        "import airflow.sdk, airflow.triggers.base\n"  # Airflow's own imports (it loads httpx itself)
        "before = set(sys.modules)\n"
        "import airflow_provider_bria.operators.training, airflow_provider_bria.sensors.training\n"
        "import airflow_provider_bria.triggers.training\n"
        "new = set(sys.modules) - before\n"
        "print(json.dumps(sorted(m for m in new if m.split('.')[0] in ('fastapi', 'uvicorn', 'PIL', 'requests',"
        " 'httpx') or m.startswith('airflow_provider_bria.emulator'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
