"""Images and JSON the emulator produces: real PNGs, captions, visual schemas and structured prompts.

Everything here is deterministic: the same inputs give the same bytes (for one Pillow version). Generated
images are rendered from a *recipe* (a small dict stored with the file) when first downloaded, so a
generation request stays cheap. Pillow is imported lazily.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from typing import Any

from airflow_provider_bria.contract import PIL_IMAGE_FORMATS, aspect_ratio_size
from airflow_provider_bria.emulator.settings import MAX_IMAGE_PIXELS

GENERATED_LONG_SIDE = 512
THUMB_SIDE = 256
_FORMAT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_FORMAT_EXT = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}

_COLOR_NAMES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("black", (0, 0, 0)),
    ("white", (255, 255, 255)),
    ("gray", (128, 128, 128)),
    ("red", (220, 40, 40)),
    ("orange", (240, 140, 30)),
    ("yellow", (240, 220, 40)),
    ("green", (50, 170, 60)),
    ("teal", (30, 150, 150)),
    ("blue", (40, 80, 220)),
    ("purple", (140, 60, 200)),
    ("pink", (240, 120, 180)),
    ("brown", (130, 80, 40)),
)


class MediaError(Exception):
    """An input image the API would reject.

    :param status: the HTTP status to answer (415 unsupported format, 422 invalid data, 412 too small).
    :param text: the message.
    """

    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text
        super().__init__(text)


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _rgb(hex_color: str) -> tuple[int, int, int]:
    text = hex_color.lstrip("#")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def color_name(rgb: tuple[int, int, int]) -> str:
    """The nearest basic colour name.

    :param rgb: a colour.
    """
    return min(_COLOR_NAMES, key=lambda item: sum((a - b) ** 2 for a, b in zip(item[1], rgb, strict=True)))[0]


def content_type_of(fmt: str) -> str:
    """Media type for a Pillow format name.

    :param fmt: ``PNG``, ``JPEG`` or ``WEBP``.
    """
    return _FORMAT_TYPES.get(fmt, "application/octet-stream")


def extension_of(fmt: str) -> str:
    """File extension for a Pillow format name.

    :param fmt: ``PNG``, ``JPEG`` or ``WEBP``.
    """
    return _FORMAT_EXT.get(fmt, "bin")


# --------------------------------------------------------------------------------------------
# Reading uploaded images
# --------------------------------------------------------------------------------------------


def analyse(data: bytes) -> dict[str, Any]:
    """Decode an image and describe it: format, size, palette, brightness, whether it looks illustrated.

    :param data: the image bytes.
    :raises MediaError: 415 for a format other than jpg/jpeg/png/webp, 422 for data that is not an image or
        has more than :data:`~airflow_provider_bria.emulator.settings.MAX_IMAGE_PIXELS` pixels.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        fmt = img.format or ""
    except Image.DecompressionBombError:
        raise MediaError(422, f"Image has more than {MAX_IMAGE_PIXELS} pixels (decompression bomb guard)") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MediaError(422, f"Invalid image data: {exc.__class__.__name__}") from None
    if fmt not in PIL_IMAGE_FORMATS:
        raise MediaError(415, f"Unsupported image format {fmt or 'unknown'!r}; supported: jpg, jpeg, png, webp")
    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:  # checked from the header, before any pixel is decoded
        raise MediaError(
            422, f"Image is {width}x{height}, more than {MAX_IMAGE_PIXELS} pixels (decompression bomb guard)"
        )
    try:
        small = _small_rgb(img)
    except (OSError, ValueError, SyntaxError) as exc:
        raise MediaError(422, f"Invalid image data: {exc}") from None
    colors = small.getcolors(32 * 32) or []
    quant = small.quantize(colors=4, method=Image.Quantize.MEDIANCUT)
    pal = quant.getpalette() or []
    counts = sorted(quant.getcolors() or [], reverse=True)
    palette = [_hex(tuple(pal[i * 3 : i * 3 + 3])) for _, i in counts]  # type: ignore[arg-type]
    pixels = list(small.getdata())
    brightness = sum(sum(p) for p in pixels) / (len(pixels) * 3 * 255)
    return {
        "format": fmt,
        "width": width,
        "height": height,
        "palette": palette,
        "brightness": round(brightness, 3),
        "illustrated": len(colors) < 64,
    }


