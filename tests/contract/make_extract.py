"""Build ``tests/contract/spec/bria-openapi-extract.json`` from Bria's own OpenAPI files.

Run from the repository root (needs ``../shared/reference/``; the tests themselves do not)::

    .venv/bin/python tests/contract/make_extract.py [--reference DIR] [--output FILE]

What the extract is
    One OpenAPI 3.0 document holding every operation of Bria's Tailored Generation API
    (``bria-tailored-generation-openapi.yml``) and of its Status Service (``bria-status-openapi.yml``):
    paths, methods, parameters, request bodies, responses (status codes, media types, schemas),
    ``example``/``examples`` values and ``enum``/``default``/limits, with every ``$ref`` resolved inline.
    Prose is dropped: ``summary``, ``description`` (when it is text, not a property *named*
    ``description``), ``tags``, ``externalDocs``, ``x-tagGroups``, ``info`` text.
    Because it stays a valid OpenAPI document, tools such as schemathesis can load it as is.

Path keys
    Every operation in the source overrides ``servers`` to ``https://engine.prod.bria-api.com/v1`` or
    ``.../v2``. The extract folds that version segment into the path key
    (``/v1/tailored-gen/projects``, ``/v2/status/{request_id}``) and sets a single relative server
    ``/``, so one document describes both versions and the keys are the URL paths a client sends.

The malformed trailing block (see shared/bria-api-contract.md §0)
    The tailored file ends with top-level keys such as ``/tailored-gen/models`` placed *outside*
    ``paths:`` (a YAML loader sees them as siblings of ``paths``). That block is a slightly older,
    richer variant of the Model endpoints: it carries error bodies (``{"message": ...}``,
    ``{"errors": [...]}``), ``custom_metadata`` and the ``upload_model`` operation, which ``paths:`` lacks.
    Both variants are Bria's own published text, so the extract folds the block in instead of dropping it:

    * an operation present only in the block (``POST /tailored-gen/models/upload_model``) is added;
    * for an operation present in both, ``paths:`` stays primary; a status code only the block lists is
      added; where both document a schema for the same status and media type and the schemas differ,
      the extract keeps ``{"anyOf": [primary, block]}`` so a body valid under either published
      variant validates; examples of both are kept (block examples are renamed ``trailing_<name>``);
    * parameters are merged by ``(in, name)``, primary first; request bodies follow the same anyOf rule;
    * each merged operation records ``x-extract-sources: ["paths", "trailing-block"]``.

The output is deterministic (sorted keys, fixed indentation) so a re-run on the same input gives the
same bytes; ``tests/contract/test_spec_extract.py`` checks that when ``../shared`` is present.

Two additions beyond the schemas, each stated in the same file's text and marked ``x-extract-from-prose``:
the status schema lacks two states its own text documents (``IN_PROGRESS``; a structured-prompt-only
result), see :func:`_apply_status_prose_facts`; the model status enums lack ``Deleted``, which Delete Model
says it sets, see :func:`_apply_model_prose_facts`.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
PROSE_KEYS = {"summary", "description", "tags", "externalDocs", "x-tagGroups", "title"}
STRUCTURED_PROSE = {"tags", "externalDocs", "x-tagGroups"}
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "spec" / "bria-openapi-extract.json"
TAILORED_FILE = "bria-tailored-generation-openapi.yml"
STATUS_FILE = "bria-status-openapi.yml"


def _resolve_refs(node: Any, document: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Return ``node`` with every local ``$ref`` replaced by a copy of its target.

    :param node: any YAML value.
    :param document: the document the ``#/...`` pointers refer to.
    :param seen: refs being expanded (guards against cycles, which Bria's files do not have).
    """
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            if ref in seen:
                raise ValueError(f"cyclic $ref {ref}")
            target: Any = document
            for part in ref[2:].split("/"):
                target = target[part]
            return _resolve_refs(copy.deepcopy(target), document, (*seen, ref))
        return {key: _resolve_refs(value, document, seen) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve_refs(item, document, seen) for item in node]
    return node


