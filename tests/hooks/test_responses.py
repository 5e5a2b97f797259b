"""V2Response and normalize_v1_result accept every documented body shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_bria.contract import JobStatus
from airflow_provider_bria.responses import V2Response, normalize_v1_result

SP = json.dumps({"subject": "cat"})


@pytest.mark.parametrize(
    ("body", "http_status", "status", "image_url", "seed", "sp"),
    [
        ({"status": "COMPLETED", "result": {"image_url": "u", "seed": "123456", "structured_prompt": SP},
          "request_id": "r"}, 200, JobStatus.COMPLETED, "u", 123456, SP),
        ({"image_url": "u", "structured_prompt": SP}, 200, JobStatus.COMPLETED, "u", None, SP),
        ({"result": {"image_url": "u", "structured_prompt": {"subject": "cat"}}, "image_url": "flat"}, 200,
         JobStatus.COMPLETED, "u", None, SP),
        ({"request_id": "r", "status_url": "https://h/v2/status/r"}, 202, JobStatus.IN_PROGRESS, None, None, None),
        ({"request_id": "r", "seed": 3, "prompt": "echo"}, 202, JobStatus.IN_PROGRESS, None, 3, None),
        ({"request_id": "r", "seed": 3}, 200, JobStatus.IN_PROGRESS, None, 3, None),
        ({"status": "in_progress", "request_id": "r"}, 200, JobStatus.IN_PROGRESS, None, None, None),
        ({"status": "ERROR", "error": {"code": 500, "message": "Internal Server Error", "details": "x"}}, 200,
         JobStatus.ERROR, None, None, None),
        ({"status": "FAILED", "error": "boom"}, 200, JobStatus.FAILED, None, None, None),
        ({"status": "UNKNOWN"}, 200, JobStatus.UNKNOWN, None, None, None),
        ({"status": "NOT_FOUND"}, 404, JobStatus.NOT_FOUND, None, None, None),
        ({"error": {"code": 404, "message": "not found"}}, 404, JobStatus.NOT_FOUND, None, None, None),
        ({"error": {"code": 500, "message": "x"}}, 200, JobStatus.ERROR, None, None, None),
        (None, 200, JobStatus.UNKNOWN, None, None, None),
        ({"result": [{"urls": ["https://x/1.png"], "seed": 5}]}, 200, JobStatus.COMPLETED, "https://x/1.png", 5, None),
    ],
)
def test_from_body(body: Any, http_status: int, status: JobStatus, image_url: str | None, seed: int | None,
                   sp: str | None) -> None:
    resp = V2Response.from_body(body, http_status=http_status, request_id="fallback")
    assert resp.status is status
    assert resp.image_url == image_url
    assert resp.seed == seed
    assert resp.structured_prompt == sp
    if resp.result.get("seed") is not None:
        assert isinstance(resp.result["seed"], int)


def test_request_id_sources() -> None:
    assert V2Response.from_body({"request_id": 42}).request_id == "42"
    assert V2Response.from_body({"status_url": "https://h/v2/status/abc"}, http_status=202).request_id == "abc"
    assert V2Response.from_body({"status": "IN_PROGRESS"}, request_id="given").request_id == "given"


def test_error_message_and_flags() -> None:
    resp = V2Response.from_body({"status": "ERROR", "error": {"code": 500, "message": "Internal", "details": "gpu"}})
    assert resp.is_failure
    assert resp.is_terminal
    assert not resp.is_completed
    assert resp.error_message == "[500] Internal (gpu)"
    assert V2Response.from_body({"status": "COMPLETED", "result": {"video_url": "v"}}).video_url == "v"
    assert V2Response.from_body({"status": "IN_PROGRESS"}).is_terminal is False


def test_json_round_trip_is_json_safe() -> None:
    resp = V2Response.from_body({"status": "COMPLETED", "result": {"image_url": "u", "seed": "7"}, "request_id": "r"})
    data = resp.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["status"] == "COMPLETED"
    again = V2Response.from_json(json.loads(json.dumps(data)))
    assert again == resp


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"result": [{"urls": ["a", "b"], "seed": "3"}, {"urls": ["c"]}]},
         [("a", ["a", "b"], 3), ("c", ["c"], None)]),
        ({"result": {"urls": "single"}}, [("single", ["single"], None)]),
        ([{"image_url": "x", "seed": 9}], [("x", ["x"], 9)]),
        ({"urls": ["flat"]}, [("flat", ["flat"], None)]),
        ({"result": ["https://x/plain.png"]}, [("https://x/plain.png", ["https://x/plain.png"], None)]),
        ({"result": []}, []),
        ("nonsense", []),
    ],
)
def test_normalize_v1_result(body: Any, expected: list[tuple[str, list[str], int | None]]) -> None:
    got = normalize_v1_result(body)
    assert [(r["image_url"], r["urls"], r["seed"]) for r in got] == expected