def _small_rgb(img: Any) -> Any:
    """A 32x32 RGB version of an image, transparent areas turned black (as Bria does), decoded cheaply."""
    from PIL import Image

    if img.format == "JPEG":
        img.draft("RGB", (64, 64))
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA")
    small = img.resize((32, 32), Image.Resampling.BOX, reducing_gap=2.0)
    if small.mode in ("RGBA", "LA"):
        background = Image.new("RGB", small.size, (0, 0, 0))
        background.paste(small.convert("RGBA"), mask=small.convert("RGBA").getchannel("A"))
        return background
    return small.convert("RGB")


def thumbnail(data: bytes) -> bytes:
    """A PNG thumbnail (long side 256 px) of an image.

    :param data: the image bytes.
    """
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.thumbnail((THUMB_SIDE, THUMB_SIDE))
    img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Generated images
# --------------------------------------------------------------------------------------------


def generation_recipe(key: str, aspect_ratio: str, palette: list[str] | None = None) -> dict[str, Any]:
    """The recipe of a generated image.

    :param key: what makes the image unique: model, prompt or structured prompt, seed.
    :param aspect_ratio: one of the v2 aspect ratios.
    :param palette: brand colours to draw with (the dataset's visual schema palette).
    """
    width, height = aspect_ratio_size(aspect_ratio, long_side=GENERATED_LONG_SIDE)
    return {"kind": "generated", "key": key, "width": width, "height": height, "palette": list(palette or [])}


