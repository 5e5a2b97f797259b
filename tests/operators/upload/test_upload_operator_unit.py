"""BriaUploadImagesOperator against a scripted API (requests-mock): validation, reconciliation, failures.

The same behaviour is exercised over real HTTP against the emulator in the ``*_emulator`` test modules; here
the server's answers can be scripted exactly (lost responses, lagging listings, 409s mid-run).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm
from kit import FAST_HOOK, conn_json
from upload_helpers import context

from airflow_provider_bria.contract import BulkUploadStatus
from airflow_provider_bria.exceptions import (
    BriaConflictError,
    BriaInputError,
    BriaUploadError,
)
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

HOST = "http://bria.test"
DS = 5


class FakeBria:
    """A tiny in-memory Bria for one dataset, driven through requests-mock."""

    def __init__(self, mocker: rm.Mocker, *, upload_type: str = "basic", status: str = "draft",
                 existing: int = 0) -> None:
        self.mocker = mocker
        self.dataset = {"id": DS, "project_id": 3, "upload_type": upload_type, "status": status,
                        "training_version": "fibo"}
        self.images: list[dict[str, Any]] = [
            {"id": 1000 + i, "image_name": f"old-{i}.png"} for i in range(existing)
        ]
        self.hidden: dict[int, int] = {}  # image id -> number of listings it stays invisible for
        self.next_id = 1
        self.posts: list[str] = []
        self.deletes: list[int] = []
        self.on_post: Callable[[str, int], int | None] = lambda name, n: None
        base = f"{HOST}/v1/tailored-gen/datasets/{DS}"
        mocker.get(base, json=self._get_dataset)
        mocker.get(f"{base}/images", json=self._list)
        mocker.post(f"{base}/images", json=self._post)
        mocker.delete(re.compile(rf"{base}/images/\d+$"), status_code=204, json=self._delete)

    def _get_dataset(self, request: Any, ctx: Any) -> dict[str, Any]:
        return {**self.dataset, "images_count": len(self.images)}

    def _list(self, request: Any, ctx: Any) -> list[dict[str, Any]]:
        out = []
        for img in self.images:
            if self.hidden.get(img["id"], 0) > 0:
                self.hidden[img["id"]] -= 1
                continue
            out.append(img)
        return out

    def _post(self, request: Any, ctx: Any) -> dict[str, Any]:
        body = request.json()
        name = body["image_name"]
        self.posts.append(name)
        status = self.on_post(name, self.posts.count(name))
        if status in (409, 422, 500) and status != 500:
            ctx.status_code = status
            return {"message": "moderation failed" if status == 422 else "Cannot upload images to a completed dataset"}
        img = {"id": self.next_id, "image_name": name, "increase_resolution": body.get("increase_resolution")}
        if status == 500 and "not-applied" in name:
            ctx.status_code = 500
            return {"message": "boom"}
        self.next_id += 1
        self.images.append(img)
        if status == 500:
            ctx.status_code = 500
            return {"message": "applied, but the response was lost"}
        ctx.status_code = 201
        return img

    def _delete(self, request: Any, ctx: Any) -> dict[str, Any]:
        image_id = int(request.path.rsplit("/", 1)[1])
        self.deletes.append(image_id)
        self.images = [i for i in self.images if i["id"] != image_id]
        return {}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(HOST))
    with rm.Mocker() as mocker:
        yield lambda **kw: FakeBria(mocker, **kw)


def _op(source: Any, **kwargs: Any) -> BriaUploadImagesOperator:
    kwargs.setdefault("hook_params", FAST_HOOK)
    return BriaUploadImagesOperator(task_id="upload", dataset_id=kwargs.pop("dataset_id", DS), source=source,
                                    **kwargs)


# ------------------------------------------------------------------ construction


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_invalid": "ignore"}, "on_invalid"),
        ({"encoding": "xml"}, "encoding"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": 1000}, "at most 64"),
        ({"image_retries": -1}, "image_retries"),
        ({"max_images": 0}, "max_images"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"timeout": "soon"}, "timeout"),
        ({"content_moderation": "yes"}, "content_moderation"),
    ],
)
def test_static_arguments_are_checked_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(BriaInputError, match=message):
        _op("/tmp", **kwargs)


def test_template_fields() -> None:
    assert set(BriaUploadImagesOperator.template_fields) == {
        "bria_conn_id", "dataset_id", "source", "increase_resolution", "staging_path", "zip_url", "staging_url",
        # numbers (issue 15 item 7): templated, rendered to numbers before execute
        "max_concurrency", "image_retries", "max_images", "min_new_images", "poll_interval", "timeout"}


@pytest.mark.parametrize("bad", ["maybe", 2, None, 1.5])
def test_increase_resolution_must_be_a_flag_at_construction(bad: Any) -> None:
    with pytest.raises(BriaInputError, match="increase_resolution"):
        _op("/tmp", increase_resolution=bad)


@pytest.mark.parametrize(("rendered", "expected"), [("True", True), ("false", False), (" YES ", True), ("0", False)])
def test_templated_increase_resolution_is_coerced_after_rendering(
    fake: Any, image_dir: Path, rendered: str, expected: bool
) -> None:
    server = fake()
    op = _op(str(image_dir), increase_resolution="{{ params.upscale }}")
    assert op.increase_resolution == "{{ params.upscale }}"  # not judged before rendering
    ctx = {**context(), "params": {"upscale": rendered}}
    op.render_template_fields(ctx)
    assert op.increase_resolution == rendered  # rendered as text...
    summary = op.execute(ctx)
    assert summary["uploaded"] == 6
    # ... and sent as a real bool (bool("false") would have been True)
    assert [img["increase_resolution"] for img in server.images] == [expected] * 6


def test_templated_increase_resolution_that_renders_to_nonsense_fails_before_any_request(
    fake: Any, image_dir: Path
) -> None:
    server = fake()
    op = _op(str(image_dir), increase_resolution="{{ params.upscale }}")
    ctx = {**context(), "params": {"upscale": "sometimes"}}
    op.render_template_fields(ctx)
    with pytest.raises(BriaInputError, match="increase_resolution.*'sometimes'"):
        op.execute(ctx)
    assert server.posts == []
    assert server.mocker.call_count == 0


def test_importing_the_operator_stays_light() -> None:
    code = (
        "from airflow_provider_bria._compat import AIRFLOW_V_3_1_PLUS; from airflow.sdk import BaseOperator; "
        "import sys; airflow_own = set() if AIRFLOW_V_3_1_PLUS else set(sys.modules); "  # 3.0's bases load fastapi
        "import airflow_provider_bria.operators.upload as m; "
        "bad = [x for x in ('PIL', 'fastapi', 'airflow_provider_bria.emulator', "
        "'airflow_provider_bria.operators._quality_gate', 'airflow_provider_bria.operators._image_sources', "
        "'airflow_provider_bria.operators._upload_basic') if x in sys.modules and x not in airflow_own]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("bad", ["abc", "0", True, "-3"])
def test_bad_dataset_id_fails_before_any_request(fake: Any, image_dir: Path, bad: Any) -> None:
    server = fake()
    with pytest.raises(BriaInputError, match="dataset_id"):
        _op(str(image_dir), dataset_id=bad).execute(context())
    assert server.posts == []


# ------------------------------------------------------------------ basic uploads


def test_uploads_with_stable_names_and_returns_a_summary(fake: Any, image_dir: Path) -> None:
    server = fake()
    ctx = context()
    summary = _op(str(image_dir)).execute(ctx)
    assert summary["uploaded"] == 6
    assert summary["already_present"] == 0
    assert summary["failed_count"] == 0
    assert sorted(summary["image_ids"]) == list(range(1, 7))
    assert all(re.fullmatch(r"img-00\d-[0-9a-f]{12}\.png", n) for n in server.posts)
    assert all(img["increase_resolution"] is False for img in server.images)
    json.dumps(summary)
    assert ctx["ti"].xcoms["dataset_id"] == DS
    assert ctx["ti"].xcoms["dataset_url"].endswith("/tailored-generation/projects/3/datasets/5")


def test_lost_response_is_reconciled_not_resent(fake: Any, image_dir: Path) -> None:
    server = fake()
    server.on_post = lambda name, n: 500 if name.startswith("img-001") and n == 1 else None
    summary = _op(str(image_dir)).execute(context())
    assert len(server.posts) == 6  # img-001 was not sent again: the listing showed it
    assert summary["uploaded"] == 6
    assert summary["reconciled"] == 1
    assert len(server.images) == 6


def test_failure_that_was_not_applied_is_retried(fake: Any, image_dir: Path) -> None:
    (image_dir / "img-003.png").rename(image_dir / "not-applied.png")
    server = fake()
    server.on_post = lambda name, n: 500 if name.startswith("not-applied") and n == 1 else None
    summary = _op(str(image_dir)).execute(context())
    assert sum(1 for p in server.posts if p.startswith("not-applied")) == 2
    assert summary["uploaded"] == 6
    assert summary["reconciled"] == 0
    assert len(server.images) == 6


def test_duplicate_left_by_a_lagging_listing_is_removed(fake: Any, image_dir: Path) -> None:
    server = fake()

    def on_post(name: str, n: int) -> int | None:
        if name.startswith("img-002") and n == 1:
            server.hidden[server.next_id] = 1  # the applied upload is invisible to the next listing
            return 500
        return None

    server.on_post = on_post
    summary = _op(str(image_dir)).execute(context())
    assert sum(1 for p in server.posts if p.startswith("img-002")) == 2
    assert len(server.deletes) == 1
    names = [i["image_name"] for i in server.images]
    assert len(names) == len(set(names)) == 6
    assert summary["uploaded"] == 6
    assert summary["images_in_dataset"] == 6


@pytest.mark.parametrize("lost", [1, 3], ids=["once", "every-time"])
def test_a_delete_whose_answer_is_lost_is_counted_from_a_new_listing(fake: Any, image_dir: Path, lost: int) -> None:
    """Hook retries off: the duplicate's DELETE is applied but answered 500 ``lost`` times (CI, seed 3)."""
    server = fake()
    answers = iter([500] * lost)

    def on_post(name: str, n: int) -> int | None:
        if name.startswith("img-002") and n == 1:
            server.hidden[server.next_id] = 1
            return 500
        return None

    def delete(request: Any, ctx: Any) -> dict[str, Any]:
        body = server._delete(request, ctx)
        ctx.status_code = next(answers, 204)
        return body

    server.on_post = on_post
    server.mocker.delete(re.compile(rf"{HOST}/v1/tailored-gen/datasets/{DS}/images/\d+$"), json=delete)
    summary = _op(str(image_dir), hook_params={**FAST_HOOK, "retry_limit": 0}, image_retries=1).execute(context())
    assert len(server.deletes) == 1
    assert len(server.images) == 6
    assert summary["images_in_dataset"] == 6
    assert sorted(summary["image_ids"]) == sorted(i["id"] for i in server.images)


