"""A small, honest MP4 for image-to-video results: an ISO BMFF file with one Motion-JPEG video track.

Bria returns a 5-second MP4. The emulator cannot encode H.264 with the standard library and Pillow, so it
writes a real MP4 container (``ftyp``, ``mdat``, ``moov``) whose single track holds JPEG frames (sample
entry ``jpeg``, which ffmpeg and QuickTime play): a slow zoom into the source image, 5 seconds at 2 fps.
"""

from __future__ import annotations

import io
import struct

DURATION_MS = 5000
FPS = 2
LONG_SIDE = 256
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _frames(source: bytes, seed: int) -> tuple[list[bytes], int, int]:
    from PIL import Image

    img = Image.open(io.BytesIO(source)).convert("RGB")
    img.thumbnail((LONG_SIDE, LONG_SIDE))
    width, height = img.size
    width, height = width - width % 2, height - height % 2
    img = img.crop((0, 0, width, height))
    count = DURATION_MS * FPS // 1000
    frames = []
    drift = (seed % 7) - 3
    for i in range(count):
        zoom = 1.0 + 0.25 * i / max(1, count - 1)
        cw, ch = width / zoom, height / zoom
        left = (width - cw) / 2 + drift * i
        top = (height - ch) / 2
        left = min(max(0.0, left), width - cw)
        frame = img.resize((width, height), box=(left, top, left + cw, top + ch))
        buf = io.BytesIO()
        frame.save(buf, format="JPEG", quality=80)
        frames.append(buf.getvalue())
    return frames, width, height


def image_to_mp4(source: bytes, *, seed: int = 0) -> bytes:
    """Build the MP4 bytes of a 5-second clip animating ``source``.

    :param source: the source image bytes (any format Pillow reads).
    :param seed: varies the camera drift.
    """
    frames, width, height = _frames(source, seed)
    count = len(frames)
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2mp41")
    mdat = _box(b"mdat", *frames)
    data_offset = len(ftyp) + 8

    mvhd = _full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, 1000, DURATION_MS),
        struct.pack(">IH", 0x00010000, 0x0100),
        b"\0" * 10,
        _MATRIX,
        b"\0" * 24,
        struct.pack(">I", 2),
    )
    tkhd = _full_box(
        b"tkhd",
        0,
        3,
        struct.pack(">IIIII", 0, 0, 1, 0, DURATION_MS),
        b"\0" * 8,
        struct.pack(">hhhH", 0, 0, 0, 0),
        _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, 1000, DURATION_MS, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, 0, struct.pack(">I", 0), b"vide", b"\0" * 12, b"VideoHandler\0")
    vmhd = _full_box(b"vmhd", 0, 1, struct.pack(">HHHH", 0, 0, 0, 0))
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    name = b"Photo - JPEG"
    sample_entry = _box(
        b"jpeg",
        b"\0" * 6,
        struct.pack(">H", 1),
        b"\0" * 16,
        struct.pack(">HHIIIH", width, height, 0x00480000, 0x00480000, 0, 1),
        bytes([len(name)]) + name + b"\0" * (31 - len(name)),
        struct.pack(">Hh", 0x18, -1),
    )
    stsd = _full_box(b"stsd", 0, 0, struct.pack(">I", 1), sample_entry)
    stts = _full_box(b"stts", 0, 0, struct.pack(">III", 1, count, DURATION_MS // count))
    stsc = _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, count, 1))
    stsz = _full_box(b"stsz", 0, 0, struct.pack(">II", 0, count), *(struct.pack(">I", len(f)) for f in frames))
    stco = _full_box(b"stco", 0, 0, struct.pack(">II", 1, data_offset))
    stbl = _box(b"stbl", stsd, stts, stsc, stsz, stco)
    minf = _box(b"minf", vmhd, dinf, stbl)
    mdia = _box(b"mdia", mdhd, hdlr, minf)
    moov = _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))
    return ftyp + mdat + moov
