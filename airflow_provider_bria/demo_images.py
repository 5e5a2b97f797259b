"""Demo images drawn at run time with Pillow, so the repository ships no large binary files.

The example DAGs and ``make demo`` call :func:`write_demo_images` when their image source folder is empty:
it writes ``count`` varied but deterministic 1024x1024 PNGs (a "brand style": soft gradients, a recurring
sun motif, geometric shapes) to a local folder or any object-storage URI Airflow's ``ObjectStoragePath``
understands (``file://``, ``memory://``, ``s3://``...). Image ``i`` of seed ``s`` is always the same bytes,
and files that already exist are left alone, so a retried task writes nothing twice.

Pillow (and, for object-storage URIs, Airflow's ``ObjectStoragePath``) is imported inside the functions:
importing this module costs nothing at DAG parse time.
"""

from __future__ import annotations

import colorsys
import io
import os
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

#: File extensions recognised as images when listing a source folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
DEFAULT_SIZE = 1024
DEFAULT_PREFIX = "demo"


def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def demo_image(index: int, *, seed: int = 0, size: int = DEFAULT_SIZE) -> Image.Image:
    """Draw demo image number ``index`` (deterministic for ``(index, seed, size)``).

    :param index: image number; each index gives a different picture.
    :param seed: varies the whole series (use another seed for "new images" that must not repeat old ones).
    :param size: width and height in pixels (Bria datasets need at least 1024).
    :return: an RGB :class:`PIL.Image.Image`.
    """
    from PIL import Image, ImageDraw, ImageOps

    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    rng = random.Random(f"bria-demo:{seed}:{index}")  # str seeds hash deterministically (sha512)
    base_hue = rng.random()
    top = _rgb(base_hue, 0.35 + 0.3 * rng.random(), 0.95)
    bottom = _rgb(base_hue + 0.08 + 0.1 * rng.random(), 0.55 + 0.35 * rng.random(), 0.35 + 0.3 * rng.random())
    gradient = Image.linear_gradient("L").rotate(rng.choice((0, 15, 30, -15, -30)), expand=False)
    img = ImageOps.colorize(gradient.resize((size, size)), black=top, white=bottom).convert("RGB")
    draw = ImageDraw.Draw(img)
    unit = size / 16

    # The recurring motif: a sun with rays, always present, placed and tinted per image.
    cx, cy = rng.uniform(0.2, 0.8) * size, rng.uniform(0.15, 0.45) * size
    radius = rng.uniform(1.2, 2.4) * unit
    sun = _rgb(base_hue + 0.5, 0.6, 1.0)
    for k in range(12):
        angle = k * 30 + rng.uniform(-4, 4)
        vec = _polar(angle, radius * 1.6)
        draw.line([(cx, cy), (cx + vec[0], cy + vec[1])], fill=sun, width=max(2, round(unit / 5)))
    draw.ellipse(
        [cx - radius, cy - radius, cx + radius, cy + radius],
        fill=sun,
        outline=(255, 255, 255),
        width=max(1, round(unit / 8)),
    )

    # Hills along the bottom: a scene-like composition.
    for layer in range(rng.randint(2, 4)):
        height = size * (0.55 + 0.1 * layer + 0.05 * rng.random())
        points = [(0.0, float(size))]
        steps = rng.randint(3, 6)
        for s in range(steps + 1):
            points.append((size * s / steps, height - rng.uniform(0, 3) * unit))
        points.append((float(size), float(size)))
        draw.polygon(points, fill=_rgb(base_hue + 0.25 + 0.05 * layer, 0.5, 0.55 - 0.1 * layer))

    # A few geometric shapes in the foreground.
    for _ in range(rng.randint(3, 7)):
        x, y = rng.uniform(0, size), rng.uniform(0.5 * size, size)
        w, h = rng.uniform(0.5, 2.5) * unit, rng.uniform(0.5, 2.5) * unit
        colour = _rgb(base_hue + rng.choice((0.33, 0.5, 0.66)), 0.7, 0.9)
        shape = rng.choice(("ellipse", "rectangle", "triangle"))
        if shape == "ellipse":
            draw.ellipse([x, y, x + w, y + h], fill=colour)
        elif shape == "rectangle":
            draw.rounded_rectangle([x, y, x + w, y + h], radius=min(w, h) / 4, fill=colour)
        else:
            draw.polygon([(x, y + h), (x + w / 2, y), (x + w, y + h)], fill=colour)
    return img


def _polar(angle_degrees: float, length: float) -> tuple[float, float]:
    import math

    rad = math.radians(angle_degrees)
    return math.cos(rad) * length, math.sin(rad) * length


def demo_image_png(index: int, *, seed: int = 0, size: int = DEFAULT_SIZE) -> bytes:
    """Return demo image ``index`` encoded as PNG bytes.

    :param index: image number.
    :param seed: series seed.
    :param size: width and height in pixels.
    """
    buf = io.BytesIO()
    demo_image(index, seed=seed, size=size).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _is_local(location: str | os.PathLike[str]) -> bool:
    text = os.fspath(location)
    return "://" not in text or text.startswith("file://")