def render_generated(recipe: dict[str, Any]) -> bytes:
    """Render a generated image: a seeded gradient with a few shapes, as PNG bytes.

    :param recipe: from :func:`generation_recipe`.
    """
    from PIL import Image, ImageDraw

    digest = hashlib.sha256(recipe["key"].encode("utf-8")).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    palette = [_rgb(c) for c in recipe.get("palette") or []]

    def pick() -> tuple[int, int, int]:
        if palette and rng.random() < 0.7:
            base = rng.choice(palette)
            return tuple(max(0, min(255, v + rng.randint(-30, 30))) for v in base)  # type: ignore[return-value]
        return rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)

    width, height = int(recipe["width"]), int(recipe["height"])
    corners = Image.new("RGB", (2, 2))
    corners.putdata([pick() for _ in range(4)])
    img = corners.resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(3, 6)):
        x0, y0 = rng.randint(0, width - 1), rng.randint(0, height - 1)
        x1, y1 = x0 + rng.randint(width // 10, width // 2), y0 + rng.randint(height // 10, height // 2)
        shape = rng.choice(("ellipse", "rectangle"))
        getattr(draw, shape)((x0, y0, x1, y1), fill=pick())
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def render(recipe: dict[str, Any], source: bytes | None = None) -> bytes:
    """Render any recipe.

    :param recipe: a stored recipe (``generated``, ``thumbnail``, ``video``, ``safetensors``, ``zip``...).
    :param source: the bytes a derived recipe needs (the source image of a thumbnail or video).
    """
    kind = recipe["kind"]
    if kind == "generated":
        return render_generated(recipe)
    if kind == "thumbnail" and source is not None:
        return thumbnail(source)
    if kind == "video" and source is not None:
        from airflow_provider_bria.emulator.media_video import image_to_mp4

        return image_to_mp4(source, seed=int(recipe.get("seed") or 0))
    if kind == "safetensors":
        return safetensors_stub(recipe.get("metadata") or {})
    if kind == "svg":
        return render_svg(recipe)
    raise ValueError(f"Cannot render recipe {kind!r}")


def render_svg(recipe: dict[str, Any]) -> bytes:
    """A small deterministic SVG (legacy text-to-vector results).

    :param recipe: ``{"kind": "svg", "key", "width", "height", "palette"}``.
    """
    digest = hashlib.sha256(recipe["key"].encode("utf-8")).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    width, height = int(recipe["width"]), int(recipe["height"])
    palette = recipe.get("palette") or []
    shapes = []
    for _ in range(5):
        rgb = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
        color = rng.choice(palette) if palette else _hex(rgb)
        cx, cy, r = rng.randint(0, width), rng.randint(0, height), rng.randint(width // 10, width // 3)
        shapes.append(f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="{color}"/>')
    body = "".join(shapes)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">{body}</svg>'
    ).encode()


def safetensors_stub(metadata: dict[str, str]) -> bytes:
    """A valid, tensor-less ``.safetensors`` file (8-byte header length + JSON header) for model downloads.

    :param metadata: string metadata to put in ``__metadata__``.
    """
    header = json.dumps({"__metadata__": {str(k): str(v) for k, v in metadata.items()}}).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header


# --------------------------------------------------------------------------------------------
# Captions, schemas, prefixes, structured prompts (JSON strings)
# --------------------------------------------------------------------------------------------


def _lighting(brightness: float) -> str:
    if brightness > 0.66:
        return "bright, high-key lighting"
    if brightness > 0.33:
        return "soft, balanced lighting"
    return "low-key, dramatic lighting"


def _ratio_name(width: int, height: int) -> str:
    if abs(width - height) <= max(width, height) * 0.05:
        return "square"
    return "landscape" if width > height else "portrait"


def visual_schema(analyses: list[dict[str, Any]]) -> str:
    """A visual schema (JSON string) derived from the colours and sizes of sample images.

    :param analyses: results of :func:`analyse`, one per image.
    """
    votes: dict[str, int] = {}
    for a in analyses:
        for rank, color in enumerate(a["palette"]):
            votes[color] = votes.get(color, 0) + (4 - rank)
    palette = [c for c, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))][:5]
    brightness = sum(a["brightness"] for a in analyses) / len(analyses)
    illustrated = sum(1 for a in analyses if a["illustrated"]) * 2 >= len(analyses)
    shapes = sorted({_ratio_name(a["width"], a["height"]) for a in analyses})
    names = sorted({color_name(_rgb(c)) for c in palette})
    schema = {
        "style_medium": "digital illustration" if illustrated else "photograph",
        "color_palette": palette,
        "dominant_colors": names,
        "lighting": _lighting(brightness),
        "composition": {"framing": shapes, "image_count": len(analyses)},
        "aesthetics": {"mood": "vivid" if brightness > 0.5 else "moody", "color_scheme": ", ".join(names)},
        "background_setting": "plain studio background" if illustrated else "natural environment",
    }
    return json.dumps(schema, sort_keys=True)


def fibo_caption(schema_text: str, analysis: dict[str, Any], image_name: str) -> str:
    """A FIBO caption (JSON string) for one image, derived from the dataset's visual schema.

    :param schema_text: the dataset's ``visual_schema``.
    :param analysis: the image's :func:`analyse` result.
    :param image_name: the image name.
    """
    try:
        schema = json.loads(schema_text)
    except ValueError:
        schema = {}
    if not isinstance(schema, dict):
        schema = {"schema": schema}
    stem = image_name.rsplit(".", 1)[0].replace("_", " ").replace("-", " ").strip() or "image"
    main = color_name(_rgb(analysis["palette"][0])) if analysis["palette"] else "neutral"
    caption: dict[str, Any] = {key: value for key, value in schema.items()}
    frame = _ratio_name(analysis["width"], analysis["height"])
    caption.update(
        {
            "short_description": f"{stem}, {main} tones, {frame} frame",
            "color_palette": analysis["palette"],
            "dominant_colors": sorted({color_name(_rgb(c)) for c in analysis["palette"][:2]}),
            "lighting": _lighting(analysis["brightness"]),
            "composition": {"framing": frame, "resolution": f"{analysis['width']}x{analysis['height']}"},
        }
    )
    return json.dumps(caption, sort_keys=True)