def test_a_duplicate_that_cannot_be_deleted_is_still_counted(fake: Any, image_dir: Path) -> None:
    server = fake()

    def on_post(name: str, n: int) -> int | None:
        if name.startswith("img-002") and n == 1:
            server.hidden[server.next_id] = 1
            return 500
        return None

    server.on_post = on_post
    deletes: list[str] = []

    def refuse(request: Any, ctx: Any) -> dict[str, Any]:
        deletes.append(request.path)
        ctx.status_code = 500
        return {"message": "boom"}

    server.mocker.delete(re.compile(rf"{HOST}/v1/tailored-gen/datasets/{DS}/images/\d+$"), json=refuse)
    summary = _op(str(image_dir), hook_params={**FAST_HOOK, "retry_limit": 0}, image_retries=2).execute(context())
    assert len(deletes) == 3  # the first delete and image_retries more, each after a new listing
    assert len(server.images) == 7
    assert summary["images_in_dataset"] == 7


def test_rejected_image_fails_the_task_but_keeps_the_others(fake: Any, image_dir: Path) -> None:
    server = fake()
    server.on_post = lambda name, n: 422 if name.startswith("img-004") else None
    ctx = context()
    with pytest.raises(BriaUploadError) as err:
        _op(str(image_dir)).execute(ctx)
    assert [Path(f["source"]).name for f in err.value.failures] == ["img-004.png"]
    assert len(server.images) == 5
    assert ctx["ti"].xcoms["upload_summary"]["failed_count"] == 1


