"""Bria's OpenAPI (the committed extract) judges what the hook sends and how it reads what Bria documents.

* One row per hook method (and per optional field): the request is captured with requests-mock and its
  operation, path parameters, query parameters and JSON body are validated against the operation in the
  extract (types, enums, ranges, required fields). A key the spec does not document may appear only when
  the row's user set it on purpose (``off_spec``): nothing outside the spec is ever sent by default.
* Every documented response example is served back for its operation and must parse, with the hook's own
  parsers, into the right result (2xx) or the right exception carrying Bria's message (4xx).

Nothing here imports :mod:`airflow_provider_bria.contract`: the oracle is ``spec_oracle`` over Bria's files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import pytest
import requests_mock as rm
import spec_oracle as spec

BASE = "https://bria.test"
TOKEN = "contract-test-token-51c0"
TG = "/v1/tailored-gen"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
SP = json.dumps({"short_description": "a red fox", "style": "flat"})
URLS = [f"https://cdn.example/{i}.png" for i in range(10)]
#: Bria's own create-project example (the seed text and the spec): a 3-word ip_name, a 9-word description.
BRIA_PROJECT_EXAMPLE = {
    "project_name": "Branded Character",
    "ip_name": "Adventure Series Characters",
    "ip_description": "A set of adventure game characters with unique personalities",
    "ip_medium": "illustration",
    "ip_type": "defined_character",
}


@dataclass(frozen=True)
class Row:
    """One hook call and the documented operation it must hit.

    :param id: test id.
    :param call: the hook call.
    :param method: documented HTTP method.
    :param template: documented path template.
    :param off_spec: undocumented body keys this call sets because the user asked for them.
    """

    id: str
    call: Callable[[Any], Any]
    method: str
    template: str
    off_spec: frozenset[str] = field(default_factory=frozenset)


def _r(id: str, call: Callable[[Any], Any], method: str, template: str, *off_spec: str) -> Row:
    return Row(id, call, method, template, frozenset(off_spec))


ROWS: list[Row] = [
    # projects
    _r("create_project", lambda h: h.create_project("p", "photography", "stylized_scene"), "POST", f"{TG}/projects"),
    _r("create_project_all_fields", lambda h: h.create_project(
        "p", "illustration", "defined_character", project_description="d", ip_name="Lora",
        ip_description="a girl with purple hair"), "POST", f"{TG}/projects"),
    _r("create_project_bria_example", lambda h: h.create_project(
        BRIA_PROJECT_EXAMPLE["project_name"], BRIA_PROJECT_EXAMPLE["ip_medium"], BRIA_PROJECT_EXAMPLE["ip_type"],
        ip_name=BRIA_PROJECT_EXAMPLE["ip_name"], ip_description=BRIA_PROJECT_EXAMPLE["ip_description"]),
       "POST", f"{TG}/projects"),
    _r("create_project_training_version", lambda h: h.create_project("p", "photography", "other",
                                                                      training_version="fibo"),
       "POST", f"{TG}/projects", "training_version"),
    _r("list_projects", lambda h: h.list_projects(), "GET", f"{TG}/projects"),
    _r("get_project", lambda h: h.get_project(123), "GET", f"{TG}/projects/{{project_id}}"),
    _r("update_project", lambda h: h.update_project(
        123, project_name="n", project_description="d", ip_name="Lora Bell", ip_description="a girl"),
       "PUT", f"{TG}/projects/{{project_id}}"),
    _r("delete_project", lambda h: h.delete_project(123), "DELETE", f"{TG}/projects/{{project_id}}"),
    # datasets
    _r("create_dataset", lambda h: h.create_dataset(123, "dataset v1"), "POST", f"{TG}/datasets"),
    _r("create_dataset_advanced", lambda h: h.create_dataset(123, "d", upload_type="advanced"),
       "POST", f"{TG}/datasets"),
    _r("create_dataset_training_version", lambda h: h.create_dataset(123, "d", training_version="bria-3.2"),
       "POST", f"{TG}/datasets", "training_version"),
    _r("list_datasets", lambda h: h.list_datasets(), "GET", f"{TG}/datasets"),
    _r("list_project_datasets", lambda h: h.list_project_datasets(123, include_models=True,
                                                                  include_models_ids=True),
       "GET", f"{TG}/projects/{{project_id}}/datasets"),
    _r("get_dataset", lambda h: h.get_dataset(456, max_images=200), "GET", f"{TG}/datasets/{{dataset_id}}"),
    _r("update_dataset", lambda h: h.update_dataset(456, name="n", visual_schema={"style": "flat"},
                                                    status="completed"),
       "PUT", f"{TG}/datasets/{{dataset_id}}"),
    _r("update_dataset_caption_prefix", lambda h: h.update_dataset(456, caption_prefix="A photo of"),
       "PUT", f"{TG}/datasets/{{dataset_id}}", "caption_prefix"),
    _r("delete_dataset", lambda h: h.delete_dataset(456), "DELETE", f"{TG}/datasets/{{dataset_id}}"),
    _r("clone_dataset", lambda h: h.clone_dataset(456, name="copy", description="d"),
       "POST", f"{TG}/datasets/{{dataset_id}}/clone"),
    _r("download_dataset", lambda h: h.download_dataset(456), "GET", "/v1/datasets/{dataset_id}/download"),
    # images
    _r("upload_image_file", lambda h: h.upload_image(456, file=PNG, image_name="a.png", increase_resolution=True,
                                                     content_moderation=False),
       "POST", f"{TG}/datasets/{{dataset_id}}/images"),
    _r("upload_image_url", lambda h: h.upload_image(456, image_url=URLS[0]),
       "POST", f"{TG}/datasets/{{dataset_id}}/images"),
    _r("list_images", lambda h: h.list_images(456), "GET", f"{TG}/datasets/{{dataset_id}}/images"),
    _r("get_image", lambda h: h.get_image(456, 9), "GET", f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}"),
    _r("update_image_caption", lambda h: h.update_image_caption(456, 9, {"subject": "fox"}),
       "PUT", f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}"),
    _r("regenerate_image_caption", lambda h: h.regenerate_image_caption(456, 9),
       "PUT", f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}"),
    _r("delete_image", lambda h: h.delete_image(456, 9), "DELETE",
       f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}"),
    _r("regenerate_all_captions", lambda h: h.regenerate_all_captions(456), "PUT",
       f"{TG}/datasets/{{dataset_id}}/images"),
    _r("bulk_upload", lambda h: h.bulk_upload(456, "https://cdn.example/set.zip", content_moderation=True),
       "POST", f"{TG}/datasets/{{dataset_id}}/images/bulk-upload"),
    _r("bulk_upload_automatic_captioning", lambda h: h.bulk_upload(456, "https://cdn.example/set.zip",
                                                                   automatic_captioning=False),
       "POST", f"{TG}/datasets/{{dataset_id}}/images/bulk-upload", "automatic_captioning"),
    _r("get_bulk_upload_status", lambda h: h.get_bulk_upload_status(456),
       "GET", f"{TG}/datasets/{{dataset_id}}/images/bulk-upload/status"),
    # helpers
    _r("generate_visual_schema_urls", lambda h: h.generate_visual_schema(URLS[:5], content_moderation=True),
       "POST", f"{TG}/generate_visual_schema"),
    _r("generate_visual_schema_files", lambda h: h.generate_visual_schema([PNG] * 5),
       "POST", f"{TG}/generate_visual_schema"),
    _r("refine_structured_prompt", lambda h: h.refine_structured_prompt(456, SP, "Character's name is Lucy",
                                                                        context_images=URLS[:2]),
       "POST", f"{TG}/refine_structured_prompt"),
    # models
    _r("create_model", lambda h: h.create_model(456, "Lora Character Model", training_mode="expert",
                                                description="d"),
       "POST", f"{TG}/models"),
    _r("create_model_training_version", lambda h: h.create_model(456, "m", training_version="fibo"),
       "POST", f"{TG}/models", "training_version"),
    _r("list_models", lambda h: h.list_models(include_training_parameters=True), "GET", f"{TG}/models"),
    _r("list_project_models", lambda h: h.list_project_models(123, include_training_parameters=True),
       "GET", f"{TG}/projects/{{project_id}}/models"),
    _r("get_model", lambda h: h.get_model(789), "GET", f"{TG}/models/{{model_id}}"),
    _r("update_model", lambda h: h.update_model(789, name="n", description="d"), "PUT", f"{TG}/models/{{model_id}}"),
    _r("delete_model", lambda h: h.delete_model(789), "DELETE", f"{TG}/models/{{model_id}}"),
    _r("start_training_automatic", lambda h: h.start_training(789), "POST",
       f"{TG}/models/{{model_id}}/start_training"),
    _r("start_training_expert", lambda h: h.start_training(789, {
        "learning_rate": 0.0001, "total_training_steps": 750, "rank": 128, "checkpoint_interval": 500,
        "lr_warmup_steps": 100, "lr_scheduler": "constant_with_warmup"}),
       "POST", f"{TG}/models/{{model_id}}/start_training"),
    _r("start_training_unknown_key", lambda h: h.start_training(789, {"rank": 64, "batch_size": 4}),
       "POST", f"{TG}/models/{{model_id}}/start_training", "batch_size"),
    _r("stop_training", lambda h: h.stop_training(789), "POST", f"{TG}/models/{{model_id}}/stop_training"),
    _r("list_checkpoints", lambda h: h.list_checkpoints(789), "GET", f"{TG}/models/{{model_id}}/checkpoints"),
    _r("get_checkpoint", lambda h: h.get_checkpoint(789, 100), "GET",
       f"{TG}/models/{{model_id}}/checkpoints/{{checkpoint_step}}"),
    _r("delete_checkpoint", lambda h: h.delete_checkpoint(789, 100), "DELETE",
       f"{TG}/models/{{model_id}}/checkpoints/{{checkpoint_step}}"),
    _r("download_model", lambda h: h.download_model(789), "GET", f"{TG}/models/{{model_id}}/download"),
    _r("upload_model_project", lambda h: h.upload_model("https://cdn.example/m.safetensors", model_name="m",
                                                        project_id=123),
       "POST", f"{TG}/models/upload_model"),
    _r("upload_model_new_project", lambda h: h.upload_model(
        "https://cdn.example/m.safetensors", project_parameters={
            "project_name": "p", "ip_medium": "photography", "project_description": "d", "ip_type": "other"}),
       "POST", f"{TG}/models/upload_model"),
    # generation (v2) and status
    _r("generate_image", lambda h: h.generate_image(789, prompt="a fox"), "POST", "/v2/image/generate/tailored"),
    _r("generate_image_all_fields", lambda h: h.generate_image(
        "model_123", prompt="a fox", negative_prompt="blur", tailored_model_influence=1.5, guidance_scale=3,
        aspect_ratio="16:9", steps_num=20, seed=-7, sync=True, prompt_content_moderation=False,
        visual_output_content_moderation=False), "POST", "/v2/image/generate/tailored"),
    _r("generate_image_recreate", lambda h: h.generate_image(789, structured_prompt=SP, seed=42),
       "POST", "/v2/image/generate/tailored"),
    _r("generate_image_refine", lambda h: h.generate_image(789, prompt="make it blue", structured_prompt=SP),
       "POST", "/v2/image/generate/tailored"),
    _r("generate_image_webhook", lambda h: h.generate_image(789, prompt="a fox", webhook_url="https://hook.example/x"),
       "POST", "/v2/image/generate/tailored", "webhook_url"),
    _r("generate_structured_prompt", lambda h: h.generate_structured_prompt(
        789, prompt="a fox", structured_prompt=SP, seed=3, sync=True, prompt_content_moderation=True),
       "POST", "/v2/structured_prompt/generate/tailored"),
    _r("image_to_video", lambda h: h.image_to_video(789, URLS[0], seed=5), "POST",
       "/v2/video/generate/tailored/image-to-video"),
    _r("image_to_video_bytes", lambda h: h.image_to_video(789, PNG), "POST",
       "/v2/video/generate/tailored/image-to-video"),
    _r("get_status", lambda h: h.get_status("123456"), "GET", "/v2/status/{request_id}"),
]


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A hook on a fake host; retries record their waits instead of sleeping."""
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", json.dumps(
        {"conn_type": "bria", "host": BASE, "password": TOKEN}))
    from airflow_provider_bria.hooks.bria import BriaHook

    h = BriaHook(retry_limit=0)
    yield h
    h.close()


