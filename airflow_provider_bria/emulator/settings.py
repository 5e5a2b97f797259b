"""Emulator settings: one immutable-by-convention dataclass shared by the CLI, the app and the tests.

Standard library only, so :mod:`airflow_provider_bria.emulator.process` and the CLI can import it cheaply.
"""

from __future__ import annotations

import dataclasses
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_TRAINING_SECONDS = 30.0
DEFAULT_JOB_SECONDS = 1.0
#: Largest ZIP a bulk upload may fetch (the real limit, 5 GB, does not fit a test machine's memory).
DEFAULT_MAX_ZIP_MB = 256
#: Largest single image accepted by an upload or a helper call (Bria documents 12 MB elsewhere).
MAX_IMAGE_BYTES = 12 * 1024 * 1024
#: Time limit of one outbound fetch (image_url, zip_url, helper image URLs), seconds.
FETCH_TIMEOUT_SECONDS = 30.0
#: Time limit of a bulk upload's ZIP download, seconds.
BULK_TIME_LIMIT_SECONDS = 300.0


@dataclasses.dataclass
class Settings:
    """Runtime settings of one emulator process.

    :param host: interface to bind.
    :param port: TCP port (0 picks a free one).
    :param api_token: the only token accepted; ``None`` accepts any non-empty token.
    :param training_seconds: time from start_training to ``Completed``.
    :param job_seconds: time a v2 async job stays ``IN_PROGRESS``.
    :param fault_rate: fraction (0-1) of API requests that fail on purpose.
    :param seed: seed of the emulator's random choices (faults, seeds of unseeded generations).
    :param state_file: SQLite file holding the state; ``None`` uses a temporary database.
    :param access_log: whether uvicorn logs every request.
    :param max_zip_bytes: largest ZIP a bulk upload may fetch.
    :param bulk_time_limit: time limit of a bulk upload's ZIP download, seconds.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_token: str | None = None
    training_seconds: float = DEFAULT_TRAINING_SECONDS
    job_seconds: float = DEFAULT_JOB_SECONDS
    fault_rate: float = 0.0
    seed: int | None = None
    state_file: str | None = None
    access_log: bool = False
    max_zip_bytes: int = DEFAULT_MAX_ZIP_MB * 1024 * 1024
    bulk_time_limit: float = BULK_TIME_LIMIT_SECONDS

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.fault_rate) <= 1.0:
            raise ValueError(f"fault_rate must be between 0 and 1, got {self.fault_rate!r}")
        if float(self.training_seconds) < 0 or float(self.job_seconds) < 0:
            raise ValueError("training_seconds and job_seconds must not be negative")
        if self.api_token is not None and not self.api_token.strip():
            raise ValueError("api_token must not be empty")

    def public(self) -> dict[str, Any]:
        """The settings as JSON, without the API token (only whether one is required)."""
        out = dataclasses.asdict(self)
        out.pop("api_token")
        out["token_required"] = self.api_token is not None
        return out