def test_rejected_image_can_be_tolerated(fake: Any, image_dir: Path) -> None:
    server = fake()
    server.on_post = lambda name, n: 422 if name.startswith("img-004") else None
    summary = _op(str(image_dir), fail_on_image_errors=False).execute(context())
    assert summary["uploaded"] == 5
    assert summary["failed_count"] == 1
    assert "422" in summary["failed"][0]["reason"] or "moderation" in summary["failed"][0]["reason"]


def test_conflict_mid_run_stops_the_rest(fake: Any, image_dir: Path) -> None:
    server = fake()
    server.on_post = lambda name, n: 409
    ctx = context()
    with pytest.raises(BriaConflictError):
        _op(str(image_dir), max_concurrency=1).execute(ctx)
    assert len(server.posts) == 1  # the others were never attempted
    summary = ctx["ti"].xcoms["upload_summary"]
    assert summary["failed_count"] == 6
    assert sum("not attempted" in f["reason"] for f in summary["failed"]) == 5


def test_basic_limit_is_checked_before_uploading(fake: Any, image_dir: Path) -> None:
    server = fake(existing=195)
    with pytest.raises(BriaInputError, match="limit of 200"):
        _op(str(image_dir)).execute(context())
    assert server.posts == []


def test_max_images_guard(fake: Any, image_dir: Path) -> None:
    server = fake()
    with pytest.raises(BriaInputError, match="max_images=5"):
        _op(str(image_dir), max_images=5).execute(context())
    assert server.posts == []


