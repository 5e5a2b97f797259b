"""Provider metadata for Airflow's providers manager (entry point ``apache_airflow_provider``).

Kept importable without Airflow or any optional dependency: it is read on every Airflow start-up.
The connection form metadata here must match ``BriaHook.get_ui_field_behaviour`` and
``BriaHook.get_connection_form_widgets`` (a test checks it).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_bria import __version__

P = "airflow_provider_bria"

CONN_FIELDS: dict[str, Any] = {
    "console_url": {
        "label": "Console URL",
        "description": "Base URL of the Bria console used by the extra links (default https://platform.bria.ai).",
        "schema": {"type": ["string", "null"], "format": "url"},
    },
    "timeout": {
        "label": "Read timeout (seconds)",
        "description": "Per-request read timeout; connect timeout is 10 s.",
        "schema": {"type": ["number", "null"], "minimum": 1},
    },
    "retry_budget": {
        "label": "Retry budget (seconds)",
        "description": "Total seconds one API call may wait between retries (default 300; keep it above 61 so "
        "a 429 on a per-minute plan is retried after the minute has passed).",
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
    "upload_encoding": {
        "label": "Image upload encoding",
        "description": "How upload_image sends a file: json (base64, default) or multipart (form-data).",
        "schema": {"type": ["string", "null"], "enum": ["json", "multipart", None]},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "login", "extra"],
    "relabeling": {"host": "API base URL", "password": "API token"},
    "placeholders": {
        "host": "https://engine.prod.bria-api.com",
        "password": "your Bria api_token",
        "console_url": "https://platform.bria.ai",
        "timeout": "60",
        "retry_budget": "300",
        "upload_encoding": "json",
    },
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow's providers manager expects."""
    return {
        "package-name": "airflow-provider-bria",
        "name": "Bria",
        "description": "Train Bria.ai Tailored Generation models and generate images, prompts and video.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Bria Tailored Generation",
                "external-doc-url": "https://docs.bria.ai/tailored-generation",
                "tags": ["ai"],
            }
        ],
        "hooks": [{"integration-name": "Bria Tailored Generation", "python-modules": [f"{P}.hooks.bria"]}],
        "operators": [
            {
                "integration-name": "Bria Tailored Generation",
                "python-modules": [
                    f"{P}.operators.project",
                    f"{P}.operators.dataset",
                    f"{P}.operators.captions",
                    f"{P}.operators.upload",
                    f"{P}.operators.model",
                    f"{P}.operators.training",
                    f"{P}.operators.generation",
                ],
            }
        ],
        "sensors": [{"integration-name": "Bria Tailored Generation", "python-modules": [f"{P}.sensors.training"]}],
        "triggers": [
            {
                "integration-name": "Bria Tailored Generation",
                "python-modules": [f"{P}.triggers.training", f"{P}.triggers.job", f"{P}.triggers.upload"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": f"{P}.hooks.bria.BriaHook",
                "hook-name": "Bria",
                "connection-type": "bria",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
        "extra-links": [
            f"{P}.links.bria.BriaProjectLink",
            f"{P}.links.bria.BriaDatasetLink",
            f"{P}.links.bria.BriaModelLink",
        ],
    }
