"""``--state-file``: a restart keeps every object, file, job and training clock."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from emulator_helpers import COLORS, TG, Api, make_image


def _snapshot(api: Api, job_ids: list[str]) -> dict[str, Any]:
    datasets = [api.ok("GET", f"{TG}/datasets/{d['id']}") for d in api.ok("GET", f"{TG}/datasets")]
    return {
        "projects": api.ok("GET", f"{TG}/projects"),
        "datasets": datasets,
        "models": api.ok("GET", f"{TG}/models", params={"include_training_parameters": "true"}),
        "jobs": [api.ok("GET", f"/v2/status/{rid}") for rid in job_ids],
    }


def test_restart_keeps_every_object(start_emulator: Any, tmp_path: Path) -> None:
    state_file = tmp_path / "bria-state.sqlite"
    first = start_emulator(state_file=state_file, training_seconds=0, job_seconds=0)
    api = Api(first.url, first.token)
    images = [make_image(c, (256, 256)) for c in COLORS[:5]]
    trained = api.trained_model(images, training_mode="expert")
    clone = api.ok("POST", f"{TG}/datasets/{trained['dataset_id']}/clone", 201)
    api.dataset(api.project(project_name="legacy")["id"], training_version="max", upload_type="advanced")
    job = api.ok(
        "POST",
        "/v2/image/generate/tailored",
        json={"tailored_model_id": str(trained["id"]), "prompt": "kept", "seed": 1, "sync": True},
    )
    first.set_timing(training_seconds=1.5, job_seconds=1.5)
    api.ok("PUT", f"{TG}/datasets/{clone['id']}", json={"status": "completed"})
    training = api.model(clone["id"], name="still training")
    api.ok("POST", f"{TG}/models/{training['id']}/start_training", json={})
    pending = api.ok(
        "POST", "/v2/image/generate/tailored", 202, json={"tailored_model_id": str(trained["id"]), "prompt": "pending"}
    )
    before = _snapshot(api, [job["request_id"], pending["request_id"]])
    png = api.session.get(job["result"]["image_url"], timeout=10).content
    image_url = before["datasets"][0]["images"][0]["image_url"]
    original = api.session.get(image_url, timeout=10).content
    counts = first.state()["counts"]
    first.stop()

    second = start_emulator(state_file=state_file, training_seconds=0, job_seconds=0)
    assert second.url != first.url or second.pid != first.pid
    api2 = Api(second.url, second.token)
    after = _snapshot(api2, [job["request_id"], pending["request_id"]])
    expected = json.loads(json.dumps(before).replace(first.url, second.url))
    # the training and the pending job kept their clocks: compare them apart
    moving_model = lambda snap: [m for m in snap["models"] if m["id"] == training["id"]][0]  # noqa: E731
    assert moving_model(after)["status"] in ("InProgress", "Completed")
    for snap in (after, expected):
        snap["models"] = [m for m in snap["models"] if m["id"] != training["id"]]
        snap["jobs"] = snap["jobs"][:1]
    assert after == expected
    assert api2.session.get(image_url.replace(first.url, second.url), timeout=10).content == original
    assert api2.session.get(job["result"]["image_url"].replace(first.url, second.url), timeout=10).content == png
    assert api2.wait_model(training["id"], ("Completed",), timeout=10)["status"] == "Completed"
    assert api2.wait_job(pending["request_id"], timeout=10)["status"] == "COMPLETED"
    state = second.state()
    for key in ("projects", "datasets", "images", "models", "trainings_started", "generation_jobs"):
        assert state["counts"][key] == counts[key], key
    # ids continue after the restart, never reused
    new_project = api2.project(project_name="after restart")
    assert new_project["id"] > max(p["id"] for p in before["projects"])
    second.stop()


def test_restart_fails_interrupted_bulk_upload(start_emulator: Any, tmp_path: Path) -> None:
    """A bulk job cannot resume after a restart: it is reported failed, its dataset stays consistent."""
    import http.server
    import threading

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # noqa: N802
            self.send_response(200)
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            time.sleep(1.5)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.block_on_close = False
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state_file = tmp_path / "bulk.sqlite"
    first = start_emulator(state_file=state_file)
    api = Api(first.url, first.token)
    dataset = api.dataset(api.project()["id"], training_version="fibo", upload_type="advanced")
    api.ok(
        "POST",
        f"{TG}/datasets/{dataset['id']}/images/bulk-upload",
        202,
        json={"zip_url": f"http://127.0.0.1:{server.server_address[1]}/slow.zip"},
    )
    first.stop()
    second = start_emulator(state_file=state_file)
    status = Api(second.url, second.token).ok("GET", f"{TG}/datasets/{dataset['id']}/images/bulk-upload/status")
    assert status["status"] == "failed"
    assert "restart" in status["message"]
    second.stop()
    server.shutdown()
    server.server_close()