def test_completed_dataset_with_new_images_is_a_conflict(fake: Any, image_dir: Path) -> None:
    server = fake(status="completed")
    with pytest.raises(BriaConflictError, match="completed"):
        _op(str(image_dir)).execute(context())
    assert server.posts == []


def test_completed_dataset_holding_every_image_is_a_no_op(fake: Any, image_dir: Path) -> None:
    server = fake()
    _op(str(image_dir)).execute(context())
    server.dataset["status"] = "completed"
    posts = len(server.posts)
    summary = _op(str(image_dir)).execute(context(try_number=2))
    assert len(server.posts) == posts
    assert summary["uploaded"] == 0
    assert summary["already_present"] == 6


def test_staging_arguments_are_refused_for_basic_datasets(fake: Any, image_dir: Path) -> None:
    server = fake()
    with pytest.raises(BriaInputError, match="basic dataset"):
        _op(str(image_dir), zip_url="https://example.com/x.zip").execute(context())
    assert server.posts == []


def test_rendered_list_string_is_accepted(fake: Any, image_dir: Path) -> None:
    fake()
    files = sorted(str(p) for p in image_dir.iterdir())[:2]
    summary = _op(str(files)).execute(context())
    assert summary["uploaded"] == 2


def test_empty_source(fake: Any, tmp_path: Path) -> None:
    server = fake()
    (tmp_path / "empty").mkdir()
    with pytest.raises(BriaInputError, match="valid image"):
        _op(str(tmp_path / "empty")).execute(context())
    summary = _op(str(tmp_path / "empty"), allow_empty=True).execute(context())
    assert summary["uploaded"] == 0
    assert server.posts == []


# ------------------------------------------------------------------ advanced datasets (scripted)


@pytest.fixture
def bulk_api(fake: Any) -> Any:
    """A FakeBria advanced dataset plus scripted bulk endpoints."""
    server = fake(upload_type="advanced")
    return server


