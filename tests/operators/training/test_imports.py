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


def test_operator_and_sensor_do_not_import_the_trigger_machinery() -> None:
    """DAG parsing imports the operator and the sensor; only deferring needs ``airflow.triggers.base``."""
    code = (
        "import json, sys\n"
        "import airflow.sdk\n"
        "from airflow_provider_bria._compat import serde_round_trip\n"
        "serde_round_trip(1)  # Airflow's serde (checks trigger kwargs) and an operator's __init__ ...\n"
        "airflow.sdk.BaseOperator(task_id='plain')  # ... load the trigger machinery on Airflow 3.0\n"
        "sdk_loads_it = 'airflow.triggers.base' in sys.modules\n"
        "from airflow_provider_bria.operators.training import BriaStartTrainingOperator, BriaStopTrainingOperator\n"
        "from airflow_provider_bria.sensors.training import BriaTrainingSensor\n"
        "BriaStartTrainingOperator(task_id='t', model_id=1, deferrable=True, poll_interval=5)\n"
        "BriaStopTrainingOperator(task_id='s', model_id=1)\n"
        "BriaTrainingSensor(task_id='w', model_id=1, deferrable=True)\n"
        "print(json.dumps({'sdk_loads_it': sdk_loads_it,\n"
        "                  'base': 'airflow.triggers.base' in sys.modules,\n"
        "                  'trigger': 'airflow_provider_bria.triggers.training' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    assert loaded["trigger"] is False
    if not loaded["sdk_loads_it"]:  # true for Airflow 3.3; if airflow.sdk ever loads it, it is no longer our cost
        assert loaded["base"] is False


def test_trigger_module_re_exports_the_event_contract() -> None:
    """Existing imports from ``triggers.training`` keep working and name the very same objects."""
    from airflow_provider_bria.triggers import _training_events, training

    for name in _training_events.__all__:
        assert getattr(training, name) is getattr(_training_events, name), name
        assert name in training.__all__
