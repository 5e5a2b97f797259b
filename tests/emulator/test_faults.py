"""``--fault-rate``: injected failures before and after a request is applied never corrupt the state.

A naive client that blindly retries creations makes duplicates (exactly as many as the server applied);
a careful client that checks before retrying makes none; and every object is whole either way.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from emulator_helpers import COLORS, TG, make_image

PROJECTS = f"{TG}/projects"


class FaultyClient:
    """Raw HTTP with a record of what the client saw; ``None`` status means no usable response."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["api_token"] = token
        self.seen: dict[str, int] = {}

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int | None, Any]:
        try:
            resp = self.session.request(method, self.url + path, timeout=30, **kwargs)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            self.session.close()  # the connection was dropped mid-response
            self.seen["dropped"] = self.seen.get("dropped", 0) + 1
            return None, None
        self.seen[str(resp.status_code)] = self.seen.get(str(resp.status_code), 0) + 1
        if resp.status_code == 429:
            assert "Retry-After" not in resp.headers  # Bria documents none; only --retry-after adds it
        if resp.status_code >= 500 or resp.status_code == 429:
            body = resp.json()
            assert set(body) == {"message"} or set(body) == {"error", "request_id"}, body
        return resp.status_code, (resp.json() if resp.content else None)

    def until(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> tuple[int, Any]:
        """Retry a safe or idempotent call until a non-fault answer."""
        for _ in range(50):
            status, body = self.call(method, path, **kwargs)
            if status is not None and status < 500 and status != 429:
                assert status in ok, (method, path, status, body)
                return status, body
        raise AssertionError(f"{method} {path} kept failing")

    def naive_create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Retry a POST blindly until it answers 201."""
        for _ in range(50):
            status, answer = self.call("POST", path, json=body)
            if status == 201:
                return answer
        raise AssertionError("naive create kept failing")

    def careful_create(self, path: str, body: dict[str, Any], find: Any) -> dict[str, Any]:
        """POST once; after an ambiguous failure, look the object up before retrying."""
        for _ in range(50):
            status, answer = self.call("POST", path, json=body)
            if status == 201:
                return answer
            assert status is None or status >= 500 or status == 429, (status, answer)
            found = find()
            if found is not None:
                return found
        raise AssertionError("careful create kept failing")


def _applied_creations(log: list[dict[str, Any]], path: str) -> int:
    return sum(1 for e in log if e["method"] == "POST" and e["path"] == path and e["handler_status"] == 201)


@pytest.mark.timeout(240)
def test_fault_rate_never_corrupts_state(start_emulator: Any) -> None:
    emu = start_emulator(fault_rate=0.3, seed=20240607, training_seconds=0, job_seconds=0)
    client = FaultyClient(emu.url, emu.token)

    # 1. naive: blind retries of creations
    for index in range(25):
        client.naive_create(
            PROJECTS, {"project_name": f"naive-{index}", "ip_medium": "illustration", "ip_type": "stylized_scene"}
        )
    naive_log = emu.requests(PROJECTS)
    applied_naive = _applied_creations(naive_log, PROJECTS)

    # 2. careful: look up before retrying, for every kind of object
    def find_project(name: str) -> Any:
        return next((p for p in client.until("GET", PROJECTS)[1] if p["project_name"] == name), None)

    small = [base64.b64encode(make_image(c, (256, 256))).decode() for c in COLORS[:6]]
    believed: dict[str, set[int]] = {"projects": set(), "datasets": set(), "models": set(), "images": set()}
    dataset_project: dict[int, int] = {}
    for index in range(6):
        name = f"careful-{index}"
        project = client.careful_create(
            PROJECTS,
            {
                "project_name": name,
                "ip_medium": "illustration",
                "ip_type": "stylized_scene",
                "training_version": "fibo",
            },
            lambda name=name: find_project(name),
        )
        believed["projects"].add(project["id"])

        def find_dataset(pid: int = project["id"]) -> Any:
            return next((d for d in client.until("GET", f"{TG}/projects/{pid}/datasets")[1] if d["name"] == "ds"), None)

        dataset = client.careful_create(f"{TG}/datasets", {"project_id": project["id"], "name": "ds"}, find_dataset)
        believed["datasets"].add(dataset["id"])
        dataset_project[dataset["id"]] = project["id"]
        for number, encoded in enumerate(small[:5]):
            image_name = f"img{number}.png"

            def find_image(did: int = dataset["id"], image_name: str = image_name) -> Any:
                listing = client.until("GET", f"{TG}/datasets/{did}/images")[1]
                return next((i for i in listing if i["image_name"] == image_name), None)

            image = client.careful_create(
                f"{TG}/datasets/{dataset['id']}/images", {"file": encoded, "image_name": image_name}, find_image
            )
            believed["images"].add(image["id"])
        schema = json.dumps({"style": "flat"})  # a FIBO dataset needs one before completion
        client.until("PUT", f"{TG}/datasets/{dataset['id']}", json={"visual_schema": schema})
        client.until("PUT", f"{TG}/datasets/{dataset['id']}", json={"status": "completed"})

        def find_model(did: int = dataset["id"]) -> Any:
            return next((m for m in client.until("GET", f"{TG}/models")[1] if m["dataset_id"] == did), None)

        model = client.careful_create(f"{TG}/models", {"dataset_id": dataset["id"], "name": "m"}, find_model)
        believed["models"].add(model["id"])
        for _ in range(50):  # start_training: POST, check the status before retrying
            status, _ = client.call("POST", f"{TG}/models/{model['id']}/start_training", json={})
            if status == 200:
                break
            current = client.until("GET", f"{TG}/models/{model['id']}")[1]
            if current["status"] != "Created":
                break
        client.call(
            "POST",
            "/v2/image/generate/tailored",
            json={"tailored_model_id": str(model["id"]), "prompt": f"p{index}", "sync": True},
        )

    # 3. idempotent deletes are safely retried (404 after an applied-but-dropped delete is success)
    victim = sorted(believed["projects"])[0]
    client.until("DELETE", f"{PROJECTS}/{victim}", ok=(204, 404))
    believed["projects"].discard(victim)

    # ---- a fault-free view -------------------------------------------------------------------
    emu.set_faults(0.0)
    log = emu.requests()
    state = emu.state()
    check = FaultyClient(emu.url, emu.token)
    projects = check.until("GET", PROJECTS)[1]
    datasets = check.until("GET", f"{TG}/datasets")[1]
    models = check.until("GET", f"{TG}/models", params={"include_training_parameters": "true"})[1]

    # faults really happened, of every kind, and were counted
    kinds = {e["fault"] for e in log if e["fault"]}
    assert kinds == {"before-429", "before-500", "before-503", "after-500", "after-503", "after-drop"}
    assert state["counts"]["faults_injected"] == sum(1 for e in log if e["fault"])
    assert state["counts"]["requests"] == len(log)
    assert client.seen.get("dropped", 0) > 0

    # naive retries made exactly the duplicates the server applied
    naive = [p for p in projects if p["project_name"].startswith("naive-")]
    assert len(naive) == applied_naive
    assert applied_naive > 25
    assert {f"naive-{i}" for i in range(25)} <= {p["project_name"] for p in naive}
    assert {n for n in state["duplicates"]["projects"] if n.startswith("naive-")}
    assert not [n for n in state["duplicates"]["projects"] if n.startswith("careful-")]

    # careful client: no duplicates anywhere, and everything it believes in exists
    assert state["duplicates"]["datasets"] == []
    assert state["duplicates"]["models"] == []
    assert state["duplicates"]["images"] == []
    careful = {p["id"] for p in projects if p["project_name"].startswith("careful-")}
    assert careful == believed["projects"]
    survivors = {did for did, pid in dataset_project.items() if pid != victim}
    assert {d["id"] for d in datasets} == survivors
    assert {m["dataset_id"] for m in models} == survivors
    assert {m["id"] for m in models} < believed["models"]

    # no half-made objects: references resolve, counts agree, files exist, statuses are whole
    project_ids = {p["id"] for p in projects}
    image_total = 0
    for summary in datasets:
        assert summary["project_id"] in project_ids
        dataset = check.until("GET", f"{TG}/datasets/{summary['id']}")[1]
        assert dataset["images_count"] == len(dataset["images"]) == summary["images_count"] == 5
        assert dataset["status"] == "completed"
        for image in dataset["images"]:
            assert image["dataset_id"] == dataset["id"]
            assert image["caption"] is None or image["caption_source"] == "automatic"
            file = requests.get(image["image_url"], headers={"api_token": emu.token}, timeout=10)
            assert file.status_code == 200
        image_total += len(dataset["images"])
    for model in models:
        assert model["dataset_id"] in {d["id"] for d in datasets}
        assert model["status"] == "Completed"
        assert model["training_parameters"]["total_training_steps"] == 750
    assert state["counts"]["projects"] == len(projects)
    assert state["counts"]["datasets"] == len(datasets)
    assert state["counts"]["models"] == len(models)
    assert state["counts"]["images"] == image_total
    assert all(n == 1 for n in state["trainings_per_model"].values())
    assert state["counts"]["trainings_started"] == len(believed["models"])
    emu.stop()


def test_faults_are_reproducible_with_a_seed(start_emulator: Any) -> None:
    emu = start_emulator(fault_rate=0.5, seed=7)
    client = FaultyClient(emu.url, emu.token)
    sequences = []
    for _ in range(2):
        start = len(emu.requests())
        for _ in range(40):
            client.call("GET", PROJECTS)
        sequences.append([(e["status"], e["fault"]) for e in emu.requests()[start:]])
        emu.set_faults(0.5, seed=7)  # re-seeding replays the sequence the --seed flag started
    assert sequences[0] == sequences[1]
    assert any(fault for _, fault in sequences[0])
    assert any(fault is None for _, fault in sequences[0])
    emu.stop()


def test_admin_routes_are_never_faulted(emulator: Any) -> None:
    emulator.set_faults(1.0, seed=3)
    for _ in range(20):
        assert emulator.state()["settings"]["fault_rate"] == 1.0
        token = {"api_token": emulator.token}
        files = requests.get(f"{emulator.url}/_emulator/files/none.png", headers=token, timeout=10)
        assert files.status_code == 404
    resp = requests.get(f"{emulator.url}{PROJECTS}", headers={"api_token": emulator.token}, timeout=10)
    assert resp.status_code in (429, 500, 503) or resp.status_code == 200  # after-fault drops raise instead
    emulator.reset()
    assert emulator.state()["settings"]["fault_rate"] == 0.0  # reset restores the start-up rate
