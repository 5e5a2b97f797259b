"""Downloads of generated files and pre-signed URLs, and the tags that let a saved URL get the token back,
as methods of :class:`~airflow_provider_bria.hooks.bria.BriaHook`.

The ``api_token`` goes only to the configured API origin; redirects are followed by hand so that no hop after
the chain has left that origin gets it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from airflow_provider_bria.contract import API_TOKEN_HEADER
from airflow_provider_bria.exceptions import BriaInputError, BriaTransportError, build_api_error
from airflow_provider_bria.hooks._async import decode_body
from airflow_provider_bria.hooks._base import HookSurface
from airflow_provider_bria.hooks._connection import is_absolute, safe_path, strict_split
from airflow_provider_bria.hooks._retry import parse_retry_after

if TYPE_CHECKING:
    import requests

#: Redirects :meth:`BriaDownloadMixin.open_download` follows before giving up.
MAX_REDIRECTS = 5


class BriaDownloadMixin(HookSurface):
    """Result URL tags and streamed downloads. Mixed into :class:`~airflow_provider_bria.hooks.bria.BriaHook`."""

    def url_tag(self, url: str) -> str:
        """A keyed digest of a result URL, saved next to it so a later try can tell it wrote the URL itself.

        A URL read back from an output folder may get the ``api_token`` (when it is on the API origin) only if
        its tag matches: anyone who can write to a shared output prefix could otherwise pick the API path the
        token is sent to. The tag is an HMAC keyed by the token; it does not reveal the token.

        :param url: the result URL.
        """
        key = self.settings.token.encode("utf-8")
        return hmac.new(key, b"bria-result-url\0" + str(url).encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def trusts_url(self, url: str, tag: Any) -> bool:
        """Whether ``tag`` is :meth:`url_tag` of ``url`` (constant-time comparison).

        :param url: a URL read back from a file.
        :param tag: the tag saved with it (anything: files are data).
        """
        return isinstance(tag, str) and hmac.compare_digest(tag, self.url_tag(url))

    def open_download(self, url: str, *, trusted: bool = True) -> requests.Response:
        """Open a generated file or pre-signed URL for streaming (``stream=True``; the caller closes it).

        A relative URL is joined to the API base URL. The ``api_token`` header goes only to the API's own
        origin (same scheme, host and port; the URL is rebuilt from the configured origin), never to other
        hosts (pre-signed URLs) nor over plain HTTP to an HTTPS API host. Redirects are followed manually:
        once a redirect has left the API origin, no later hop gets the token, even one back on the API host.
        URLs that parsers could read differently (backslash or ``@`` in the host part, whitespace or control
        characters) are refused before any request.

        :param url: absolute URL (any host; the token only goes to the API origin) or a path under the base URL.
        :param trusted: ``False`` for a URL read back from a file without a valid :meth:`url_tag`: it never
            gets the token, whatever its host.
        :raises BriaInputError: for a malformed or ambiguous URL (also in a redirect's ``Location``).
        :raises BriaAPIError: on an error status (the response is closed first).
        """
        settings = self.settings
        target = str(url or "").strip()
        if not target:
            raise BriaInputError("open_download needs a URL")
        if not is_absolute(target):
            if not trusted:
                raise BriaInputError("open_download needs an absolute URL for an untrusted (saved) URL")
            target = settings.base_url + safe_path(target if target.startswith("/") else "/" + target,
                                                   what="download path")
        authenticated = trusted
        for _ in range(MAX_REDIRECTS + 1):
            parts = strict_split(target, what="Download URL")
            shown = parts.path or "/"
            if authenticated and settings.is_api_origin(target):
                target, shown = settings.api_url(target)
                headers = {API_TOKEN_HEADER: settings.token}
            else:
                authenticated = False  # left the API origin: the rest of the chain is someone else's
                headers = {"Accept": "*/*"}
            response, _ = self._send("GET", target, shown, retry=None, headers=headers, stream=True)
            if response.is_redirect and response.headers.get("Location"):
                target = urljoin(target, response.headers["Location"])
                response.close()
                continue
            if 200 <= response.status_code < 300:
                return response
            try:
                body = decode_body(response.content[:4096])
            finally:
                response.close()
            raise build_api_error(
                response.status_code, body, reason=response.reason or "", method="GET", path=shown,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        raise BriaTransportError(f"Too many redirects (> {MAX_REDIRECTS})", method="GET", path=urlsplit(target).path)
