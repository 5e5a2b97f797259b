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
#: Overall time limit of one outbound fetch (image_url, helper image URLs; connect + redirects + body), seconds.
FETCH_TIMEOUT_SECONDS = 30.0
#: Largest request body accepted, MiB (413 above it; by Content-Length and by the bytes actually received).
DEFAULT_MAX_BODY_MB = 64
#: Largest image, in pixels, decoded from an upload or a ZIP entry (a decompression bomb is refused before decoding).
MAX_IMAGE_PIXELS = 50_000_000
#: Deepest JSON nesting accepted in a request body (deeper: 400, never a 500).
MAX_JSON_DEPTH = 64
#: Values of ``--path-variants``.
PATH_VARIANTS = ("both", "documented", "alternate")
#: Host names always accepted in the ``Host`` header (with any port); ``--allowed-host`` adds more.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
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
    :param fetch_timeout: overall time limit of one image URL fetch, seconds.
    :param allow_private_fetch: whether ``image_url``/``zip_url`` may point to private or loopback addresses.
    :param max_body_bytes: largest request body accepted (413 above it).
    :param allowed_hosts: extra ``Host`` header names accepted besides loopback names and ``host``.
    :param retry_after: send ``Retry-After`` on injected 429s (Bria documents none; off by default).
    :param strict_limits: enforce Bria's word-count guidance (``ip_name`` 1-3, ``ip_description`` <= 6 words).
    :param path_variants: which spellings of the two paths Bria documents two ways are served:
        ``"both"`` (default), ``"documented"`` (the endpoint references: ``/images/bulk-upload``,
        ``/v1/datasets/{id}/download``) or ``"alternate"`` (``/images/bulk``,
        ``/v1/tailored-gen/datasets/{id}/download``), so a client's fallback can be tested both ways.
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
    fetch_timeout: float = FETCH_TIMEOUT_SECONDS
    allow_private_fetch: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_MB * 1024 * 1024
    allowed_hosts: tuple[str, ...] = ()
    retry_after: bool = False
    strict_limits: bool = False
    path_variants: str = "both"

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.fault_rate) <= 1.0:
            raise ValueError(f"fault_rate must be between 0 and 1, got {self.fault_rate!r}")
        if float(self.training_seconds) < 0 or float(self.job_seconds) < 0:
            raise ValueError("training_seconds and job_seconds must not be negative")
        if self.path_variants not in PATH_VARIANTS:
            raise ValueError(f"path_variants must be one of {PATH_VARIANTS}, got {self.path_variants!r}")
        if self.api_token is not None and not self.api_token.strip():
            raise ValueError("api_token must not be empty")

    def fetch_policy(self, *, timeout: float | None = None) -> Any:
        """The :class:`~airflow_provider_bria.emulator.fetch.FetchPolicy` of outbound fetches.

        :param timeout: overall seconds (``fetch_timeout`` when ``None``).
        """
        from airflow_provider_bria.emulator.fetch import FetchPolicy

        seconds = self.fetch_timeout if timeout is None else timeout
        return FetchPolicy(timeout=seconds, allow_private=self.allow_private_fetch)

    def host_allowed(self, host_header: str) -> bool:
        """Whether a ``Host`` header names this emulator (DNS-rebinding defence).

        :param host_header: the header value (``name``, ``name:port``, ``[v6]:port``).
        """
        value = host_header.strip().lower()
        if value.startswith("["):
            name = value[1 : value.find("]")] if "]" in value else ""
        else:
            name = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
        allowed = {*LOOPBACK_HOSTS, self.host.lower(), *(h.lower() for h in self.allowed_hosts)}
        return bool(name) and name in allowed

    def public(self) -> dict[str, Any]:
        """The settings as JSON, without the API token (only whether one is required)."""
        out = dataclasses.asdict(self)
        out.pop("api_token")
        out["token_required"] = self.api_token is not None
        return out
