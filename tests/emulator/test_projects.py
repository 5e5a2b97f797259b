"""Contract tests, raw HTTP: projects (§3), including every validation rule and error shape."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_helpers import TG, Api, message_shape

PROJECT_FIELDS = {
    "id",
    "project_name",
    "project_description",
    "ip_name",
    "ip_description",
    "ip_medium",
    "ip_type",
    "training_version",
    "status",
    "created_at",
    "updated_at",
}


def test_create_returns_201_with_documented_fields(api: Api) -> None:
    body = api.ok(
        "POST",
        f"{TG}/projects",
        201,
        json={
            "project_name": "Branded Character",
            "ip_medium": "illustration",
            "ip_type": "defined_character",
            "ip_name": "Lora",
            "ip_description": "A female character with purple hair",
            "training_version": "fibo",
        },
    )
    assert set(body) == PROJECT_FIELDS
    assert isinstance(body["id"], int)
    assert body["status"] == "active"
    assert body["training_version"] == "fibo"
    assert body["ip_name"] == "Lora"
    assert body["project_description"] == ""
    assert api.ok("GET", f"{TG}/projects/{body['id']}") == body


def test_list_get_update_delete(api: Api) -> None:
    assert api.ok("GET", f"{TG}/projects") == []
    first = api.project(project_name="one")
    second = api.project(project_name="two")
    assert [p["id"] for p in api.ok("GET", f"{TG}/projects")] == [first["id"], second["id"]]
    updated = api.ok(
        "PUT", f"{TG}/projects/{first['id']}", json={"project_name": "renamed", "project_description": "desc"}
    )
    assert updated["project_name"] == "renamed"
    assert updated["project_description"] == "desc"
    assert updated["ip_type"] == first["ip_type"]
    assert api.ok("GET", f"{TG}/projects/{first['id']}")["project_name"] == "renamed"
    resp = api.delete(f"{TG}/projects/{first['id']}")
    assert resp.status_code == 204
    assert resp.content == b""
    missing = api.get(f"{TG}/projects/{first['id']}")
    assert missing.status_code == 404
    assert "not found" in message_shape(missing.json()).lower()
    assert [p["id"] for p in api.ok("GET", f"{TG}/projects")] == [second["id"]]


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"ip_medium": "photography", "ip_type": "icons"}, "only available with ip_medium 'illustration'"),
        ({"ip_medium": "photography", "ip_type": "object_variants", "ip_description": "a mug"}, "illustration"),
        ({"ip_medium": "photography", "ip_type": "multi_object_set"}, "illustration"),
        ({"ip_medium": "photography", "ip_type": "character_variants"}, "illustration"),
        ({"ip_type": "defined_character", "ip_description": "a girl"}, "ip_name is required"),
        ({"ip_type": "defined_character", "ip_name": "Lora"}, "ip_description is required"),
        ({"ip_type": "object_variants"}, "ip_description is required"),
        ({"ip_type": "nonsense"}, "Invalid ip_type"),
        ({"ip_medium": "video"}, "Invalid ip_medium"),
        ({"project_name": ""}, "project_name"),
        ({"project_name": None}, "project_name"),
        ({"training_version": "sdxl"}, "Unknown training_version"),
        ({"project_name": 5}, "must be a string"),
    ],
)
def test_create_validation_400(api: Api, fields: dict[str, Any], fragment: str) -> None:
    body = {"project_name": "p", "ip_medium": "illustration", "ip_type": "stylized_scene", **fields}
    resp = api.post(f"{TG}/projects", json=body)
    assert resp.status_code == 400
    assert fragment in message_shape(resp.json())
    assert api.ok("GET", f"{TG}/projects") == []


def test_valid_edge_cases_accepted(api: Api) -> None:
    api.project(ip_medium="photography", ip_type="stylized_scene")
    api.project(
        ip_medium="photography",
        ip_type="defined_character",
        ip_name="Big Red Dog",
        ip_description="one two three four five six",
    )
    api.project(ip_medium="illustration", ip_type="object_variants", ip_description="a blue mug")
    assert len(api.ok("GET", f"{TG}/projects")) == 3


@pytest.mark.parametrize(
    ("given", "stored"), [("fibo", "fibo"), ("max", "max"), ("bria-3.2", "3.2"), ("2.3", "2.3"), ("light", "light")]
)
def test_training_version_spellings(api: Api, given: str, stored: str) -> None:
    assert api.project(training_version=given)["training_version"] == stored


# Bria's own example (seed, create project): a 9-word ip_description, beyond the "up to 6 words" guidance
SEED_EXAMPLE = {
    "project_name": "Adventure Series",
    "ip_name": "Adventure Series Characters",
    "ip_description": "A set of adventure game characters with unique personalities",
    "ip_medium": "illustration",
    "ip_type": "defined_character",
}


def test_word_count_guidance_is_not_a_rule_by_default(api: Api) -> None:
    assert len(SEED_EXAMPLE["ip_description"].split()) == 9
    created = api.ok("POST", f"{TG}/projects", 201, json=SEED_EXAMPLE)
    assert created["ip_description"] == SEED_EXAMPLE["ip_description"]
    resp = api.put(f"{TG}/projects/{created['id']}", json={"ip_name": "one two three four"})
    assert resp.status_code == 200


@pytest.fixture(scope="module")
def strict_emulator(start_emulator: Any) -> Any:
    emu = start_emulator(extra_args=["--strict-limits"])
    yield emu
    emu.stop()


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"ip_name": "Lora The Great Explorer"}, "1-3 words"),
        ({"ip_description": "one two three four five six seven"}, "at most 6 words"),
        ({}, "at most 6 words"),  # the seed example itself
    ],
)
def test_word_limits_with_strict_limits(strict_emulator: Any, fields: dict[str, Any], fragment: str) -> None:
    resp = Api(strict_emulator.url, strict_emulator.token).post(f"{TG}/projects", json={**SEED_EXAMPLE, **fields})
    assert resp.status_code == 400
    assert fragment in message_shape(resp.json())


def test_update_rules(api: Api) -> None:
    project = api.project(ip_type="defined_character", ip_name="Lora", ip_description="a girl")
    pid = project["id"]
    for field, value in (("ip_medium", "photography"), ("ip_type", "other"), ("training_version", "fibo")):
        resp = api.put(f"{TG}/projects/{pid}", json={field: value})
        assert resp.status_code == 400
        assert "cannot be updated" in message_shape(resp.json())
    resp = api.put(f"{TG}/projects/{pid}", json={"ip_name": ""})
    assert resp.status_code == 400
    assert "ip_name is required" in message_shape(resp.json())
    assert api.ok("GET", f"{TG}/projects/{pid}") == project
    assert api.put(f"{TG}/projects/999999", json={"project_name": "x"}).status_code == 404
    json_type = {"Content-Type": "application/json"}
    assert api.put(f"{TG}/projects/{pid}", data="not json", headers=json_type).status_code == 400
    assert api.put(f"{TG}/projects/{pid}", data='{"project_name": "x"}').status_code == 415  # no Content-Type


def test_unknown_and_malformed_ids_are_404(api: Api) -> None:
    for path in ("/projects/424242", "/projects/abc"):
        resp = api.get(TG + path)
        assert resp.status_code == 404
        message_shape(resp.json())
    assert api.delete(f"{TG}/projects/424242").status_code == 404


def test_delete_cascades_to_datasets_images_models(api: Api, images: list[bytes]) -> None:
    dataset = api.fibo_dataset(images, complete=True)
    model = api.model(dataset["id"])
    api.delete(f"{TG}/projects/{dataset['project_id']}")
    assert api.get(f"{TG}/datasets/{dataset['id']}").status_code == 404
    assert api.get(f"{TG}/models/{model['id']}").status_code == 404
    image_url = dataset["images"][0]["image_url"]
    assert api.session.get(image_url, timeout=10).status_code == 404


def test_delete_409_while_training(api: Api, images: list[bytes]) -> None:
    dataset = api.fibo_dataset(images, complete=True)
    model = api.model(dataset["id"])
    api.ok("POST", f"{TG}/models/{model['id']}/start_training", json={})
    resp = api.delete(f"{TG}/projects/{dataset['project_id']}")
    assert resp.status_code == 409
    assert message_shape(resp.json()) == "Cannot delete project while models are in training"
    assert api.get(f"{TG}/projects/{dataset['project_id']}").status_code == 200
