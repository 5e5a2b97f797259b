"""The output-folder reader on a non-local object store (fsspec's memory store through ObjectStoragePath).

Sidecars are written by the generation operators' own :class:`OutputFolder`, in the three shapes they use:
a v2 image (``<stem>.png`` + ``<stem>.json``), a legacy v1 prompt (one sidecar, ``outputs`` listing several
images) and a job submitted but never downloaded (sidecar without file).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from generation_helpers import png_bytes

from airflow_provider_bria.plugins import outputs

SIGNED = "https://bria-results.s3.amazonaws.com/x.png?X-Amz-Signature=abc123"


@pytest.fixture
def store() -> Iterator[str]:
    """A ``memory://`` folder attached as an Airflow object store; Airflow's store cache restored afterwards."""
    from airflow.sdk.io.store import _STORE_CACHE, attach
    from fsspec.implementations.memory import MemoryFileSystem

    cached = dict(_STORE_CACHE)
    _STORE_CACHE.pop("memory", None)
    attach(protocol="memory", fs=MemoryFileSystem())
    yield "memory://bria-ui-test/out"
    for path in [p for p in MemoryFileSystem.store if p.startswith("/bria-ui-test")]:
        MemoryFileSystem.store.pop(path, None)
    _STORE_CACHE.clear()
    _STORE_CACHE.update(cached)


def test_every_sidecar_shape_from_an_object_store(store: str) -> None:
    from airflow_provider_bria.operators._outputs import OutputFolder

    folder = OutputFolder(store)
    folder.write("v2-abc.png", [png_bytes(64, 32)])
    folder.write_json("v2-abc.json", {"status": "completed", "prompt": "a kite", "seed": 5, "model_id": 9,
                                      "request_id": "req-1", "image_url": SIGNED, "uri": folder.uri_of("v2-abc.png")})
    for k in range(2):
        folder.write(f"legacy-def-{k}.png", [png_bytes(32, 32)])
    folder.write_json("legacy-def.json", {"status": "completed", "prompt": "a boat", "model_id": 3, "urls": [SIGNED],
                                          "outputs": [{"uri": folder.uri_of(f"legacy-def-{k}.png"), "seed": 10 + k}
                                                      for k in range(2)]})
    folder.write_json("never-ghi.json", {"status": "submitted", "request_id": "req-9", "prompt": "a fox",
                                         "status_url": SIGNED})

    gallery = outputs.read_gallery(store)
    assert [i.name for i in gallery.items] == ["legacy-def-0.png", "legacy-def-1.png", "v2-abc.png"]
    by_name = {i.name: i.meta for i in gallery.items}
    assert by_name["v2-abc.png"] == {"prompt": "a kite", "seed": 5, "model_id": 9, "request_id": "req-1",
                                     "status": "completed"}
    assert by_name["legacy-def-1.png"]["seed"] == 11
    assert by_name["legacy-def-1.png"]["prompt"] == "a boat"
    assert [(p.stem, p.meta["status"]) for p in gallery.pending] == [("never-ghi", "submitted")]
    assert SIGNED not in repr(gallery)  # no result URL is carried out of the sidecars

    only = outputs.read_gallery(store, only={"v2-abc.png"})
    assert [i.name for i in only.items] == ["v2-abc.png"]
    assert only.pending == []

    mime, size, chunks = outputs.open_media(store, "v2-abc.png")
    assert mime == "image/png"
    assert b"".join(chunks) == png_bytes(64, 32)
    assert size == len(png_bytes(64, 32))
    for bad in ("v2-abc.json", "../out/v2-abc.png", "missing.png"):
        with pytest.raises(outputs.MediaNotFound):
            outputs.open_media(store, bad)
    with pytest.raises(outputs.MediaNotFound, match="larger than"):
        outputs.read_media(store, "v2-abc.png", max_bytes=10)
