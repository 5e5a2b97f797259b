"""The proxy and CA-bundle settings the hook's ``requests`` session takes from the environment, read once.

A ``requests.Session`` that trusts the environment re-reads the proxy variables (and the proxy bypass list),
the CA-bundle variables and ``~/.netrc`` on every request: about a quarter of the generation operator's CPU
went there. The hook's session therefore sets ``trust_env = False`` and passes, with each request, what
:class:`RequestEnvironment` resolved once per origin, with the rules ``requests`` applies itself:

* proxies: ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` (any case), skipped for hosts in ``NO_PROXY``
  (:func:`requests.utils.get_environ_proxies`);
* certificates: ``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``, else the default bundle.

``~/.netrc`` is not read: its credentials would go out as an ``Authorization`` header next to the
``api_token``, to the API host and to the pre-signed storage URLs of downloads (which refuse a second
credential). The settings are read when the hook builds its session: a variable changed later applies to the
next hook (each task builds its own).
"""

from __future__ import annotations

import os
import threading
from urllib.parse import urlsplit

#: Origins whose proxy settings are remembered (pre-signed download URLs can name many storage hosts).
MAX_ORIGINS = 64


def ca_bundle_from_environment() -> bool | str:
    """The ``verify`` value ``requests`` would use: ``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``, else ``True``."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


class RequestEnvironment:
    """Proxies per origin and the CA bundle, as a ``trust_env`` session would read them for each request.

    Thread-safe: the generation and upload workers share one hook session.
    """

    def __init__(self) -> None:
        self.verify: bool | str = ca_bundle_from_environment()
        self._proxies: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def proxies_for(self, url: str) -> dict[str, str]:
        """The proxies for ``url`` (``{}`` when ``NO_PROXY`` covers its host), resolved once per origin.

        :param url: the request URL.
        """
        parts = urlsplit(url)
        key = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        found = self._proxies.get(key)
        if found is None:
            from requests.utils import get_environ_proxies

            found = dict(get_environ_proxies(url))
            with self._lock:
                if len(self._proxies) >= MAX_ORIGINS:
                    self._proxies.clear()
                self._proxies[key] = found
        return dict(found)