def test_existing_bulk_job_is_only_polled(bulk_api: Any, image_dir: Path, tmp_path: Path) -> None:
    base = f"{HOST}/v1/tailored-gen/datasets/{DS}/images"
    with rm.Mocker(real_http=False) as mocker:
        mocker.get(f"{HOST}/v1/tailored-gen/datasets/{DS}", json={**bulk_api.dataset, "images_count": 2})
        mocker.get(f"{base}", json=[{"id": 1, "image_name": "a-000000000001.png"},
                                    {"id": 2, "image_name": "b-000000000002.png"}])
        mocker.get(f"{base}/bulk-upload/status", [
            {"json": {"status": "processing", "progress_percentage": 50, "done": 1, "failed": 0}},
            {"json": {"status": "completed", "progress_percentage": 100, "done": 2, "failed": 1,
                      "failed_images": [{"filename": "c.png", "error_code": 412, "error_message": "too small"}]}},
        ])
        post = mocker.post(f"{base}/bulk-upload", status_code=202, json={})
        op = _op(str(image_dir), staging_path=str(tmp_path / "stage"), poll_interval=0.01,
                 fail_on_image_errors=False)
        summary = op.execute(context(try_number=2))
    assert post.call_count == 0
    assert summary["bulk"]["status"] == "completed"
    assert summary["uploaded"] == 2
    assert summary["failed"] == [{"source": "c.png", "reason": "too small", "error_code": 412}]
    assert not (tmp_path / "stage").exists()  # nothing was staged again


