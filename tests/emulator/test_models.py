"""Contract tests, raw HTTP: models and training (§6): lifecycle, expert parameters, checkpoints, downloads."""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from emulator_helpers import TG, Api, message_shape

MODEL_FIELDS = {
    "id",
    "name",
    "description",
    "status",
    "training_mode",
    "training_version",
    "generation_prefix",
    "project_id",
    "dataset_id",
    "created_at",
    "updated_at",
    "custom_metadata",
    "active_model_version",
    "training_parameters",
    "checkpoint_steps",
}


def test_create_model_shape(api: Api, images: list[bytes]) -> None:
    dataset = api.fibo_dataset(images, complete=True)
    body = api.model(dataset["id"], name="Test Model", description="Test description")
    assert set(body) == MODEL_FIELDS
    assert body["status"] == "Created"
    assert body["training_mode"] == "fully_automated"
    assert body["training_version"] == "fibo"
    assert body["generation_prefix"] is None
    assert body["project_id"] == dataset["project_id"]
    assert body["active_model_version"] == "default"
    assert body["training_parameters"] == {}
    assert body["checkpoint_steps"] == []
    assert body["custom_metadata"] == ""
    assert api.ok("GET", f"{TG}/models/{body['id']}") == body


@pytest.mark.parametrize(
    ("dataset_version", "model_version", "status", "stored"),
    [
        ("3.2", None, 201, "bria-3.2"),
        ("2.3", None, 201, "bria-2.3"),
        ("max", "light", 201, "light"),
        ("max", "bria-3.2", 201, "bria-3.2"),
        ("light", "3.2", 201, "bria-3.2"),
        ("max", "fibo", 400, None),  # create model documents 400, not 409
        ("fibo", "max", 400, None),
        ("fibo", "sdxl", 400, None),
    ],
)
def test_model_training_version(
    api: Api, images: list[bytes], dataset_version: str, model_version: str | None, status: int, stored: str | None
) -> None:
    if dataset_version == "fibo":
        dataset = api.fibo_dataset(images, complete=True)
    else:
        dataset = api.legacy_dataset(dataset_version)
    body: dict[str, Any] = {"dataset_id": dataset["id"], "name": "m"}
    if model_version:
        body["training_version"] = model_version
    resp = api.post(f"{TG}/models", json=body)
    assert resp.status_code == status, resp.text
    if stored:
        assert resp.json()["training_version"] == stored
        assert resp.json()["generation_prefix"] == ""
    else:
        message_shape(resp.json())


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "m"}, 400),
        ({"dataset_id": 999999, "name": "m"}, 404),
        ({"dataset_id": "DID"}, 400),
        ({"dataset_id": "DID", "name": "m", "training_mode": "manual"}, 400),
    ],
)
def test_create_model_errors(api: Api, body: dict, status: int) -> None:
    dataset = api.dataset(api.project()["id"])
    body = {k: dataset["id"] if v == "DID" else v for k, v in body.items()}
    resp = api.post(f"{TG}/models", json=body)
    assert resp.status_code == status
    message_shape(resp.json())


def test_lists_and_include_training_parameters(api: Api, images: list[bytes], fast: Any) -> None:
    model = api.trained_model(images, training_mode="expert")
    other_project = api.project(project_name="other")
    listing = api.ok("GET", f"{TG}/models")
    assert [m["id"] for m in listing] == [model["id"]]
    assert "training_parameters" not in listing[0]
    assert "checkpoint_steps" not in listing[0]
    full = api.ok("GET", f"{TG}/models", params={"include_training_parameters": "true"})
    assert full[0]["training_parameters"]["total_training_steps"] == 750
    assert full[0]["checkpoint_steps"] == ["750", "500"]
    by_project = api.ok("GET", f"{TG}/projects/{model['project_id']}/models")
    assert [m["id"] for m in by_project] == [model["id"]]
    assert api.ok("GET", f"{TG}/projects/{other_project['id']}/models") == []
    assert api.get(f"{TG}/projects/999999/models").status_code == 404


