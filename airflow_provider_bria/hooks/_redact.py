"""Keeping secrets and signatures out of exception text (shared by the sync and async hook paths)."""

from __future__ import annotations

import re

_QUERY = re.compile(r"\?[^\s'\")]*")
#: Exceptions whose text quotes a header value (requests/urllib3, h11/httpx): their text is never kept.
HEADER_ERRORS = frozenset({"InvalidHeader", "LocalProtocolError", "InvalidHeaderValue"})


def drop_queries(text: str) -> str:
    """Replace query strings in a text by ``?...`` (pre-signed URLs carry signatures there).

    :param text: the text.
    """
    return _QUERY.sub("?...", text)


def without_query(url: str | None) -> str | None:
    """A URL without its query string and fragment, for XCom and logs (pre-signed URLs sign in the query).

    :param url: the URL (``None`` passes through).
    """
    if not url:
        return url
    return str(url).split("#", 1)[0].split("?", 1)[0]


def scrub(text: str, secret: str | None) -> str:
    """Remove a secret from a text, also in the escaped forms ``repr`` and ``bytes`` give it.

    :param text: the text (an exception message).
    :param secret: the value to remove (``None``: nothing to remove).
    """
    if secret:
        for form in {secret, repr(secret)[1:-1], repr(secret.encode("utf-8", "replace"))[2:-1]}:
            text = text.replace(form, "***")
    return text


def transport_message(exc: BaseException, attempts: int, kind: str, secret: str | None) -> tuple[str, bool]:
    """The text of a :class:`BriaTransportError` for ``exc``, and whether ``exc`` may stay chained to it.

    Query strings are dropped (pre-signed URLs carry signatures there) and the token is scrubbed. An error
    that quotes header values (``InvalidHeader``, h11's ``LocalProtocolError``) is described by its type only
    and must not be chained: Airflow prints the chained exception's text, which its masker does not catch
    when it is escaped.

    :param exc: the transport exception.
    :param attempts: attempts made.
    :param kind: the failure kind (``connect``, ``timeout``...).
    :param secret: the api_token.
    """
    name = type(exc).__name__
    if name in HEADER_ERRORS:
        return f"{name} after {attempts} attempt(s) ({kind}): a request header was rejected (values not shown)", False
    text = scrub(drop_queries(f"{name} after {attempts} attempt(s) ({kind}): {exc}"), secret)
    return text, "***" not in text