def test_ambiguous_bulk_submit_is_not_repeated(bulk_api: Any, image_dir: Path, tmp_path: Path) -> None:
    base = f"{HOST}/v1/tailored-gen/datasets/{DS}/images"
    with rm.Mocker() as mocker:
        mocker.get(f"{HOST}/v1/tailored-gen/datasets/{DS}", json={**bulk_api.dataset, "images_count": 0})
        mocker.get(f"{base}", json=[])
        mocker.get(f"{base}/bulk-upload/status", [
            {"status_code": 404, "json": {"message": "No bulk upload"}},
            {"json": {"status": "pending"}},
            {"json": {"status": "completed", "done": 6, "failed": 0, "failed_images": []}},
        ])
        mocker.get(f"{base}/bulk/status", status_code=404, json={"message": "No bulk upload"})
        post = mocker.post(f"{base}/bulk-upload", status_code=502, json={"message": "bad gateway"})
        op = _op(str(image_dir), staging_path=str(tmp_path / "stage"), staging_url="http://files.test/stage",
                 poll_interval=0.01)
        summary = op.execute(context())
    assert post.call_count == 1
    assert post.last_request.json()["zip_url"].startswith("http://files.test/stage/bria-dataset-5-")
    assert summary["bulk"]["status"] == "completed"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"increase_resolution": True}, "do not upscale"),
        ({}, "pass staging_path"),
        ({"staging_path": "STAGE"}, "cannot produce a pre-signed URL"),
        ({"automatic_captioning": False, "staging_path": "STAGE"}, "legacy"),
        ({"zip_url": "ftp://x/y.zip"}, "http"),
    ],
)
def test_bulk_input_errors_come_before_any_change(
    bulk_api: Any, image_dir: Path, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    base = f"{HOST}/v1/tailored-gen/datasets/{DS}/images"
    if kwargs.get("staging_path") == "STAGE":
        kwargs["staging_path"] = str(tmp_path / "stage")
    with rm.Mocker() as mocker:
        mocker.get(f"{HOST}/v1/tailored-gen/datasets/{DS}", json={**bulk_api.dataset, "images_count": 0})
        mocker.get(f"{base}", json=[])
        mocker.get(f"{base}/bulk-upload/status", status_code=404, json={"message": "none"})
        mocker.get(f"{base}/bulk/status", status_code=404, json={"message": "none"})
        post = mocker.post(f"{base}/bulk-upload", status_code=202, json={})
        with pytest.raises(BriaInputError, match=message):
            _op(str(image_dir), **kwargs).execute(context())
    assert post.call_count == 0
    assert not list((tmp_path / "stage").glob("*.zip")) if (tmp_path / "stage").exists() else True


def test_non_empty_advanced_dataset_without_job_is_a_conflict(bulk_api: Any, image_dir: Path, tmp_path: Path) -> None:
    base = f"{HOST}/v1/tailored-gen/datasets/{DS}/images"
    with rm.Mocker() as mocker:
        mocker.get(f"{HOST}/v1/tailored-gen/datasets/{DS}", json={**bulk_api.dataset, "images_count": 1})
        mocker.get(f"{base}", json=[{"id": 1, "image_name": "other.png"}])
        mocker.get(f"{base}/bulk-upload/status", status_code=404, json={"message": "none"})
        mocker.get(f"{base}/bulk/status", status_code=404, json={"message": "none"})
        post = mocker.post(f"{base}/bulk-upload", status_code=202, json={})
        with pytest.raises(BriaConflictError, match="empty advanced dataset"):
            _op(str(image_dir), staging_path=str(tmp_path / "s"), staging_url="http://x.test/").execute(context())
    assert post.call_count == 0


def test_on_kill_stops_queued_uploads(fake: Any, image_dir: Path) -> None:
    server = fake()
    op = _op(str(image_dir), max_concurrency=1)

    def on_post(name: str, n: int) -> None:
        op.on_kill()  # the task is killed while the first upload is in flight

    server.on_post = on_post
    ctx = context()
    with pytest.raises(BriaUploadError) as err:
        op.execute(ctx)
    assert len(server.posts) == 1  # the in-flight upload finished, nothing else started
    assert len(err.value.failures) == 5
    assert all("the task was killed" in f["reason"] for f in err.value.failures)
    op.on_kill()  # outside a run: a no-op


def test_signed_zip_url_never_reaches_the_error(bulk_api: Any, tmp_path: Path) -> None:
    from airflow_provider_bria.exceptions import BriaValidationError

    base = f"{HOST}/v1/tailored-gen/datasets/{DS}/images"
    signed = "https://bucket.s3.test/z.zip?X-Amz-Signature=s3cr3t&X-Amz-Expires=600"
    with rm.Mocker() as mocker:
        mocker.get(f"{HOST}/v1/tailored-gen/datasets/{DS}", json={**bulk_api.dataset, "images_count": 0})
        mocker.get(f"{base}/bulk-upload/status", status_code=404, json={"message": "none"})
        mocker.get(f"{base}/bulk/status", status_code=404, json={"message": "none"})
        mocker.post(f"{base}/bulk-upload", status_code=400, json={"message": f"Cannot download {signed}"})
        with pytest.raises(BriaValidationError) as err:
            _op(None, zip_url=signed).execute(context())
    assert "s3cr3t" not in str(err.value)
    assert "https://bucket.s3.test/z.zip?<redacted>" in str(err.value)


def test_automatic_captioning_is_refused_for_a_dataset_without_training_version(
    bulk_api: Any, image_dir: Path, tmp_path: Path
) -> None:
    """The FIBO-only API has no ``training_version``: such a dataset is FIBO (one rule: ``dataset_family``)."""
    base = f"{HOST}/v1/tailored-gen/datasets/{DS}/images"
    dataset = {k: v for k, v in bulk_api.dataset.items() if k != "training_version"}
    with rm.Mocker() as mocker:
        mocker.get(f"{HOST}/v1/tailored-gen/datasets/{DS}", json={**dataset, "images_count": 0})
        post = mocker.post(f"{base}/bulk-upload", status_code=202, json={})
        with pytest.raises(BriaInputError, match="only applies to legacy datasets"):
            _op(str(image_dir), staging_path=str(tmp_path / "stage"), automatic_captioning=False).execute(context())
    assert post.call_count == 0
    assert not (tmp_path / "stage").exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "completed"}, BulkUploadStatus.COMPLETED),
        ({"status": " Processing "}, BulkUploadStatus.PROCESSING),
        ({"status": "PENDING", "progress_percentage": 0}, BulkUploadStatus.PENDING),
        ({"status": "failed"}, BulkUploadStatus.FAILED),
        ({"status": "exploded"}, None),
        ({"status": None}, None),
        ({}, None),
        (["completed"], None),
        (None, None),
    ],
)
def test_bulk_status_is_parsed_from_the_status_body(body: Any, expected: BulkUploadStatus | None) -> None:
    assert BulkUploadStatus.from_body(body) is expected
