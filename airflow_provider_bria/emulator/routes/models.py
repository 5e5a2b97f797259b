"""Models and training (contract §6): create, list, get, update, delete, start/stop training, checkpoints,
download, upload_model. Training advances with the clock (see :mod:`airflow_provider_bria.emulator.views`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from airflow_provider_bria.contract import (
    EXPERT_ONLY_MESSAGE,
    FIBO_DEFAULT_TRAINING_PARAMETERS,
    LEGACY_DEFAULT_TRAINING_PARAMETERS,
    DatasetStatus,
    LrScheduler,
    ModelStatus,
    Paths,
    TrainingFamily,
    TrainingMode,
    all_values,
    canonical_training_version,
    expert_parameter_errors,
    model_training_version,
    training_family,
)
from airflow_provider_bria.emulator import errors
from airflow_provider_bria.emulator.fastpath import model_reply
from airflow_provider_bria.emulator.routes._common import (
    base_url,
    get_int,
    get_str,
    input_error,
    json_body,
    parse_id,
    query_bool,
    respond,
    runtime,
    v1_error,
)
from airflow_provider_bria.emulator.spec_rules import (
    MODEL_DELETED,
    UPLOAD_DEFAULT_IP_TYPE,
    UPLOAD_PROJECT_PARAMETER_KEYS,
    upload_project_errors,
)
from airflow_provider_bria.emulator.store import Tx
from airflow_provider_bria.emulator.views import (
    checkpoint_plan,
    file_url,
    is_training,
    iso,
    model_view,
    now,
    resolve_model,
    unguessable,
)
from airflow_provider_bria.exceptions import BriaInputError

router = APIRouter()

_BASE_MODELS = {
    "fibo": ("BRIA-FIBO", "https://huggingface.co/briaai/BRIA-FIBO"),
    "3.2": ("BRIA-3.2", "https://huggingface.co/briaai/BRIA-3.2"),
    "max": ("BRIA-3.2", "https://huggingface.co/briaai/BRIA-3.2"),
    "2.3": ("BRIA-2.3", "https://huggingface.co/briaai/BRIA-2.3"),
    "light": ("BRIA-2.3", "https://huggingface.co/briaai/BRIA-2.3"),
}


def load_model(tx: Tx, model_id: int, *, bare: bool = False) -> dict[str, Any]:
    """A model (transitions applied) or a 404.

    :param tx: the store transaction.
    :param model_id: the id.
    :param bare: answer with a bare-string body (checkpoint endpoints).
    """
    doc = tx.get("models", model_id)
    if doc is None or doc["status"] == MODEL_DELETED:  # a soft-deleted model only reads back (GET)
        raise errors.bare(404, "Model not found") if bare else v1_error(404, "Model not found")
    return resolve_model(doc)


def stop_seconds(training_seconds: float) -> float:
    """How long a model stays ``Stopping``.

    :param training_seconds: the configured training duration.
    """
    return min(1.0, training_seconds / 10)


@router.post(Paths.MODELS)
async def create_model(request: Request) -> Response:
    """``POST /v1/tailored-gen/models`` -> 201 model in ``Created``.

    :param request: the HTTP request.
    """
    body = await json_body(request)
    name = get_str(body, "name", required=True)
    dataset_id = get_int(body, "dataset_id", required=True)
    mode = get_str(body, "training_mode") or TrainingMode.FULLY_AUTOMATED.value
    if mode not in all_values(TrainingMode):
        raise v1_error(400, f"Invalid training_mode {mode!r}; expected one of: fully_automated, expert")
    description = get_str(body, "description")
    requested = get_str(body, "training_version")
    try:
        version = canonical_training_version(requested) if requested else None
    except BriaInputError as exc:
        raise input_error(exc) from None
    stamp = iso()
    with runtime(request).store.tx() as tx:
        dataset = tx.get("datasets", dataset_id)
        if dataset is None:
            raise v1_error(404, "Dataset not found")
        if dataset["status"] != DatasetStatus.COMPLETED.value:
            raise v1_error(400, "A model can only be created on a completed dataset")
        if version is not None and training_family(version) is not training_family(dataset["training_version"]):
            raise v1_error(
                400,
                f"training_version {requested!r} does not match the dataset's "
                f"{dataset['training_version']!r} family; FIBO and legacy cannot be mixed",
            )
        version = version or dataset["training_version"]
        fibo = training_family(version) is TrainingFamily.FIBO
        doc = {
            "id": tx.next_id("models"),
            "name": name,
            "description": description or "",
            "status": ModelStatus.CREATED.value,
            "training_mode": mode,
            "training_version": model_training_version(version),
            "generation_prefix": None if fibo else "",
            "project_id": dataset["project_id"],
            "dataset_id": dataset_id,
            "created_at": stamp,
            "updated_at": stamp,
            "custom_metadata": "",
            "active_model_version": "default",
            "training_parameters": {},
            "checkpoint_steps": [],
        }
        tx.put("models", doc)
    return respond(model_view(doc), 201)


@router.get(Paths.MODELS)
async def list_models(request: Request) -> Response:
    """``GET /v1/tailored-gen/models`` (``include_training_parameters``).

    :param request: the HTTP request.
    """
    full = query_bool(request, "include_training_parameters")
    with runtime(request).store.read() as tx:
        docs = tx.select("models")
    return respond([model_view(d, include_training_parameters=full) for d in docs])


@router.get(Paths.project_models("{project_id}"))
async def list_project_models(request: Request, project_id: str) -> Response:
    """``GET /v1/tailored-gen/projects/{project_id}/models``.

    :param request: the HTTP request.
    :param project_id: the project id (path).
    """
    pid = parse_id(project_id, "Project")
    full = query_bool(request, "include_training_parameters")
    with runtime(request).store.read() as tx:
        if tx.get("projects", pid) is None:
            raise v1_error(404, "Project not found")
        docs = tx.select("models", project_id=pid)
    return respond([model_view(d, include_training_parameters=full) for d in docs])


@router.post(Paths.UPLOAD_MODEL)
async def upload_model(request: Request) -> Response:
    """``POST /v1/tailored-gen/models/upload_model`` -> 200 model in ``syncing`` (then ``completed``).

    :param request: the HTTP request.
    """
    body = await json_body(request)
    model_url = get_str(body, "model_url", required=True)
    if not model_url.startswith(("http://", "https://")):
        raise v1_error(422, "model_url must be a public http(s) URL")
    if not model_url.split("?", 1)[0].lower().endswith(".safetensors"):
        raise v1_error(415, "Only .safetensors model files are supported")
    project_id = get_int(body, "project_id")
    params = body.get("project_parameters")
    if project_id is None and not isinstance(params, dict):
        raise v1_error(400, "Either project_id or project_parameters is required")
    rt = runtime(request)
    stamp = iso()
    with rt.store.tx() as tx:
        if project_id is not None:
            if tx.get("projects", project_id) is None:
                raise v1_error(404, "Project not found")
        else:
            fields = {k: get_str(params, k) for k in UPLOAD_PROJECT_PARAMETER_KEYS}
            fields["ip_type"] = fields["ip_type"] or UPLOAD_DEFAULT_IP_TYPE
            problems = upload_project_errors(fields)
            if problems:
                raise v1_error(400, "; ".join(problems))
            project_id = tx.next_id("projects")
            tx.put(
                "projects",
                {
                    "id": project_id,
                    "project_name": fields["project_name"],
                    "project_description": fields["project_description"] or "",
                    "ip_name": "",
                    "ip_description": "",
                    "ip_medium": fields["ip_medium"],
                    "ip_type": fields["ip_type"],
                    "training_version": None,
                    "status": "active",
                    "created_at": stamp,
                    "updated_at": stamp,
                },
            )
        doc = {
            "id": tx.next_id("models"),
            "name": get_str(body, "model_name") or model_url.rsplit("/", 1)[-1].split("?", 1)[0],
            "description": "",
            "status": ModelStatus.SYNCING.value,
            "training_mode": TrainingMode.FULLY_AUTOMATED.value,
            "training_version": None,
            "generation_prefix": "",
            "project_id": project_id,
            "dataset_id": None,
            "created_at": stamp,
            "updated_at": stamp,
            "custom_metadata": "",
            "active_model_version": "default",
            "training_parameters": {},
            "checkpoint_steps": [],
            "_next": [[now() + rt.settings.job_seconds, ModelStatus.UPLOADED_COMPLETED.value]],
            "_uploaded_from": model_url,
        }
        tx.put("models", doc)
    return respond(model_view(doc), 200)


@router.get(Paths.model("{model_id}"))
async def get_model(request: Request, model_id: str) -> Response:
    """``GET /v1/tailored-gen/models/{model_id}``: the training poll target.

    :param request: the HTTP request.
    :param model_id: the model id (path).
    """
    status, body = model_reply(runtime(request), parse_id(model_id, "Model"))
    return respond(body, status)


@router.put(Paths.model("{model_id}"))
async def update_model(request: Request, model_id: str) -> Response:
    """``PUT /v1/tailored-gen/models/{model_id}``: name and description only.

    :param request: the HTTP request.
    :param model_id: the model id (path).
    """
    mid = parse_id(model_id, "Model")
    body = await json_body(request)
    for key in body:
        if key not in ("name", "description"):
            raise v1_error(400, f"{key} cannot be updated; only name and description can")
    name, description = get_str(body, "name"), get_str(body, "description")
    if "name" in body and not (name and name.strip()):
        raise v1_error(400, "name must not be empty")
    with runtime(request).store.tx() as tx:
        doc = load_model(tx, mid)
        if name is not None:
            doc["name"] = name
        if "description" in body:
            doc["description"] = description or ""
        doc["updated_at"] = iso()
        tx.put("models", doc)
    return respond(model_view(doc))


@router.delete(Paths.model("{model_id}"))
async def delete_model(request: Request, model_id: str) -> Response:
    """``DELETE /v1/tailored-gen/models/{model_id}`` -> 204; 409 while training.

    :param request: the HTTP request.
    :param model_id: the model id (path).
    """
    mid = parse_id(model_id, "Model")
    with runtime(request).store.tx() as tx:
        doc = load_model(tx, mid)
        if is_training(doc):
            raise v1_error(409, "Cannot delete model while it is in training")
        doc = dict(doc, status=MODEL_DELETED, updated_at=iso(), _next=[])  # soft delete, as the spec says
        tx.delete_files(f"model:{mid}")
        tx.put("models", doc)
    return respond(None, 204)


def _effective_parameters(fibo: bool, given: dict[str, Any]) -> dict[str, Any]:
    params = dict(FIBO_DEFAULT_TRAINING_PARAMETERS if fibo else LEGACY_DEFAULT_TRAINING_PARAMETERS)
    given = dict(given)
    if "max_train_steps" in given:
        given.setdefault("total_training_steps", given.pop("max_train_steps"))
        given.pop("max_train_steps", None)
    params.update(given)
    if params["lr_scheduler"] == LrScheduler.CONSTANT_WITH_WARMUP.value:
        if params.get("lr_warmup_steps") is None:
            params["lr_warmup_steps"] = FIBO_DEFAULT_TRAINING_PARAMETERS["lr_warmup_steps"]
    else:
        params["lr_warmup_steps"] = None
    return params


@router.post(Paths.start_training("{model_id}"))
async def start_training(request: Request, model_id: str) -> Response:
    """``POST .../models/{model_id}/start_training`` -> 200 model in ``InProgress``; 409 unless ``Created``,
    412 unless the dataset is ``completed``, 400 for expert parameters (``{"message"}`` / ``{"errors"}``).

    :param request: the HTTP request.
    :param model_id: the model id (path).
    """
    mid = parse_id(model_id, "Model")
    body = await json_body(request, allow_empty=True)
    given = {k: v for k, v in body.items() if v is not None}
    rt = runtime(request)
    with rt.store.tx() as tx:
        doc = load_model(tx, mid)
        if given and doc["training_mode"] != TrainingMode.EXPERT.value:
            raise v1_error(400, EXPERT_ONLY_MESSAGE)
        problems = expert_parameter_errors(given)
        if problems:
            raise errors.field_errors(problems)
        if doc["status"] != ModelStatus.CREATED.value:
            raise v1_error(409, f"Training already started and cannot be resumed (model status {doc['status']})")
        dataset = tx.get("datasets", doc["dataset_id"]) if doc.get("dataset_id") else None
        if dataset is None or dataset["status"] != DatasetStatus.COMPLETED.value:
            raise v1_error(412, "The model's dataset must have status 'completed' before training can start")
        fibo = training_family(dataset["training_version"]) is TrainingFamily.FIBO
        started, duration = now(), rt.settings.training_seconds
        params = _effective_parameters(fibo, given)
        job_id = tx.incr("trainings_started")
        tx.incr(f"trainings:{mid}")
        doc.update(
            status=ModelStatus.IN_PROGRESS.value,
            updated_at=iso(started),
            training_parameters=params,
            checkpoint_steps=[],
            _next=[[started + duration, ModelStatus.COMPLETED.value]],
            _checkpoints=checkpoint_plan(params, started, duration, 10_000 + job_id)
            if doc["training_mode"] == TrainingMode.EXPERT.value
            else [],
        )
        if not fibo:
            doc["generation_prefix"] = dataset.get("caption_prefix") or ""
        tx.put("models", doc)
    return respond(model_view(doc))


@router.post(Paths.stop_training("{model_id}"))
async def stop_training(request: Request, model_id: str) -> Response:
    """``POST .../models/{model_id}/stop_training`` -> 200 model in ``Stopping`` (then ``Stopped``).

    :param request: the HTTP request.
    :param model_id: the model id (path).
    """
    mid = parse_id(model_id, "Model")
    rt = runtime(request)
    with rt.store.tx() as tx:
        doc = load_model(tx, mid)
        if doc["status"] != ModelStatus.IN_PROGRESS.value:
            raise v1_error(409, f"Training already stopped/not in training (model status {doc['status']})")
        moment = now()
        doc.update(
            status=ModelStatus.STOPPING.value,
            updated_at=iso(moment),
            _next=[[moment + stop_seconds(rt.settings.training_seconds), ModelStatus.STOPPED.value]],
        )
        tx.put("models", doc)
    return respond(model_view(doc))


def _checkpoints(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["status"] != ModelStatus.COMPLETED.value:
        raise errors.bare(400, "The model status is not completed")
    if doc["training_mode"] != TrainingMode.EXPERT.value:
        raise errors.bare(400, "Checkpoints are only available for models trained in expert mode")
    deleted = set(doc.get("_deleted_steps") or [])
    return [c for c in doc.get("_checkpoints") or [] if c["checkpoint_step"] not in deleted]


@router.get(Paths.model_checkpoints("{model_id}"))
async def list_checkpoints(request: Request, model_id: str) -> Response:
    """``GET .../models/{model_id}/checkpoints`` (expert, ``Completed`` models; bare-string errors).

    :param request: the HTTP request.
    :param model_id: the model id (path).
    """
    mid = parse_id(model_id, "Model", err=errors.bare)
    with runtime(request).store.read() as tx:
        doc = load_model(tx, mid, bare=True)
    items = sorted(_checkpoints(doc), key=lambda c: c["checkpoint_step"], reverse=True)
    return respond({"checkpoints": items, "active_model_version": doc["active_model_version"]})


def _find_checkpoint(doc: dict[str, Any], step: str) -> dict[str, Any]:
    for item in _checkpoints(doc):
        if str(item["checkpoint_step"]) == step.strip():
            return item
    raise errors.bare(404, "Checkpoint not found")


@router.get(Paths.model_checkpoint("{model_id}", "{step}"))
async def get_checkpoint(request: Request, model_id: str, step: str) -> Response:
    """``GET .../models/{model_id}/checkpoints/{checkpoint_step}``.

    :param request: the HTTP request.
    :param model_id: the model id (path).
    :param step: the checkpoint step (path).
    """
    mid = parse_id(model_id, "Model", err=errors.bare)
    with runtime(request).store.read() as tx:
        doc = load_model(tx, mid, bare=True)
    return respond(_find_checkpoint(doc, step))


@router.delete(Paths.model_checkpoint("{model_id}", "{step}"))
async def delete_checkpoint(request: Request, model_id: str, step: str) -> Response:
    """``DELETE .../models/{model_id}/checkpoints/{checkpoint_step}`` -> 204; 400 for the active one.

    :param request: the HTTP request.
    :param model_id: the model id (path).
    :param step: the checkpoint step (path).
    """
    mid = parse_id(model_id, "Model", err=errors.bare)
    with runtime(request).store.tx() as tx:
        doc = load_model(tx, mid, bare=True)
        item = _find_checkpoint(doc, step)
        if str(item["checkpoint_step"]) == doc["active_model_version"]:
            raise errors.bare(400, "Cannot delete checkpoint currently selected for inference")
        doc["_deleted_steps"] = [*(doc.get("_deleted_steps") or []), item["checkpoint_step"]]
        doc["checkpoint_steps"] = [s for s in doc["checkpoint_steps"] if s != str(item["checkpoint_step"])]
        doc["updated_at"] = iso()
        tx.put("models", doc)
    return respond(None, 204)


@router.get(Paths.model_download("{model_id}"))
async def download_model(request: Request, model_id: str) -> Response:
    """``GET .../models/{model_id}/download`` -> ``download_url`` (a tensor-less .safetensors), base model.

    :param request: the HTTP request.
    :param model_id: the model id (path).
    """
    mid = parse_id(model_id, "Model")
    with runtime(request).store.tx() as tx:
        doc = load_model(tx, mid)
        if not ModelStatus.parse(doc["status"]).is_success:
            raise v1_error(400, "The model status is not completed")
        version = canonical_training_version(doc["training_version"]) if doc.get("training_version") else "fibo"
        base_name, card = _BASE_MODELS[version]
        name = unguessable(f"model{mid}", "-weights.safetensors")
        tx.put_file(
            name,
            "application/octet-stream",
            owner=f"model:{mid}",
            recipe={
                "kind": "safetensors",
                "metadata": {
                    "model_id": mid,
                    "name": doc["name"],
                    "base_model": base_name,
                    "active_model_version": doc["active_model_version"],
                    "emulator": "true",
                },
            },
        )
    return respond(
        {"download_url": file_url(base_url(request), name), "base_model_name": base_name, "base_model_card": card}
    )
