"""Projects (contract §3): create, list, get, update, delete."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from airflow_provider_bria.contract import Paths, canonical_training_version
from airflow_provider_bria.emulator.routes._common import (
    get_str,
    input_error,
    json_body,
    parse_id,
    respond,
    runtime,
    v1_error,
)
from airflow_provider_bria.emulator.routes.datasets import delete_dataset_cascade
from airflow_provider_bria.emulator.spec_rules import project_errors
from airflow_provider_bria.emulator.store import Tx
from airflow_provider_bria.emulator.views import is_training, iso, project_view, resolve_model
from airflow_provider_bria.exceptions import BriaInputError

router = APIRouter()

_UPDATABLE = ("project_name", "project_description", "ip_name", "ip_description")
_IMMUTABLE = ("ip_medium", "ip_type", "training_version")


def load_project(tx: Tx, project_id: int) -> dict:
    """A project or a 404.

    :param tx: the store transaction.
    :param project_id: the id.
    """
    doc = tx.get("projects", project_id)
    if doc is None:
        raise v1_error(404, "Project not found")
    return doc


@router.post(Paths.PROJECTS)
async def create_project(request: Request) -> Response:
    """``POST /v1/tailored-gen/projects`` -> 201 project.

    :param request: the HTTP request.
    """
    body = await json_body(request)
    names = (*_UPDATABLE, "ip_medium", "ip_type", "training_version")
    # training_version (older docs only): "if omitted/null, the project stays unlocked"
    fields = {name: get_str(body, name, nullable=name == "training_version") for name in names}
    strict = runtime(request).settings.strict_limits
    problems = project_errors(fields, strict_limits=strict)
    if problems:
        raise v1_error(400, "; ".join(problems))
    version = fields["training_version"]
    try:
        version = canonical_training_version(version) if version else None
    except BriaInputError as exc:
        raise input_error(exc) from None
    stamp = iso()
    with runtime(request).store.tx() as tx:
        doc = {
            "id": tx.next_id("projects"),
            "project_name": fields["project_name"],
            "project_description": fields["project_description"] or "",
            "ip_name": fields["ip_name"] or "",
            "ip_description": fields["ip_description"] or "",
            "ip_medium": fields["ip_medium"],
            "ip_type": fields["ip_type"],
            "training_version": version,
            "status": "active",
            "created_at": stamp,
            "updated_at": stamp,
        }
        tx.put("projects", doc)
    return respond(project_view(doc), 201)


@router.get(Paths.PROJECTS)
async def list_projects(request: Request) -> Response:
    """``GET /v1/tailored-gen/projects`` -> bare array.

    :param request: the HTTP request.
    """
    with runtime(request).store.read() as tx:
        docs = tx.select("projects")
    return respond([project_view(d) for d in docs])


@router.get(Paths.project("{project_id}"))
async def get_project(request: Request, project_id: str) -> Response:
    """``GET /v1/tailored-gen/projects/{project_id}``.

    :param request: the HTTP request.
    :param project_id: the project id (path).
    """
    pid = parse_id(project_id, "Project")
    with runtime(request).store.read() as tx:
        doc = load_project(tx, pid)
    return respond(project_view(doc))


@router.put(Paths.project("{project_id}"))
async def update_project(request: Request, project_id: str) -> Response:
    """``PUT /v1/tailored-gen/projects/{project_id}``: name, description, ip_name, ip_description.

    :param request: the HTTP request.
    :param project_id: the project id (path).
    """
    pid = parse_id(project_id, "Project")
    body = await json_body(request)
    for name in _IMMUTABLE:
        if name in body:
            raise v1_error(400, f"{name} cannot be updated")
    changes = {name: get_str(body, name) for name in _UPDATABLE if name in body}
    with runtime(request).store.tx() as tx:
        doc = load_project(tx, pid)
        merged = {**doc, **{k: (v if v is not None else "") for k, v in changes.items()}}
        problems = project_errors(merged, strict_limits=runtime(request).settings.strict_limits)
        if problems:
            raise v1_error(400, "; ".join(problems))
        if changes:
            merged["updated_at"] = iso()
        tx.put("projects", merged)
    return respond(project_view(merged))


@router.delete(Paths.project("{project_id}"))
async def delete_project(request: Request, project_id: str) -> Response:
    """``DELETE /v1/tailored-gen/projects/{project_id}`` -> 204; 409 while a model trains.

    :param request: the HTTP request.
    :param project_id: the project id (path).
    """
    pid = parse_id(project_id, "Project")
    with runtime(request).store.tx() as tx:
        load_project(tx, pid)
        models = [resolve_model(m) for m in tx.select("models", project_id=pid)]
        if any(is_training(m) for m in models):
            raise v1_error(409, "Cannot delete project while models are in training")
        for model in models:
            tx.delete_files(f"model:{model['id']}")
            tx.delete("models", model["id"])
        for dataset in tx.select("datasets", project_id=pid):
            delete_dataset_cascade(tx, dataset["id"])
        tx.delete("projects", pid)
    return respond(None, 204)