def legacy_caption(prefix: str | None, analysis: dict[str, Any], image_name: str) -> str:
    """A legacy caption: text continuing the dataset's ``caption_prefix``.

    :param prefix: the dataset's caption prefix.
    :param analysis: the image's :func:`analyse` result.
    :param image_name: the image name.
    """
    stem = image_name.rsplit(".", 1)[0].replace("_", " ").replace("-", " ").strip() or "image"
    main = color_name(_rgb(analysis["palette"][0])) if analysis["palette"] else "neutral"
    text = f"{stem} in {main} tones with {_lighting(analysis['brightness'])}"
    return f"{prefix.rstrip()} {text}" if prefix else text


def default_caption_prefix(project: dict[str, Any]) -> str:
    """The automatic ``caption_prefix`` of a new legacy dataset.

    :param project: the dataset's project.
    """
    medium = "An illustration" if project.get("ip_medium") == "illustration" else "A photo"
    name = (project.get("ip_name") or "").strip()
    if name:
        return f"{medium} of {name},"
    kind = str(project.get("ip_type") or "other").replace("_", " ")
    return f"{medium} in the style of a {kind},"


def caption_prefix(*, ip_type: str, ip_medium: str, ip_name: str | None, analyses: list[dict[str, Any]]) -> str:
    """A caption prefix (legacy ``generate_prefix``) derived from sample images.

    :param ip_type: the project's ip_type.
    :param ip_medium: the project's ip_medium.
    :param ip_name: the character's name (``defined_character``).
    :param analyses: the sample images' :func:`analyse` results.
    """
    medium = "An illustration" if ip_medium == "illustration" else "A photo"
    palette = [c for a in analyses for c in a["palette"][:1]]
    colors = sorted({color_name(_rgb(c)) for c in palette}) or ["neutral"]
    tones = " and ".join(colors[:2])
    if ip_type == "defined_character" and ip_name:
        return f"{medium} of {ip_name.strip()}, a character in {tones} tones,"
    if ip_type == "object_variants":
        return f"{medium} of an object variant in {tones} tones,"
    return f"{medium} of a scene in {tones} tones,"


def structured_prompt(prompt: str, schema_text: str | None) -> str:
    """A structured prompt (JSON string) for a text prompt, shaped by the model's visual schema.

    :param prompt: the text prompt.
    :param schema_text: the model's dataset ``visual_schema`` (``None`` for legacy models).
    """
    try:
        schema = json.loads(schema_text) if schema_text else {}
    except ValueError:
        schema = {}
    if not isinstance(schema, dict):
        schema = {}
    out: dict[str, Any] = {key: value for key, value in schema.items()}
    out.update({"short_description": prompt.strip(), "objects": [{"description": prompt.strip()}]})
    return json.dumps(out, sort_keys=True)


def refine(structured: str, instruction: str) -> str:
    """Apply a natural-language instruction to a structured prompt, caption or schema (JSON string).

    :param structured: the JSON string (an object).
    :param instruction: the edit.
    :raises ValueError: when ``structured`` is not a JSON object.
    """
    data = json.loads(structured)
    if not isinstance(data, dict):
        raise ValueError("structured_prompt must hold a JSON object")
    edits = list(data.get("edit_instructions") or [])
    edits.append(instruction.strip())
    data["edit_instructions"] = edits
    if isinstance(data.get("short_description"), str):
        data["short_description"] = f"{data['short_description']}; {instruction.strip()}"
    return json.dumps(data, sort_keys=True)


def repair_json_caption(text: str) -> str | None:
    """Best-effort repair of a FIBO caption; the normalised JSON string, or ``None`` when beyond repair.

    Repairs: surrounding whitespace, Markdown code fences, trailing commas before ``}``/``]``.

    :param text: the caption sent by the client.
    """
    import re

    candidate = text.strip()
    if candidate.startswith("```"):
        candidate = candidate.strip("`")
        if candidate.lower().startswith("json"):
            candidate = candidate[4:]
    for attempt in (candidate, re.sub(r",\s*([}\]])", r"\1", candidate)):
        try:
            value = json.loads(attempt)
        except ValueError:
            continue
        if isinstance(value, dict):
            return json.dumps(value, sort_keys=True)
        return None
    return None
