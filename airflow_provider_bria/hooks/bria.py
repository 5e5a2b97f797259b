"""The Bria hook: one typed method per Tailored Generation API operation, sync on ``requests`` and async
(for triggers) on ``httpx``, with a single retry policy and precise exceptions.

The API methods live in mixins by area (``_api_projects``, ``_api_datasets``, ``_api_images`` joined in
``_api_data``; ``_api_schema`` and ``_api_models``; ``_api_generation``; ``_download``; ``_connection_check``;
``_async``); this module holds the connection handling and the sync transport. Importing it performs no I/O and does not
import ``requests``, the emulator or FastAPI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_bria import __version__
from airflow_provider_bria._compat import BaseHook
from airflow_provider_bria.contract import API_TOKEN_HEADER
from airflow_provider_bria.exceptions import (
    AirflowNotFoundException,
    BriaInputError,
    BriaTransportError,
    build_api_error,
)
from airflow_provider_bria.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_bria.hooks import DEFAULT_CONN_NAME
from airflow_provider_bria.hooks._api_data import BriaDataApiMixin
from airflow_provider_bria.hooks._api_generation import BriaGenerationApiMixin
from airflow_provider_bria.hooks._api_models import BriaModelApiMixin
from airflow_provider_bria.hooks._async import BriaAsyncMixin, decode_body
from airflow_provider_bria.hooks._connection import (
    BriaConnectionSettings,
    Origin,
    connection_not_found,
    parse_timeout,
    settings_for_connection,
)
from airflow_provider_bria.hooks._connection_check import BriaConnectionCheckMixin
from airflow_provider_bria.hooks._download import MAX_REDIRECTS, BriaDownloadMixin  # noqa: F401 (old import path)
from airflow_provider_bria.hooks._inputs import EncodedJSON
from airflow_provider_bria.hooks._redact import HEADER_ERRORS, drop_queries, transport_message
from airflow_provider_bria.hooks._retry import (
    AMBIGUOUS,
    RetryPolicy,
    build_retrying,
    call_with_retries,
    classify_exception,
    classify_status,
    is_transport_exception,
    parse_retry_after,
    retry_mode,
)

if TYPE_CHECKING:
    import requests
    from tenacity import Retrying

    from airflow_provider_bria.hooks._environment import RequestEnvironment

USER_AGENT = f"airflow-provider-bria/{__version__}"
def mask(secret: str) -> None:
    """Register a secret with Airflow's secrets masker (guarded across Airflow versions).

    :param secret: the value to redact from logs.
    """
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - Airflow < 3.3
        try:
            from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]
        except ImportError:
            from airflow.utils.log.secrets_masker import mask_secret  # type: ignore[no-redef]
    mask_secret(secret)


class BriaHook(
    BriaDataApiMixin,
    BriaModelApiMixin,
    BriaGenerationApiMixin,
    BriaDownloadMixin,
    BriaConnectionCheckMixin,
    BriaAsyncMixin,
    BaseHook,
):
    """Interact with Bria.ai's Tailored Generation API.

    Connection (type ``bria``): host = API base URL (default ``https://engine.prod.bria-api.com``; a full
    URL, or a bare host with schema/port fields), password = ``api_token`` (fallback: extra ``api_token``),
    extras ``console_url`` and ``timeout``. Every request sends the ``api_token`` header and
    ``User-Agent: airflow-provider-bria/<version>``.

    Retries: GET/PUT/DELETE and read-only POST helpers are retried on 429, 5xx, connection errors and
    timeouts; other POSTs only on 429 and on connections that were never established (so no duplicate is
    ever created). Backoff is exponential with jitter, at least ``Retry-After``.

    :param bria_conn_id: Airflow connection id.
    :param timeout: read timeout in seconds (default: extra ``timeout``, else 60); connect timeout is 10 s.
    :param retry_limit: retries after the first attempt (0 disables).
    :param retry_delay: base delay of the exponential backoff, in seconds.
    :param retry_max_delay: cap of the backoff, in seconds.
    """

    conn_name_attr = "bria_conn_id"
    default_conn_name = DEFAULT_CONN_NAME
    conn_type = "bria"
    hook_name = "Bria"

    def __init__(
        self,
        bria_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        retry_limit: int = 5,
        retry_delay: float = 1.0,
        retry_max_delay: float = 30.0,
    ) -> None:
        super().__init__()
        if not isinstance(bria_conn_id, str) or not bria_conn_id.strip():
            raise BriaInputError(f"bria_conn_id must be a non-empty string, got {bria_conn_id!r}")
        self.bria_conn_id = bria_conn_id
        self.timeout = parse_timeout(timeout, source="timeout") if timeout is not None else None
        self.retry_policy = RetryPolicy(
            retry_limit=retry_limit, retry_delay=retry_delay, retry_max_delay=retry_max_delay
        )
        self._settings: BriaConnectionSettings | None = None
        self._session: requests.Session | None = None
        self._environment: RequestEnvironment | None = None
        self._async_client = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bria_conn_id={self.bria_conn_id!r})"

    # ------------------------------------------------------------------ connection

    @property
    def settings(self) -> BriaConnectionSettings:
        """Resolved connection settings (looked up once; the token is registered with the secrets masker)."""
        if self._settings is None:
            try:
                conn = self.get_connection(self.bria_conn_id)
            except AirflowNotFoundException as err:
                raise connection_not_found(self.bria_conn_id, err) from None
            settings = settings_for_connection(conn, timeout=self.timeout, conn_id=self.bria_conn_id)
            mask(settings.token)
            self._settings = settings
            self.retry_policy.use_connection_budget(settings.retry_budget)
        return self._settings

    @property
    def base_url(self) -> str:
        """API base URL, no trailing slash."""
        return self.settings.base_url

    @property
    def console_url(self) -> str:
        """Bria console base URL (extra ``console_url``, default ``https://platform.bria.ai``)."""
        return self.settings.console_url

    @property
    def user_agent(self) -> str:
        """The ``User-Agent`` sent with every request."""
        return USER_AGENT

    def _user_agent_headers(self) -> dict[str, str]:
        return {"User-Agent": USER_AGENT, "Accept": "application/json"}

    def _api_origin(self) -> Origin:
        return self.settings.origin

    def get_conn(self) -> requests.Session:
        """Return the hook's ``requests.Session`` (created on first use; the token is sent per request).

        The session does not read the environment per request (``trust_env`` is off): the proxies and CA bundle
        requests would take from it are resolved once and passed with each request (see
        :mod:`~airflow_provider_bria.hooks._environment`); ``~/.netrc`` is not used.
        """
        if self._session is None:
            import requests
            from requests.adapters import HTTPAdapter

            settings = self.settings  # resolve (and validate) the connection first
            del settings
            session = requests.Session()
            session.trust_env = False
            session.headers.update(self._user_agent_headers())
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._environment = self._new_environment()
            self._session = session
        return self._session

    @staticmethod
    def _new_environment() -> RequestEnvironment:
        from airflow_provider_bria.hooks._environment import RequestEnvironment

        return RequestEnvironment()

    def close(self) -> None:
        """Close the sync session (the async client is closed by :meth:`aclose`)."""
        session, self._session = self._session, None
        self._environment = None
        if session is not None:
            session.close()

    def __enter__(self) -> BriaHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    @staticmethod
    def _sanitize(text: str) -> str:
        """Drop query strings from exception text (pre-signed URLs carry signatures there)."""
        return drop_queries(text)

    def _resolve_url(self, settings: BriaConnectionSettings, path: str) -> tuple[str, str]:
        """Return ``(url, shown_path)`` for an API path or an absolute URL with the API's origin.

        The URL is rebuilt as configured origin + path + query (see
        :meth:`~airflow_provider_bria.hooks._connection.BriaConnectionSettings.api_url`).

        :param settings: the connection settings.
        :param path: ``/v1/...`` path or absolute URL.
        :raises BriaInputError: for an absolute URL with another origin (host, port or scheme: the token must
            not go to another host, nor over plain HTTP when the API is configured as HTTPS), a URL parsers
            could read differently, or an unsafe path.
        """
        return settings.api_url(path)

    def _send(
        self,
        method: str,
        url: str,
        shown: str,
        *,
        retry: bool | None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> tuple[requests.Response, list[str | None]]:
        """Send with the retry policy; return the final response and the failure kind of each attempt."""
        session = self.get_conn()
        environment = self._environment or self._new_environment()  # None only after a concurrent close()
        settings = self.settings
        timeout = (settings.connect_timeout, settings.read_timeout)
        history: list[str | None] = []
        proxies, verify = environment.proxies_for(url), environment.verify

        def attempt() -> requests.Response:
            try:
                response = session.request(
                    method, url, headers=dict(headers or {}), timeout=timeout, stream=stream,
                    allow_redirects=False, proxies=proxies, verify=verify, **kwargs,
                )
            except Exception as exc:
                history.append(classify_exception(exc))
                raise
            history.append(classify_status(response.status_code))
            return response

        mode = retry_mode(method, retry)
        policy = self.retry_policy

        def retrying() -> Retrying:
            return build_retrying(policy, mode=mode, method=method, path=shown, logger=self.log,
                                  on_discard=lambda r: r.close())

        try:
            response = call_with_retries(attempt, policy, mode, retrying)
        except Exception as exc:
            if is_transport_exception(exc) or type(exc).__name__ in HEADER_ERRORS:
                kind = classify_exception(exc) or "fatal"
                text, chain = transport_message(exc, len(history), kind, settings.token)
                error = BriaTransportError(text, method=method, path=shown)
                if chain:
                    raise error from exc
                raise error from None
            raise
        return response, history

    def _request_with_status(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        files: Any = None,
        retry: bool | None = None,
        expected: tuple[int, ...] | None = None,
    ) -> tuple[int, Any]:
        """Like :meth:`request`, returning ``(status_code, decoded_body)``."""
        method = method.upper()
        settings = self.settings
        url, shown = self._resolve_url(settings, path)
        headers = {API_TOKEN_HEADER: settings.token}
        if isinstance(json, EncodedJSON):  # a body encoded by the caller: sent as is
            headers["Content-Type"] = "application/json"
            json, data = None, json
        response, history = self._send(
            method, url, shown, retry=retry, headers=headers, json=json, params=params, data=data, files=files,
        )
        status = response.status_code
        body = decode_body(response.content)
        if 200 <= status < 300 or status in (expected or ()):
            return status, body
        if method == "DELETE" and status == 404 and AMBIGUOUS in history[:-1]:
            # An earlier attempt failed ambiguously and evidently went through: the object is gone.
            self.log.info("Bria API DELETE %s: already deleted by an earlier attempt", shown)
            return 204, None
        raise build_api_error(
            status,
            body,
            reason=response.reason or "",
            method=method,
            path=shown,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        files: Any = None,
        retry: bool | None = None,
        expected: tuple[int, ...] | None = None,
    ) -> Any:
        """Call the API and return the decoded JSON body (``None`` for 204/empty, text if not JSON).

        :param method: HTTP method.
        :param path: path under the base URL (``/v1/tailored-gen/...``), or an absolute URL with the API origin
            (same scheme, host and port).
        :param json: JSON body.
        :param params: query parameters.
        :param data: form fields (multipart uploads).
        :param files: multipart files.
        :param retry: ``None``: GET/PUT/DELETE retried on 429/5xx/connection errors/timeouts, POST only on 429
            and never-established connections; ``True``: retry like a read (read-only POSTs); ``False``: never.
        :param expected: non-2xx status codes to return instead of raising (2xx always succeed).
        :raises BriaAPIError: subclass by HTTP status, with the server's message and request id.
        :raises BriaTransportError: when no response arrived (after retries); the cause is chained.
        """
        _, body = self._request_with_status(
            method, path, json=json, params=params, data=data, files=files, retry=retry, expected=expected
        )
        return body

    # ------------------------------------------------------------------ connection UX

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form behaviour for Airflow <= 3.1 (3.2+ reads ``ui-field-behaviour`` from provider info)."""
        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra connection form fields for Airflow <= 3.1 (3.2+ reads ``conn-fields`` from provider info).

        Built from ``get_provider_info.CONN_FIELDS`` so both stay identical. Returns ``{}`` when Flask
        AppBuilder / wtforms are not installed (they are optional in Airflow 3).
        """
        try:
            from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
            from flask_babel import lazy_gettext
            from wtforms import StringField
            from wtforms.validators import Optional
        except ImportError:
            return {}
        return {
            name: StringField(
                lazy_gettext(spec["label"]),
                widget=BS3TextFieldWidget(),
                description=spec.get("description", ""),
                validators=[Optional()],
            )
            for name, spec in CONN_FIELDS.items()
        }