def _documented_keys(schema: dict[str, Any] | None) -> set[str]:
    if not schema:
        return set()
    keys = set(schema.get("properties", {}))
    for combiner in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(combiner, []):
            keys |= _documented_keys(sub)
    return keys


def _parameters(method: str, template: str, where: str) -> dict[str, dict[str, Any]]:
    operation = spec.load_extract()["paths"][template][method.lower()]
    return {p["name"]: p for p in operation.get("parameters", []) if p.get("in") == where}


def _typed(text: str, schema: dict[str, Any]) -> Any:
    """A path or query string value as the JSON type its schema declares (so the schema can judge it)."""
    kind = schema.get("type")
    if kind == "integer":
        return int(text) if text.lstrip("-").isdigit() else text
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    return text


def _check_parameters(method: str, template: str, path: str, query: dict[str, list[str]]) -> None:
    names = [segment[1:-1] for segment in template.split("/") if segment.startswith("{")]
    values = [seg for seg, tmpl in zip(path.split("/"), template.split("/"), strict=True) if tmpl.startswith("{")]
    documented_path = _parameters(method, template, "path")
    for name, value in zip(names, values, strict=True):
        schema = spec.to_json_schema(documented_path[name].get("schema", {}))
        jsonschema.validate(_typed(value, schema), schema)
    documented_query = _parameters(method, template, "query")
    assert set(query) <= set(documented_query), f"undocumented query parameters {set(query) - set(documented_query)}"
    for name, values_ in query.items():
        schema = spec.to_json_schema(documented_query[name].get("schema", {}))
        for value in values_:
            jsonschema.validate(_typed(value, schema), schema)


