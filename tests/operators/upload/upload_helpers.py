"""Helpers of the upload tests (a uniquely named module: ``conftest`` cannot be imported reliably)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import kit


def context(try_number: int = 1) -> dict[str, Any]:
    """A minimal task context."""
    return kit.make_context(try_number)


def image_bytes(index: int, size: int | tuple[int, int] = 1024, fmt: str = "PNG") -> bytes:
    """A distinct image: a solid colour per index plus an index-dependent stripe (fast to encode)."""
    from PIL import Image

    w, h = (size, size) if isinstance(size, int) else size
    img = Image.new("RGB", (w, h), ((index * 37) % 256, (index * 91) % 256, (index * 53 + 17) % 256))
    img.paste((255 - (index % 256), index // 256 % 256, 7), (0, 0, w, 1 + index % 7))
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, "PNG", compress_level=1)
    elif fmt == "JPEG":
        img.save(buf, "JPEG", quality=80)
    else:
        img.save(buf, fmt)
    return buf.getvalue()


def write_images(folder: Path, n: int, *, start: int = 0, size: int = 1024, prefix: str = "img") -> list[Path]:
    """Write ``n`` distinct PNGs into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        path = folder / f"{prefix}-{i:03d}.png"
        path.write_bytes(image_bytes(i, size))
        paths.append(path)
    return paths


def serve_directory(directory: Path) -> Any:
    """Serve ``directory`` over http on 127.0.0.1 (a thread); a context manager yielding the base URL (``/``)."""
    return kit.serve_directory(directory, 0.05, trailing_slash=True)