def _local_path(location: str | os.PathLike[str]) -> str:
    text = os.fspath(location)
    if text.startswith("file://"):
        text = text[len("file://") :]
    return os.path.abspath(os.path.expanduser(text))


def list_images(location: str | os.PathLike[str]) -> list[str]:
    """List the image files directly inside a folder, sorted by name; an absent folder gives ``[]``.

    :param location: a local folder, a ``file://`` URI or any ``ObjectStoragePath`` URI.
    :return: local absolute paths for local folders, URIs otherwise.
    """
    if _is_local(location):
        folder = _local_path(location)
        if not os.path.isdir(folder):
            return []
        return sorted(
            os.path.join(folder, name)
            for name in os.listdir(folder)
            if name.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(folder, name))
        )
    from airflow_provider_bria._compat import object_storage_path

    root = object_storage_path(os.fspath(location))
    if not root.exists():
        return []
    return sorted(str(p) for p in root.iterdir() if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))


def write_demo_images(
    location: str | os.PathLike[str],
    count: int,
    *,
    seed: int = 0,
    start: int = 0,
    size: int = DEFAULT_SIZE,
    prefix: str = DEFAULT_PREFIX,
) -> list[str]:
    """Write ``count`` demo PNGs named ``{prefix}-{seed}-{index:03d}.png`` into ``location``.

    Files that already exist are kept as they are (a retry writes nothing twice).

    :param location: a local folder (created if missing), a ``file://`` URI or any ``ObjectStoragePath`` URI.
    :param count: how many images (``start`` .. ``start + count - 1``).
    :param seed: series seed; different seeds give different pictures.
    :param start: index of the first image.
    :param size: width and height in pixels.
    :param prefix: file name prefix.
    :return: the paths (local) or URIs (object storage) of the ``count`` images, in index order.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    names = [f"{prefix}-{seed}-{i:03d}.png" for i in range(start, start + count)]
    if _is_local(location):
        folder = _local_path(location)
        os.makedirs(folder, exist_ok=True)
        out: list[str] = []
        for i, name in zip(range(start, start + count), names, strict=True):
            path = os.path.join(folder, name)
            if not os.path.exists(path):
                tmp = f"{path}.tmp-{os.getpid()}"
                with open(tmp, "wb") as fh:
                    fh.write(demo_image_png(i, seed=seed, size=size))
                os.replace(tmp, path)  # atomic: a crash never leaves a half-written PNG under the final name
            out.append(path)
        return out
    from airflow_provider_bria._compat import object_storage_path

    root = object_storage_path(os.fspath(location))
    root.mkdir(parents=True, exist_ok=True)
    uris: list[str] = []
    for i, name in zip(range(start, start + count), names, strict=True):
        target = root / name
        if not target.exists():
            target.write_bytes(demo_image_png(i, seed=seed, size=size))
        uris.append(str(target))
    return uris


def ensure_demo_images(
    location: str | os.PathLike[str],
    count: int,
    *,
    seed: int = 0,
    generate: bool = True,
    size: int = DEFAULT_SIZE,
) -> list[str]:
    """Return the images in ``location``, first drawing ``count`` demo images there if it has none.

    A folder that holds only part of this series (``demo-{seed}-NNN.png``: a run killed while drawing) is
    completed too, so a retry recovers; a folder holding any other image is the user's and is never touched.

    :param location: folder or object-storage URI.
    :param count: how many demo images to draw when the folder is empty (or holds a partial series).
    :param seed: series seed for the demo images.
    :param generate: when ``False`` an empty folder stays empty (the caller decides what that means).
    :param size: width and height of drawn images.
    :return: the image paths/URIs found (or written), sorted by name.
    """
    found = list_images(location)
    if not generate or len(found) >= count:
        return found
    if found and not all(_is_own_demo_image(path, seed) for path in found):
        return found
    write_demo_images(location, count, seed=seed, size=size)  # skips the files a killed attempt already wrote
    return list_images(location)


def _is_own_demo_image(path: str, seed: int) -> bool:
    """Whether ``path`` (local path or URI) names an image of the demo series ``seed`` (``demo-{seed}-NNN.png``)."""
    import re

    name = path.rstrip("/").rsplit("/", 1)[-1]
    return re.fullmatch(rf"{re.escape(DEFAULT_PREFIX)}-{int(seed)}-\d{{3,}}\.png", name) is not None


def examples_data_root() -> str:
    """Folder where the example DAGs keep demo inputs and outputs when their Params leave it open.

    ``$BRIA_EXAMPLES_DATA`` if set, else ``$AIRFLOW_HOME/bria_examples`` (``~/airflow/bria_examples``).
    Called at run time only, never at DAG parse time.
    """
    configured = os.environ.get("BRIA_EXAMPLES_DATA", "").strip()
    if configured:
        return configured.rstrip("/")
    home = os.environ.get("AIRFLOW_HOME", "").strip() or os.path.join(os.path.expanduser("~"), "airflow")
    return os.path.join(os.path.abspath(home), "bria_examples")