def _serve_anything(api: rm.Mocker) -> None:
    api.register_uri(rm.ANY, rm.ANY, status_code=200, json={
        "request_id": "r1", "status": "IN_PROGRESS", "visual_schema": SP, "structured_prompt": SP, "prefix": "A"})


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_every_request_the_hook_sends_matches_bria_spec(hook: Any, row: Row) -> None:
    with rm.Mocker() as api:
        _serve_anything(api)
        row.call(hook)
        request = api.request_history[0]
    path = request.path
    template = spec.match_path(request.method, path)
    assert (request.method, template) == (row.method, row.template)
    _check_parameters(request.method, template, path, request.qs)
    assert request.headers["api_token"] == TOKEN  # the spec's only auth: the api_token header
    if spec.request_schema(request.method, template) is None and not request.body:
        return
    assert request.headers["Content-Type"] == spec.JSON
    body = request.json()
    sent_off_spec = set(body) - _documented_keys(spec.request_schema(request.method, template))
    assert sent_off_spec == set(row.off_spec), "only fields the user set may go beyond the spec"
    spec.validate_request(request.method, template, {k: v for k, v in body.items() if k not in row.off_spec})


def test_every_documented_operation_has_a_row() -> None:
    covered = {(r.method, r.template) for r in ROWS}
    assert set(spec.operations()) - covered == set()


