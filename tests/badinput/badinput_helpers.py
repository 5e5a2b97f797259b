"""Helpers of the bad-input table (a uniquely named module: ``conftest`` cannot be imported reliably)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kit import make_context, object_counts

REPO = Path(__file__).resolve().parents[2]
#: No hook retries: a case that reaches the server must fail at once.
NO_RETRY = {"retry_limit": 0}


def png(size: int = 1024, index: int = 0, *, height: int | None = None) -> bytes:
    """A distinct PNG: a solid colour with one pixel set from ``index`` (cheap at 1024x1024).

    :param size: width (and height unless given).
    :param index: makes the content unique.
    :param height: height, when it differs from ``size``.
    """
    from PIL import Image

    img = Image.new("RGB", (size, height or size), ((index * 53) % 256, (index * 97 + 40) % 256, 90))
    img.putpixel((index % size, (index // size) % (height or size)), (255 - index % 256, 7, index // 256 % 256))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def context() -> dict[str, Any]:
    """A minimal task context."""
    return make_context(dag_id="badinput", task_id="bad", run_id="manual__2026-01-01T00:00:00+00:00")


@dataclass
class World:
    """Builds what a case needs on the emulator (before the state snapshot) and hands out hooks."""

    emulator: Any
    monkeypatch: pytest.MonkeyPatch
    tmp: Path
    example_dags: dict[str, Any] | None = None
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def hook(self) -> Any:
        """A hook on ``bria_default`` without retries."""
        from airflow_provider_bria.hooks.bria import BriaHook

        return BriaHook(**NO_RETRY)

    def set_connection(self, value: str) -> None:
        """Replace ``bria_default`` for the rest of the case.

        :param value: the ``AIRFLOW_CONN_BRIA_DEFAULT`` JSON.
        """
        self.monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", value)

    def project(self, *, version: str = "fibo") -> int:
        """A project locked to ``version`` (illustration, stylized_scene).

        :param version: ``fibo`` or a legacy version.
        """
        key = f"project-{version}"
        if key not in self._cache:
            self._cache[key] = self.hook.create_project(
                f"bad-input-{version}", "illustration", "stylized_scene", training_version=version
            )["id"]
        return int(self._cache[key])

    def dataset(self, *, upload_type: str = "basic", images: int = 0, completed: bool = False) -> int:
        """A FIBO draft (or completed) dataset with ``images`` distinct 1024x1024 images.

        :param upload_type: ``basic`` or ``advanced``.
        :param images: images to upload first.
        :param completed: mark it completed (needs at least 5 images).
        """
        hook = self.hook
        did = int(hook.create_dataset(self.project(), f"ds-{upload_type}-{images}-{completed}",
                                      upload_type=upload_type, training_version="fibo")["id"])
        for i in range(images):
            hook.upload_image(did, file=png(index=1000 + i), image_name=f"seed-{i}.png")
        if completed:  # a FIBO dataset needs a visual_schema to complete (Bria's spec)
            hook.update_dataset(did, visual_schema={"style_medium": "illustration"}, status="completed")
        return did

    def model(self, *, mode: str = "fully_automated") -> int:
        """A FIBO model in ``Created`` state on a completed dataset.

        :param mode: ``fully_automated`` or ``expert``.
        """
        did = self.dataset(images=5, completed=True)
        return int(self.hook.create_model(did, f"model-{mode}", training_mode=mode, training_version="fibo")["id"])

    def folder(self, name: str, files: dict[str, bytes]) -> str:
        """Write files into a new folder; return its path.

        :param name: folder name.
        :param files: file name -> content.
        """
        path = self.tmp / name
        path.mkdir()
        for fname, data in files.items():
            (path / fname).write_bytes(data)
        return str(path)


def object_state(state: dict[str, Any]) -> dict[str, Any]:
    """The parts of ``/_emulator/state`` describing remote objects (not the request counters).

    :param state: the state report.
    """
    return {
        "counts": object_counts(state),
        "duplicates": state["duplicates"],
        "trainings_per_model": state["trainings_per_model"],
        "models_by_status": state.get("models_by_status"),
        "bulk_uploads": state.get("bulk_uploads"),
        "v2_jobs": state.get("v2_jobs"),
    }