def test_update_model(api: Api, images: list[bytes]) -> None:
    model = api.model(api.fibo_dataset(images, complete=True)["id"])
    body = api.ok("PUT", f"{TG}/models/{model['id']}", json={"name": "renamed", "description": "new"})
    assert (body["name"], body["description"]) == ("renamed", "new")
    resp = api.put(f"{TG}/models/{model['id']}", json={"training_mode": "expert"})
    assert resp.status_code == 400
    assert "cannot be updated" in message_shape(resp.json())
    assert api.put(f"{TG}/models/999999", json={"name": "x"}).status_code == 404


def test_training_lifecycle_fully_automated(api: Api, images: list[bytes], emulator: Any) -> None:
    emulator.set_timing(training_seconds=1.5)  # the GET below must still see InProgress, also on a loaded machine
    dataset = api.fibo_dataset(images, complete=True)
    model = api.model(dataset["id"])
    started = api.ok("POST", f"{TG}/models/{model['id']}/start_training", json={})
    assert started["status"] == "InProgress"
    assert started["training_parameters"] == {
        "learning_rate": 0.0001,
        "lr_scheduler": "constant_with_warmup",
        "rank": 128,
        "total_training_steps": 750,
        "checkpoint_interval": 500,
        "lr_warmup_steps": 100,
    }
    assert started["checkpoint_steps"] == []
    assert "request_id" not in started
    assert api.ok("GET", f"{TG}/models/{model['id']}")["status"] == "InProgress"
    done = api.wait_model(model["id"], ("Completed",))
    assert done["active_model_version"] == "default"
    again = api.post(f"{TG}/models/{model['id']}/start_training", json={})
    assert again.status_code == 409
    assert "cannot be resumed" in message_shape(again.json())
    state = api.session.get(f"{api.url}/_emulator/state", timeout=10).json()
    assert state["counts"]["trainings_started"] == 1
    assert state["trainings_per_model"] == {str(model["id"]): 1}


def test_model_needs_a_completed_dataset(api: Api, images: list[bytes]) -> None:
    """The spec: "Create a new model linked to a completed dataset" (400, the documented status)."""
    dataset = api.fibo_dataset(images)
    resp = api.post(f"{TG}/models", json={"dataset_id": dataset["id"], "name": "m"})
    assert resp.status_code == 400
    assert "completed dataset" in message_shape(resp.json())
    assert api.ok("GET", f"{TG}/models") == []
    assert api.post(f"{TG}/models/999999/start_training", json={}).status_code == 404


def test_expert_parameters_only_for_expert_models(api: Api, images: list[bytes]) -> None:
    model = api.model(api.fibo_dataset(images, complete=True)["id"])
    resp = api.post(f"{TG}/models/{model['id']}/start_training", json={"rank": 64})
    assert resp.status_code == 400
    assert resp.json() == {
        "message": "Advanced training parameters are only supported when training_mode is set to 'expert'."
    }


@pytest.mark.parametrize(
    ("params", "field", "msg"),
    [
        ({"total_training_steps": 1000000}, "total_training_steps", "Input should be less than or equal to 5000"),
        ({"total_training_steps": 0}, "total_training_steps", "greater than or equal to 1"),
        ({"learning_rate": 0.01}, "learning_rate", "less than or equal to 0.001"),
        ({"learning_rate": 0.0000001}, "learning_rate", "greater than or equal to 1e-06"),
        ({"rank": 2}, "rank", "greater than or equal to 4"),
        ({"rank": 512}, "rank", "less than or equal to 256"),
        ({"lr_warmup_steps": 5000}, "lr_warmup_steps", "less than or equal to 1000"),
        ({"checkpoint_interval": 50}, "checkpoint_interval", "greater than or equal to 100"),
        ({"lr_scheduler": "exponential"}, "lr_scheduler", "Input should be"),
        ({"rank": "big"}, "rank", "valid integer"),
        ({"rank": 12.5}, "rank", "valid integer"),
    ],
)
def test_expert_parameter_field_errors(api: Api, images: list[bytes], params: dict, field: str, msg: str) -> None:
    model = api.model(api.fibo_dataset(images, complete=True)["id"], training_mode="expert")
    resp = api.post(f"{TG}/models/{model['id']}/start_training", json=params)
    assert resp.status_code == 400
    body = resp.json()
    assert set(body) == {"errors"}
    errors = [e for e in body["errors"] if e["field_name"] == field]
    assert errors, body
    assert set(errors[0]) == {"msg", "field_name", "field_input"}
    assert msg in errors[0]["msg"]
    assert isinstance(errors[0]["field_input"], str)
    assert api.ok("GET", f"{TG}/models/{model['id']}")["status"] == "Created"