def test_multipart_upload_is_an_opt_in_outside_the_spec(hook: Any) -> None:
    """The spec declares upload-image as JSON; multipart (connection extra upload_encoding) is not documented."""
    with rm.Mocker() as api:
        _serve_anything(api)
        hook.upload_image(456, file=PNG, image_name="a.png", encoding="multipart")
        request = api.request_history[0]
    template = spec.match_path("POST", request.path)
    media = request.headers["Content-Type"].split(";")[0]
    assert media == "multipart/form-data"
    with pytest.raises(spec.SpecViolation, match="media type multipart/form-data not documented"):
        spec.validate_request("POST", template, {"file": "..."}, media=media)


@pytest.mark.parametrize(("call", "path"), [
    (lambda h: h.generate_prefix(ip_type="stylized_scene", ip_medium="photography", image_urls=URLS[:2]),
     f"{TG}/generate_prefix"),
    (lambda h: h.text_to_image_legacy(789, "a fox"), "/v1/text-to-image/tailored/789"),
])
def test_legacy_calls_are_outside_the_fibo_only_spec(hook: Any, call: Callable[[Any], Any], path: str) -> None:
    """Legacy endpoints come from Bria's older pages (docs/api-choices.md): the current spec has none."""
    with rm.Mocker() as api:
        _serve_anything(api)
        call(hook)
        assert api.request_history[0].path == path
    with pytest.raises(spec.SpecViolation, match="not a documented operation"):
        spec.match_path("POST", path)