def _strip_prose(node: Any, *, in_properties: bool = False) -> Any:
    """Drop prose keys, keeping schema properties that merely happen to be named ``description``.

    :param node: a resolved OpenAPI fragment.
    :param in_properties: ``True`` when ``node`` is a ``properties`` mapping (its keys are field names).
    """
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not in_properties and key in PROSE_KEYS and (isinstance(value, str) or key in STRUCTURED_PROSE):
                continue
            out[key] = _strip_prose(value, in_properties=(key == "properties" and not in_properties))
        return out
    if isinstance(node, list):
        return [_strip_prose(item) for item in node]
    return node


def _version_prefix(operation: dict[str, Any], default_servers: list[dict[str, Any]]) -> str:
    """The path prefix (``/v1`` or ``/v2``) named by the operation's server override."""
    servers = operation.get("servers") or default_servers
    prefix = urlsplit(servers[0]["url"]).path.rstrip("/")
    if prefix not in ("/v1", "/v2"):
        raise ValueError(f"unexpected server path {prefix!r}")
    return prefix


def _merge_variant(primary: Any, variant: Any) -> Any:
    """``primary`` when both are equal, else ``{"anyOf": [primary, variant]}``."""
    if primary == variant:
        return primary
    return {"anyOf": [primary, variant]}