#: Two start_training bodies Bria's spec accepts (no ``additionalProperties: false``, no rule tying
#: ``checkpoint_interval`` to the total steps) that the emulator refuses only under ``--strict-limits``.
UNSTATED_RULES = [
    ({"checkpoint_interval": 900, "total_training_steps": 800}, "checkpoint_interval", "total_training_steps"),
    ({"batch_size": 4}, "batch_size", "Extra inputs are not permitted"),
]


def _spec_oracle() -> Any:
    """Bria's OpenAPI extract (tests/contract/spec_oracle.py), loaded by path: not our contract module."""
    if "spec_oracle" in sys.modules:
        return sys.modules["spec_oracle"]
    path = Path(__file__).resolve().parents[1] / "contract" / "spec_oracle.py"
    spec = importlib.util.spec_from_file_location("spec_oracle", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def strict_emulator(start_emulator: Any) -> Any:
    emu = start_emulator(extra_args=["--strict-limits"])
    yield emu
    emu.stop()


@pytest.mark.parametrize(("params", "field", "msg"), UNSTATED_RULES)
def test_rules_bria_does_not_state_are_not_enforced_by_default(
    api: Api, images: list[bytes], params: dict, field: str, msg: str
) -> None:
    _spec_oracle().validate_request("POST", "/v1/tailored-gen/models/{model_id}/start_training", params)
    model = api.model(api.fibo_dataset(images, complete=True)["id"], training_mode="expert")
    started = api.ok("POST", f"{TG}/models/{model['id']}/start_training", json=params)
    assert started["status"] == "InProgress"
    assert field not in started["training_parameters"] or started["training_parameters"][field] == params[field]
    assert "batch_size" not in started["training_parameters"]  # an unknown key is ignored, not stored


@pytest.mark.parametrize(("params", "field", "msg"), UNSTATED_RULES)
def test_rules_bria_does_not_state_are_enforced_with_strict_limits(
    strict_emulator: Any, images: list[bytes], params: dict, field: str, msg: str
) -> None:
    api = Api(strict_emulator.url, strict_emulator.token)
    model = api.model(api.fibo_dataset(images, complete=True)["id"], training_mode="expert")
    resp = api.post(f"{TG}/models/{model['id']}/start_training", json=params)
    assert resp.status_code == 400
    errors = [e for e in resp.json()["errors"] if e["field_name"] == field]
    assert errors, resp.json()
    assert msg in errors[0]["msg"]
    assert api.ok("GET", f"{TG}/models/{model['id']}")["status"] == "Created"


def test_expert_training_checkpoints(api: Api, images: list[bytes], fast: Any) -> None:
    model = api.model(api.fibo_dataset(images, complete=True)["id"], training_mode="expert")
    mid = model["id"]
    params = {
        "total_training_steps": 1500,
        "checkpoint_interval": 500,
        "lr_scheduler": "constant",
        "learning_rate": 0.0002,
        "rank": 64,
        "max_train_steps": None,
    }
    started = api.ok("POST", f"{TG}/models/{mid}/start_training", json=params)
    assert started["training_parameters"]["lr_warmup_steps"] is None
    assert started["training_parameters"]["rank"] == 64
    resp = api.get(f"{TG}/models/{mid}/checkpoints")
    assert resp.status_code == 400
    assert resp.json() == "The model status is not completed"
    done = api.wait_model(mid, ("Completed",))
    assert done["checkpoint_steps"] == ["1500", "1000", "500"]
    assert done["active_model_version"] == "1500"
    listing = api.ok("GET", f"{TG}/models/{mid}/checkpoints")
    assert listing["active_model_version"] == "1500"
    assert [c["checkpoint_step"] for c in listing["checkpoints"]] == [1500, 1000, 500]
    assert set(listing["checkpoints"][0]) == {"checkpoint_step", "training_job_id", "created_at"}
    one = api.ok("GET", f"{TG}/models/{mid}/checkpoints/1000")
    assert one["checkpoint_step"] == 1000
    missing = api.get(f"{TG}/models/{mid}/checkpoints/1234")
    assert missing.status_code == 404
    assert missing.json() == "Checkpoint not found"
    active = api.delete(f"{TG}/models/{mid}/checkpoints/1500")
    assert active.status_code == 400
    assert active.json() == "Cannot delete checkpoint currently selected for inference"
    assert api.delete(f"{TG}/models/{mid}/checkpoints/500").status_code == 204
    assert api.ok("GET", f"{TG}/models/{mid}")["checkpoint_steps"] == ["1500", "1000"]
    assert api.get(f"{TG}/models/{mid}/checkpoints/500").status_code == 404
    unknown = api.get(f"{TG}/models/999999/checkpoints")
    assert unknown.status_code == 404
    assert unknown.json() == "Model not found"


def test_max_train_steps_alias(api: Api, images: list[bytes]) -> None:
    model = api.model(api.fibo_dataset(images, complete=True)["id"], training_mode="expert")
    started = api.ok("POST", f"{TG}/models/{model['id']}/start_training", json={"max_train_steps": 900})
    assert started["training_parameters"]["total_training_steps"] == 900
    assert "max_train_steps" not in started["training_parameters"]


def test_checkpoints_only_for_expert(api: Api, images: list[bytes], fast: Any) -> None:
    model = api.trained_model(images)
    resp = api.get(f"{TG}/models/{model['id']}/checkpoints")
    assert resp.status_code == 400
    assert "expert" in resp.json()


def test_legacy_training_fills_generation_prefix(api: Api, fast: Any) -> None:
    project = api.project(ip_type="defined_character", ip_name="Rex", ip_description="a dinosaur")
    dataset = api.legacy_dataset("max", project_id=project["id"])
    model = api.model(dataset["id"], training_mode="expert")
    started = api.ok("POST", f"{TG}/models/{model['id']}/start_training", json={"rank": 32})
    assert started["generation_prefix"] == "An illustration of Rex,"
    assert started["training_parameters"]["total_training_steps"] == 1500
    assert started["training_parameters"]["lr_scheduler"] == "constant"
    assert started["training_parameters"]["lr_warmup_steps"] is None
    assert api.wait_model(model["id"], ("Completed",))["checkpoint_steps"] == ["1500", "1000", "500"]


def test_stop_training(api: Api, images: list[bytes]) -> None:
    model = api.model(api.fibo_dataset(images, complete=True)["id"])
    mid = model["id"]
    not_training = api.post(f"{TG}/models/{mid}/stop_training")
    assert not_training.status_code == 409
    message_shape(not_training.json())
    api.ok("POST", f"{TG}/models/{mid}/start_training", json={})
    stopping = api.ok("POST", f"{TG}/models/{mid}/stop_training")
    assert stopping["status"] == "Stopping"
    assert api.delete(f"{TG}/models/{mid}").status_code == 409  # still stopping
    assert api.wait_model(mid, ("Stopped",))["status"] == "Stopped"
    assert api.post(f"{TG}/models/{mid}/stop_training").status_code == 409
    assert api.post(f"{TG}/models/{mid}/start_training", json={}).status_code == 409  # cannot resume
    assert api.delete(f"{TG}/models/{mid}").status_code == 204


def test_delete_model(api: Api, images: list[bytes]) -> None:
    model = api.model(api.fibo_dataset(images, complete=True)["id"])
    api.ok("POST", f"{TG}/models/{model['id']}/start_training", json={})
    resp = api.delete(f"{TG}/models/{model['id']}")
    assert resp.status_code == 409
    assert resp.json() == {"message": "Cannot delete model while it is in training"}
    api.session.post(f"{api.url}/_emulator/models/{model['id']}/status", json={"status": "Failed"}, timeout=10)
    assert api.delete(f"{TG}/models/{model['id']}").status_code == 204
    # a soft delete ("Changes status to Deleted", the spec's model block): it reads back as Deleted
    assert api.ok("GET", f"{TG}/models/{model['id']}")["status"] == "Deleted"
    assert [m["status"] for m in api.ok("GET", f"{TG}/models")] == ["Deleted"]
    assert api.delete(f"{TG}/models/{model['id']}").status_code == 404
    assert api.post(f"{TG}/models/{model['id']}/start_training", json={}).status_code == 404
    gen = api.post("/v2/image/generate/tailored", json={"tailored_model_id": str(model["id"]), "prompt": "x"})
    assert gen.status_code == 403


def test_admin_forces_failed(api: Api, images: list[bytes], emulator: Any) -> None:
    model = api.model(api.fibo_dataset(images, complete=True)["id"])
    api.ok("POST", f"{TG}/models/{model['id']}/start_training", json={})
    assert emulator.set_model_status(model["id"], "Failed") == {"id": model["id"], "status": "Failed"}
    time.sleep(0.05)
    assert api.ok("GET", f"{TG}/models/{model['id']}")["status"] == "Failed"
    resp = api.session.post(f"{api.url}/_emulator/models/{model['id']}/status", json={"status": "Exploded"}, timeout=10)
    assert resp.status_code == 400
    assert (
        api.session.post(f"{api.url}/_emulator/models/999999/status", json={"status": "Failed"}, timeout=10).status_code
        == 404
    )


def test_download_model(api: Api, images: list[bytes], fast: Any) -> None:
    created = api.model(api.fibo_dataset(images, complete=True)["id"])
    resp = api.get(f"{TG}/models/{created['id']}/download")
    assert resp.status_code == 400
    message_shape(resp.json())
    model = api.trained_model(images)
    body = api.ok("GET", f"{TG}/models/{model['id']}/download")
    assert body["base_model_name"] == "BRIA-FIBO"
    assert body["base_model_card"] == "https://huggingface.co/briaai/BRIA-FIBO"
    weights = api.session.get(body["download_url"], timeout=10).content
    (length,) = struct.unpack("<Q", weights[:8])
    header = json.loads(weights[8 : 8 + length])
    assert header["__metadata__"]["model_id"] == str(model["id"])
    assert len(weights) == 8 + length


def test_upload_model(api: Api, fast: Any) -> None:
    body = api.ok(
        "POST",
        f"{TG}/models/upload_model",
        json={
            "model_url": "https://example.com/lora.safetensors",
            "model_name": "Imported",
            "project_parameters": {"project_name": "Imported project", "ip_medium": "illustration"},
        },
    )
    assert body["status"] == "syncing"
    assert body["name"] == "Imported"
    assert "dataset_id" not in body  # no dataset; the spec types dataset_id as an integer
    project = api.ok("GET", f"{TG}/projects/{body['project_id']}")
    assert project["ip_type"] == "other"
    assert api.wait_model(body["id"], ("completed",))["status"] == "completed"
    existing = api.ok(
        "POST",
        f"{TG}/models/upload_model",
        json={"model_url": "https://example.com/b.safetensors", "project_id": project["id"]},
    )
    assert existing["project_id"] == project["id"]
    assert existing["name"] == "b.safetensors"


@pytest.mark.parametrize("ip_type", ["defined_character", "object_variants"])
def test_upload_model_project_parameters_take_the_documented_keys(api: Api, ip_type: str) -> None:
    """The spec's project_parameters has no ip_name/ip_description: these types must not need them here."""
    params = {
        "project_name": "Imported",
        "ip_medium": "illustration",
        "project_description": "from elsewhere",
        "ip_type": ip_type,
    }
    body = api.ok(
        "POST",
        f"{TG}/models/upload_model",
        json={"model_url": "https://example.com/c.safetensors", "project_parameters": params},
    )
    project = api.ok("GET", f"{TG}/projects/{body['project_id']}")
    assert {k: project[k] for k in params} == params


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model_url": "https://example.com/model.ckpt", "project_id": "PID"}, 415),
        ({"model_url": "s3://bucket/model.safetensors", "project_id": "PID"}, 422),
        ({"model_url": "https://example.com/model.safetensors"}, 400),
        ({"project_id": "PID"}, 400),
        ({"model_url": "https://example.com/m.safetensors", "project_id": 999999}, 404),
        ({"model_url": "https://example.com/m.safetensors", "project_parameters": {"project_name": "p"}}, 400),
    ],
)
def test_upload_model_errors(api: Api, body: dict, status: int) -> None:
    project = api.project()
    body = {k: project["id"] if v == "PID" else v for k, v in body.items()}
    resp = api.post(f"{TG}/models/upload_model", json=body)
    assert resp.status_code == status
    message_shape(resp.json())
