"""What the hook's API mixins share: the transport surface :class:`~airflow_provider_bria.hooks.bria.BriaHook`
provides (declared for type checkers only) and the helpers that turn decoded bodies into typed results.

The results stay plain dicts at run time (the server may add fields); their static types are the
``TypedDict`` shapes of :mod:`airflow_provider_bria.results`, so a DAG author's type checker sees the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from airflow_provider_bria.exceptions import BriaConflictError

if TYPE_CHECKING:
    import requests

    from airflow_provider_bria.hooks._connection import BriaConnectionSettings, Origin

_LIST_KEYS = ("items", "data", "results", "projects", "datasets", "models", "images")

#: A result shape (a ``TypedDict`` of :mod:`airflow_provider_bria.results`, or a plain dict).
ResultT = TypeVar("ResultT", bound=Mapping[str, object])


def as_list(body: Any) -> list[dict[str, Any]]:
    """Return a list body as a list of dicts (a bare array is documented; a wrapper object is tolerated).

    :param body: the decoded body.
    """
    if body is None:
        return []
    if isinstance(body, list):
        return [dict(item) for item in body if isinstance(item, Mapping)]
    if isinstance(body, Mapping):
        for key in _LIST_KEYS:
            if isinstance(body.get(key), list):
                return [dict(item) for item in body[key] if isinstance(item, Mapping)]
    return []


def as_dict(body: Any) -> dict[str, Any]:
    """Return an object body as a dict (``{}`` for an empty body).

    :param body: the decoded body.
    """
    return dict(body) if isinstance(body, Mapping) else {}


def as_result(body: Any, shape: type[ResultT]) -> ResultT:
    """Return an object body as a dict typed as ``shape`` (a plain dict at run time: no field is checked).

    :param body: the decoded body.
    :param shape: the result's ``TypedDict``.
    """
    return cast(ResultT, as_dict(body))


def as_results(body: Any, shape: type[ResultT]) -> list[ResultT]:
    """Return a list body as dicts typed as ``shape`` (see :func:`as_list`).

    :param body: the decoded body.
    :param shape: the items' ``TypedDict``.
    """
    return cast(list[ResultT], as_list(body))


def single_match(items: list[ResultT], what: str) -> ResultT | None:
    """Return the only item, ``None`` when empty, or raise :class:`BriaConflictError` when ambiguous.

    :param items: the matching objects.
    :param what: a description for the message.
    """
    if not items:
        return None
    if len(items) > 1:
        ids = sorted(str(i.get("id")) for i in items)
        raise BriaConflictError(f"{len(items)} {what} match (ids {', '.join(ids)}); cannot pick one safely")
    return items[0]


def flag(value: bool) -> str:
    """A boolean as Bria's query and form fields spell it (``true``/``false``).

    :param value: the boolean.
    """
    return "true" if value else "false"


class HookSurface:
    """The parts of :class:`~airflow_provider_bria.hooks.bria.BriaHook` the API mixins call.

    Declared for type checkers only: at run time every one of them is the hook's own.
    """

    if TYPE_CHECKING:

        @property
        def log(self) -> Any: ...

        @property
        def settings(self) -> BriaConnectionSettings: ...

        @property
        def base_url(self) -> str: ...

        def _api_origin(self) -> Origin: ...

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
        ) -> tuple[requests.Response, list[str | None]]: ...

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
        ) -> tuple[int, Any]: ...

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
        ) -> Any: ...