def _merge_content(primary: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    """Merge two ``content`` mappings (media type -> {schema, example(s)})."""
    merged = copy.deepcopy(primary)
    for media, body in block.items():
        if media not in merged:
            merged[media] = copy.deepcopy(body)
            continue
        target = merged[media]
        if "schema" in body:
            primary_schema = target.get("schema", body["schema"])
            target["schema"] = _merge_variant(primary_schema, body["schema"])
        examples = dict(target.get("examples") or {})
        if "example" in target and "examples" in body:
            examples.setdefault("primary", {"value": target.pop("example")})
        for name, example in (body.get("examples") or {}).items():
            examples[f"trailing_{name}"] = example
        if "example" in body and body["example"] != target.get("example"):
            if "example" in target:
                examples.setdefault("primary", {"value": target.pop("example")})
            examples["trailing_example"] = {"value": body["example"]}
        if examples:
            target["examples"] = examples
    return merged


def _merge_operation(primary: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    """Fold the trailing block's variant of an operation into the ``paths:`` one (rules in module doc)."""
    merged = copy.deepcopy(primary)
    params = {(p["in"], p["name"]): p for p in merged.get("parameters", [])}
    for param in block.get("parameters", []):
        params.setdefault((param["in"], param["name"]), copy.deepcopy(param))
    if params:
        merged["parameters"] = list(params.values())
    if "requestBody" in block:
        if "requestBody" in merged:
            merged["requestBody"]["content"] = _merge_content(
                merged["requestBody"].get("content", {}), block["requestBody"].get("content", {})
            )
        else:
            merged["requestBody"] = copy.deepcopy(block["requestBody"])
    responses = merged.setdefault("responses", {})
    for status, response in block.get("responses", {}).items():
        if status not in responses:
            responses[status] = copy.deepcopy(response)
        elif "content" in response:
            responses[status]["content"] = _merge_content(responses[status].get("content", {}), response["content"])
    merged["x-extract-sources"] = ["paths", "trailing-block"]
    return merged


def _collect(document: dict[str, Any], source_paths: dict[str, Any], out: dict[str, Any], *, merge: bool) -> None:
    """Add the operations of ``source_paths`` to ``out`` under version-prefixed keys."""
    default_servers = document.get("servers") or [{"url": "/v1"}]
    for path, item in source_paths.items():
        shared = item.get("parameters", [])
        for method in HTTP_METHODS:
            if method not in item:
                continue
            operation = copy.deepcopy(item[method])
            if shared:
                operation["parameters"] = shared + operation.get("parameters", [])
            key = _version_prefix(operation, default_servers) + path
            operation.pop("servers", None)
            operation = _strip_prose(_resolve_refs(operation, document))
            for response in operation.get("responses", {}).values():
                response["description"] = ""  # required by OpenAPI; the prose itself is dropped
            slot = out.setdefault(key, {})
            if method in slot:
                if not merge:
                    raise ValueError(f"duplicate operation {method.upper()} {key}")
                slot[method] = _merge_operation(slot[method], operation)
            else:
                if merge:
                    operation["x-extract-sources"] = ["trailing-block"]
                slot[method] = operation


def _apply_status_prose_facts(paths: dict[str, Any]) -> None:
    """Add to the status 200 schema the two states its own file states in prose but leaves out of the schema.

    ``bria-status-openapi.yml`` says (``info.description`` and the operation text) that ``IN_PROGRESS`` is
    returned while a job runs and that a completed structured-prompt job carries only ``structured_prompt``
    (+ optional ``seed``); its ``oneOf`` schema has neither, so every running job would "violate" it. The
    two additions are marked ``x-extract-from-prose`` so a reader can tell them from Bria's schema text.
    """
    schema = paths["/v2/status/{request_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    completed = schema["oneOf"][0]
    completed["properties"]["result"]["oneOf"].append(
        {
            "type": "object",
            "required": ["structured_prompt"],
            "not": {"anyOf": [{"required": ["image_url"]}, {"required": ["video_url"]}]},
            "properties": {"structured_prompt": {"type": "string"}, "seed": {"type": "integer"}},
            "x-extract-from-prose": "completed structured prompt generation returns structured_prompt",
        }
    )
    schema["oneOf"].append(
        {
            "type": "object",
            "required": ["status", "request_id"],
            "properties": {"status": {"type": "string", "enum": ["IN_PROGRESS"]}, "request_id": {"type": "string"}},
            "x-extract-from-prose": "IN_PROGRESS: the request has been accepted and is being processed",
        }
    )


def _apply_model_prose_facts(paths: dict[str, Any]) -> None:
    """Add ``Deleted`` to the model status enums: the spec's Delete Model text says "Changes status to Deleted".

    Every schema property ``status`` whose enum lists ``Stopped`` (the model statuses) gets ``Deleted``, marked
    ``x-extract-from-prose``.
    """

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            status = (node.get("properties") or {}).get("status")
            if isinstance(status, dict) and "Stopped" in (status.get("enum") or []) and "Deleted" not in status["enum"]:
                status["enum"] = [*status["enum"], "Deleted"]
                status["x-extract-from-prose"] = "Delete Model: Changes status to Deleted"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(paths)


def build_extract(reference: Path) -> dict[str, Any]:
    """Return the extract document built from the two YAML files in ``reference``."""
    tailored = yaml.safe_load((reference / TAILORED_FILE).read_text(encoding="utf-8"))
    status = yaml.safe_load((reference / STATUS_FILE).read_text(encoding="utf-8"))
    paths: dict[str, Any] = {}
    _collect(tailored, tailored["paths"], paths, merge=False)
    trailing = {key: value for key, value in tailored.items() if key.startswith("/")}
    _collect(tailored, trailing, paths, merge=True)
    _collect(status, status["paths"], paths, merge=False)
    _apply_status_prose_facts(paths)
    _apply_model_prose_facts(paths)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Bria Tailored Generation + Status (machine-made extract)",
            "version": "extract-1",
            "x-sources": [TAILORED_FILE, STATUS_FILE],
            "x-generator": "tests/contract/make_extract.py",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {},
    }


def render(extract: dict[str, Any]) -> str:
    """Deterministic JSON text of ``extract``."""
    return json.dumps(extract, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    text = render(build_extract(args.reference))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
