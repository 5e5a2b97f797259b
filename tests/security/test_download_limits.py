"""Bounded downloads (issue 11 item 3): byte cap, overall deadline, pixel budget read from the header.

A decompression bomb (a small PNG declaring 13000x13000 pixels) must be refused from its header, without
decoding, and must not be downloaded again.
"""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from securitylib import Recorder, context, png, resumed_images_op, send, trickle_route

from airflow_provider_bria.operators._outputs import OutputLimitError, bounded_chunks, check_image


def bomb_png(side: int = 13000) -> bytes:
    """A genuine bomb: a 1-bit ``side`` x ``side`` PNG of zeros (a few KiB; ~169 MB once decoded)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return bomb_png()


def test_a_pixel_bomb_is_refused_from_its_header_without_decoding(bomb: bytes) -> None:
    assert len(bomb) < 600 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(OutputLimitError, match="13000x13000 pixels is more than max_output_pixels"):
            check_image(bomb, None, name="bomb.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024  # the header only: decoding would allocate ~169 MB


def test_a_bomb_above_pillows_own_limit_is_an_output_limit_error() -> None:
    with pytest.raises(OutputLimitError):
        check_image(bomb_png(20000), None, name="huge.png", max_pixels=10**12)


def test_the_pixel_budget_is_a_knob() -> None:
    small = png(64, 64)
    assert check_image(small, None, max_pixels=64 * 64).width == 64
    with pytest.raises(OutputLimitError):
        check_image(small, None, max_pixels=64 * 64 - 1)


class _Raw:
    """A response body that hands out ``pieces`` one ``read1`` at a time."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = list(pieces)

    def read1(self, amt: int, decode_content: bool = True) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""


class _Response:
    def __init__(self, pieces: list[bytes], length: int | None = None) -> None:
        self.raw = _Raw(pieces)
        self.headers = {"Content-Length": str(length)} if length is not None else {}


def test_byte_cap_from_content_length_reads_nothing() -> None:
    resp = _Response([b"x" * 10], length=10 * 1024 * 1024)
    with pytest.raises(OutputLimitError, match="announces 10485760 bytes"):
        next(bounded_chunks(resp, name="a.png", max_bytes=1024, deadline=float("inf")))
    assert resp.raw.pieces == [b"x" * 10]


def test_byte_cap_counts_streamed_bytes_without_content_length() -> None:
    chunks = bounded_chunks(_Response([b"x" * 600, b"x" * 600]), name="a.png", max_bytes=1000,
                            deadline=float("inf"))
    assert next(chunks) == b"x" * 600
    with pytest.raises(OutputLimitError, match="larger than max_download_bytes=1000"):
        next(chunks)


def test_overall_deadline_stops_a_trickle() -> None:
    ticks = iter(range(1000))
    chunks = bounded_chunks(_Response([b"x"] * 100), name="v.mp4", max_bytes=10**9, deadline=5,
                            clock=lambda: next(ticks))
    got = []
    with pytest.raises(OutputLimitError, match="did not finish before its deadline"):
        got.extend(chunks)
    assert len(got) == 6  # clock values 0..5 are within the deadline


def test_a_trickle_is_read_as_it_arrives(server: Recorder, hook: Any) -> None:
    """``read1`` returns what the socket has, so the deadline is checked between bytes of a slow server
    (a 256 KiB ``read`` would block until the whole body arrived)."""
    server.routes["/slow"] = trickle_route(20, 0.02)
    with hook.open_download(f"{server.origin}/slow") as resp:
        pieces = list(bounded_chunks(resp, name="slow", max_bytes=100, deadline=float("inf")))
    assert b"".join(pieces) == b"x" * 20
    assert len(pieces) > 1


def test_a_generated_bomb_fails_once_and_is_not_downloaded_again(server: Recorder, hook: Any, tmp_path: Path,
                                                                 bomb: bytes) -> None:
    from airflow_provider_bria.exceptions import BriaGenerationError

    op = resumed_images_op(server, tmp_path, "r7", lambda h: send(h, 200, bomb))
    with pytest.raises(BriaGenerationError) as info:
        op.execute(context())
    failure = info.value.failures[0]
    assert failure["kind"] == "output"
    assert "max_output_pixels" in failure["reason"]
    assert [s.path for s in server.seen].count("/files/r7.png") == 1
    assert not list(tmp_path.glob("*.png"))
    assert not list(tmp_path.glob(".*.part"))


def test_an_oversized_download_fails_once(server: Recorder, hook: Any, tmp_path: Path) -> None:
    from airflow_provider_bria.exceptions import BriaGenerationError

    op = resumed_images_op(server, tmp_path, "r7", lambda h: send(h, 200, png(1024, 1024)), max_download_bytes=1000)
    with pytest.raises(BriaGenerationError) as info:
        op.execute(context())
    assert "max_download_bytes=1000" in info.value.failures[0]["reason"]
    assert [s.path for s in server.seen].count("/files/r7.png") == 1


@pytest.mark.parametrize(("arg", "value"), [("max_download_bytes", 0), ("download_timeout", -1),
                                            ("max_output_pixels", "many")])
def test_limit_knobs_are_validated(arg: str, value: Any) -> None:
    from airflow_provider_bria.exceptions import BriaInputError
    from airflow_provider_bria.operators.generation import BriaGenerateVideoOperator

    with pytest.raises(BriaInputError, match=arg):
        BriaGenerateVideoOperator(task_id="v", model_id=1, image="https://img.example/a.png", **{arg: value})


def test_video_and_image_defaults() -> None:
    from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator, BriaGenerateVideoOperator

    assert BriaGenerateImagesOperator(task_id="i", model_id=1, prompt="x").max_download_bytes == 50 * 1024 * 1024
    assert BriaGenerateVideoOperator(task_id="v", model_id=1, image="https://i.example/a.png").max_download_bytes \
        == 1024 * 1024 * 1024
