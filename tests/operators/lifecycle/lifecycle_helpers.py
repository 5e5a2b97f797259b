"""Helpers of the lifecycle tests (a uniquely named module: ``conftest`` cannot be imported reliably)."""

from __future__ import annotations

from typing import Any

from kit import solid_png


def png_bytes(index: int, size: int = 64) -> bytes:
    """A small, distinct PNG (a solid colour per index)."""
    return solid_png(index, size)


def fill_dataset(hook: Any, dataset_id: int, pngs: list[bytes], n: int = 5) -> list[dict[str, Any]]:
    """Upload ``n`` images straight through the hook (upload operators belong to another engineer)."""
    return [hook.upload_image(dataset_id, file=pngs[i], image_name=f"img-{i}.png") for i in range(n)]
