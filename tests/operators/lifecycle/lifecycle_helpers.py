"""Helpers of the lifecycle tests (a uniquely named module: ``conftest`` cannot be imported reliably)."""

from __future__ import annotations

import io
import json
from typing import Any

TOKEN = "test-token-7f3c9a1e5b"  # same as tests/conftest.py TEST_TOKEN (that module cannot be imported)
FAST_HOOK = {"retry_limit": 2, "retry_delay": 0.0, "retry_max_delay": 0.0}


def conn_json(url: str, token: str = TOKEN, **extra: object) -> str:
    """The ``AIRFLOW_CONN_*`` JSON form of a bria connection."""
    return json.dumps({"conn_type": "bria", "host": url, "password": token, "extra": extra})


class FakeTI:
    """The parts of a task instance the operators use: XCom push/pull and the try number."""

    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XCom values must be JSON-safe
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        return self.xcoms.get(key)


class FakeStateStore:
    """Stands in for Airflow 3.3's ``task_state_store`` (survives retries of one task instance)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        json.dumps(value)
        self.values[key] = value


def png_bytes(index: int, size: int = 64) -> bytes:
    """A small, distinct PNG (a solid colour per index)."""
    from PIL import Image

    colour = ((index * 53) % 256, (index * 97 + 40) % 256, (index * 151 + 80) % 256)
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


def fill_dataset(hook: Any, dataset_id: int, pngs: list[bytes], n: int = 5) -> list[dict[str, Any]]:
    """Upload ``n`` images straight through the hook (upload operators belong to another engineer)."""
    return [hook.upload_image(dataset_id, file=pngs[i], image_name=f"img-{i}.png") for i in range(n)]


def counts(emulator: Any) -> dict[str, int]:
    """The emulator's object counts, without the request counter (which every GET bumps)."""
    return {k: v for k, v in emulator.state()["counts"].items() if k not in ("requests", "faults_injected")}
