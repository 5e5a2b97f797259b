"""The PNG data check that replaces a full decode agrees with Pillow's decoder (the oracle) on good and bad files."""

from __future__ import annotations

import io
import struct
import zlib

import pytest

from airflow_provider_bria.operators import _png_check
from airflow_provider_bria.operators._outputs import OutputValidationError, check_image
from airflow_provider_bria.operators._png_check import PngDataError, check_png_data


@pytest.fixture(params=["zlib-ng", "zlib"])
def inflate_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the check with zlib-ng (the dependency) and with the standard library's zlib (its fallback)."""
    if request.param == "zlib":
        monkeypatch.setattr(_png_check, "INFLATE", zlib)
    return str(request.param)


def test_the_check_inflates_with_zlib_ng() -> None:
    from zlib_ng import zlib_ng

    assert _png_check.INFLATE is zlib_ng


def _pillow_png(mode: str, size: tuple[int, int] = (37, 23), **save: object) -> bytes:
    from PIL import Image

    img = Image.linear_gradient("L").resize(size).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG", **save)
    return buf.getvalue()


def _pillow_decodes(data: bytes) -> bool:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except (OSError, SyntaxError, ValueError):
        return False
    return True


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def _rebuilt(data: bytes, raw: bytes, *, compress: bool = True) -> bytes:
    """``data`` with its image data replaced by ``raw`` (valid chunk CRCs: only the data itself is wrong)."""
    ihdr_end = 8 + 12 + 13
    idat = zlib.compress(raw) if compress else raw
    return data[:ihdr_end] + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _raw(data: bytes) -> bytes:
    pos, out = 8, b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if kind == b"IDAT":
            out += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(out)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "I;16"])
def test_valid_pngs_pass_like_pillow(mode: str, inflate_backend: str) -> None:
    data = _pillow_png(mode)
    assert _pillow_decodes(data)
    assert check_png_data(data) is True
    check_image(data, None)


def test_split_idat_chunks_and_a_large_image(inflate_backend: str) -> None:
    from PIL import Image

    img = Image.effect_noise((700, 500), 60).convert("RGB")  # ~1 MB of rows: several inflate pieces
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    data = buf.getvalue()
    raw = _raw(data)
    payload = zlib.compress(raw)
    third = len(payload) // 3
    split = data[:33] + b"".join(_chunk(b"IDAT", payload[i:i + third]) for i in range(0, len(payload), third))
    split += _chunk(b"IEND", b"")
    assert _pillow_decodes(split)
    assert check_png_data(split) is True


def test_interlaced_and_other_formats_are_left_to_the_decoder() -> None:
    data = bytearray(_pillow_png("RGB"))  # Pillow writes no Adam7 PNG: set the flag by hand
    data[28] = 1  # IHDR interlace method: Adam7 (CRC not fixed: this function does not read it)
    assert check_png_data(bytes(data)) is False
    assert check_png_data(b"GIF89a....") is False


@pytest.mark.parametrize("case", ["short_rows", "bad_filter", "corrupt_stream", "cut_stream"])
def test_broken_data_fails_like_pillow(case: str, inflate_backend: str) -> None:
    data = _pillow_png("RGB")
    raw = bytearray(_raw(data))
    if case == "short_rows":
        broken = _rebuilt(data, bytes(raw[: len(raw) - 40]))
    elif case == "bad_filter":
        stride = 1 + 37 * 3
        raw[stride * 5] = 9
        broken = _rebuilt(data, bytes(raw))
    elif case == "corrupt_stream":
        packed = bytearray(zlib.compress(bytes(raw)))
        packed[len(packed) // 2] ^= 0xFF
        packed[len(packed) // 2 + 1] ^= 0xFF
        broken = _rebuilt(data, bytes(packed), compress=False)
    else:
        broken = _rebuilt(data, zlib.compress(bytes(raw))[:-60], compress=False)
    assert not _pillow_decodes(broken)  # the oracle rejects it...
    with pytest.raises(PngDataError):  # ...and so does the cheap check
        check_png_data(broken)
    with pytest.raises(OutputValidationError, match="not a valid image"):
        check_image(broken, None)