# ---------------------------------------------------------------- documented response examples


def _first_row(method: str, template: str) -> Row:
    return next(r for r in ROWS if (r.method, r.template) == (method, template))


EXAMPLES = [
    (method, template, status, value)
    for method, template in spec.operations()
    for status, media, value in spec.examples(method, template)
    if status != "request" and media == spec.JSON
]


def _mock(api: rm.Mocker, method: str, template: str, status: int, body: Any) -> None:
    import re

    pattern = re.compile("^" + re.escape(BASE) + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + r"(\?.*)?$")
    api.register_uri(method, pattern, status_code=status, json=body)


def _expected_exception(status: int) -> type[Exception]:
    from airflow_provider_bria import exceptions as exc

    return {400: exc.BriaValidationError, 401: exc.BriaAuthError, 403: exc.BriaAuthError,
            404: exc.BriaNotFoundError, 409: exc.BriaConflictError, 500: exc.BriaServerError}[status]


def _message_of(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body.get("error"), dict):
        return str(body["error"]["message"])
    return str(body.get("message") or body.get("error"))


@pytest.mark.parametrize(("method", "template", "status", "body"), EXAMPLES,
                         ids=[f"{m} {t} {s} #{i}" for i, (m, t, s, _) in enumerate(EXAMPLES)])
def test_every_documented_response_example_parses(hook: Any, method: str, template: str, status: str,
                                                  body: Any) -> None:
    from airflow_provider_bria.contract import JobStatus
    from airflow_provider_bria.responses import V2Response

    code = 500 if status == "5XX" else int(status)
    row = _first_row(method, template)
    with rm.Mocker() as api:
        _mock(api, method, template, code, body)
        if code >= 400 and not (template == "/v2/status/{request_id}" and code == 404):
            with pytest.raises(_expected_exception(code)) as info:
                row.call(hook)
            assert _message_of(body) in str(info.value)
            return
        result = row.call(hook)
    if isinstance(result, V2Response):
        assert result.status is JobStatus.parse(body.get("status")) if "status" in body else result.is_completed
        if result.status is JobStatus.NOT_FOUND:
            assert result.is_terminal
            assert result.is_failure
            return
        assert result.request_id == body["request_id"]
        expected = body.get("result") or {}
        assert result.image_url == expected.get("image_url")
        assert result.video_url == expected.get("video_url")
        if isinstance(expected.get("structured_prompt"), str):
            assert result.structured_prompt == expected["structured_prompt"]
        if "seed" in expected:
            assert result.seed == int(expected["seed"])
        if body.get("status") == "ERROR":
            assert result.is_failure
            assert body["error"]["message"] in result.error_message
        return
    if isinstance(result, str):  # generate_visual_schema returns the schema text
        assert result == body["visual_schema"]
    elif result is None:
        assert method in ("DELETE", "POST")
    else:
        assert result == body


def test_bria_example_project_is_accepted_by_hook_and_emulator(bria_conn: Any) -> None:
    """The seed's own create-project example (a 9-word ip_description) goes through, with no error."""
    from airflow_provider_bria.hooks.bria import BriaHook

    with BriaHook(retry_limit=0) as hook:
        project = hook.create_project(
            BRIA_PROJECT_EXAMPLE["project_name"], BRIA_PROJECT_EXAMPLE["ip_medium"], BRIA_PROJECT_EXAMPLE["ip_type"],
            ip_name=BRIA_PROJECT_EXAMPLE["ip_name"], ip_description=BRIA_PROJECT_EXAMPLE["ip_description"])
    assert project["ip_description"] == BRIA_PROJECT_EXAMPLE["ip_description"]
    spec.validate_response("POST", f"{TG}/projects", 201, project)
