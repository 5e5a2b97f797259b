"""Rules the emulator enforces on its own authority, read from Bria's published material.

The client's :mod:`airflow_provider_bria.contract` is written for callers (it may be stricter, or warn);
the emulator must answer as Bria documents, so where the two differ the emulator's rule lives here, with
its source. Sources: ``SPEC`` = Bria's Tailored Generation OpenAPI (``shared/reference``, extracted to
``tests/contract/spec/bria-openapi-extract.json``), ``SEED`` = docs.bria.ai Tailored Generation overview.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: SPEC (newest, FIBO-only: no ``training_version`` at all) and SEED ("Select Fibo"): a dataset created
#: without ``training_version`` is FIBO. (The older DOCS-MID page said ``max``; superseded.)
DEFAULT_DATASET_TRAINING_VERSION = "fibo"

#: SPEC ``PUT /datasets/{id}``: completion needs at least 5 images (the spec states 5 for every dataset).
MIN_IMAGES_TO_COMPLETE = 5

#: SPEC ``DELETE /models/{id}`` (trailing Model block): "Changes status to Deleted" (a soft delete).
MODEL_DELETED = "Deleted"

#: SPEC/SEED project enums.
IP_MEDIUMS = ("photography", "illustration")
IP_TYPES = (
    "multi_object_set",
    "object_variants",
    "icons",
    "defined_character",
    "character_variants",
    "stylized_scene",
    "other",
)
#: SEED: "The Types below are currently available only when ip_medium = illustration".
ILLUSTRATION_ONLY_IP_TYPES = ("multi_object_set", "object_variants", "icons", "character_variants")
#: SEED/SPEC: ip_name "Required only for defined_character"; ip_description "Required only for
#: defined_character and object_variants".
IP_NAME_REQUIRED = ("defined_character",)
IP_DESCRIPTION_REQUIRED = ("defined_character", "object_variants")
#: SEED/SPEC guidance, not rules: ip_name "1-3 words", ip_description "up to 6 words" (Bria's own example
#: has 9 words). Enforced only with ``--strict-limits``.
IP_NAME_MAX_WORDS = 3
IP_DESCRIPTION_MAX_WORDS = 6

#: SPEC upload_model ``project_parameters`` properties (the only documented keys).
UPLOAD_PROJECT_PARAMETER_KEYS = ("project_name", "ip_medium", "project_description", "ip_type")
UPLOAD_DEFAULT_IP_TYPE = "other"


def _words(text: str) -> int:
    return len(text.split())


def project_errors(fields: Mapping[str, Any], *, strict_limits: bool, creating: bool = True) -> list[str]:
    """What Bria documents as wrong with a project's fields (empty when nothing is).

    :param fields: ``project_name``, ``ip_medium``, ``ip_type``, ``ip_name``, ``ip_description`` (may be absent).
    :param strict_limits: also enforce the word-count guidance (``--strict-limits``).
    :param creating: a create request (required fields must be present) rather than a merged update.
    """
    problems: list[str] = []
    name = fields.get("project_name")
    if creating and not (isinstance(name, str) and name.strip()):
        problems.append("project_name is required and must not be empty")
    medium, itype = fields.get("ip_medium"), fields.get("ip_type")
    if medium not in IP_MEDIUMS:
        problems.append(f"Invalid ip_medium {medium!r}; expected one of: {', '.join(IP_MEDIUMS)}")
    if itype not in IP_TYPES:
        problems.append(f"Invalid ip_type {itype!r}; expected one of: {', '.join(IP_TYPES)}")
    if itype in ILLUSTRATION_ONLY_IP_TYPES and medium in IP_MEDIUMS and medium != "illustration":
        problems.append(f"ip_type {itype!r} is only available with ip_medium 'illustration'")
    ip_name, ip_description = fields.get("ip_name") or "", fields.get("ip_description") or ""
    if itype in IP_NAME_REQUIRED and not ip_name.strip():
        problems.append(f"ip_name is required for ip_type {itype!r}")
    if itype in IP_DESCRIPTION_REQUIRED and not ip_description.strip():
        problems.append(f"ip_description is required for ip_type {itype!r}")
    if strict_limits and _words(ip_name) > IP_NAME_MAX_WORDS:
        problems.append(f"ip_name must be 1-{IP_NAME_MAX_WORDS} words (--strict-limits)")
    if strict_limits and _words(ip_description) > IP_DESCRIPTION_MAX_WORDS:
        problems.append(f"ip_description must be at most {IP_DESCRIPTION_MAX_WORDS} words (--strict-limits)")
    return problems


def upload_project_errors(params: Mapping[str, Any]) -> list[str]:
    """What is wrong with upload_model's ``project_parameters`` (only the documented keys are read).

    The spec's ``project_parameters`` has no ``ip_name``/``ip_description``, so the "required for
    defined_character/object_variants" rule of create-project cannot apply here.

    :param params: the ``project_parameters`` object.
    """
    problems = []
    name = params.get("project_name")
    if not (isinstance(name, str) and name.strip()):
        problems.append("project_parameters.project_name is required when project_id is not given")
    medium = params.get("ip_medium")
    itype = params.get("ip_type") or UPLOAD_DEFAULT_IP_TYPE
    if medium not in IP_MEDIUMS:
        problems.append(f"Invalid project_parameters.ip_medium {medium!r}; expected one of: {', '.join(IP_MEDIUMS)}")
    if itype not in IP_TYPES:
        problems.append(f"Invalid project_parameters.ip_type {itype!r}; expected one of: {', '.join(IP_TYPES)}")
    elif itype in ILLUSTRATION_ONLY_IP_TYPES and medium == "photography":
        problems.append(f"ip_type {itype!r} is only available with ip_medium 'illustration'")
    return problems
