"""Shared base class of every Bria operator: connection id, lazily built hook, hook parameters.

It is also the one place where a failure is classified for Airflow's retries: errors a retry cannot fix
(:class:`~airflow_provider_bria.exceptions.BriaNonRetryableError`) end the task at once, and a 404 on an id
the user gave (an operator argument, maybe rendered from a Param) becomes
:class:`~airflow_provider_bria.exceptions.BriaUserIdNotFoundError`, naming the argument and the Param.
Everything else keeps Airflow's retries.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_bria.contract import DEFAULT_CONN_NAME
from airflow_provider_bria.exceptions import (
    BriaInputError,
    BriaNonRetryableError,
    BriaNotFoundError,
    BriaUserIdNotFoundError,
)

if TYPE_CHECKING:
    from airflow_provider_bria.hooks.bria import BriaHook


def lazy_reexports(source: str, names: Iterable[str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that re-exports ``names`` of module ``source`` on first access.

    An operator module keeps names it has always exported (``from ...operators.upload import XCOM_SUMMARY_KEY``)
    without importing their module when a DAG file is parsed; list them in ``__all__`` and under
    ``TYPE_CHECKING`` too.

    :param source: the module that defines the names.
    :param names: the names re-exported.
    """
    wanted = frozenset(names)

    def __getattr__(name: str) -> Any:  # noqa: N807 (a module __getattr__)
        if name in wanted:
            import importlib

            return getattr(importlib.import_module(source), name)
        raise AttributeError(f"module has no attribute {name!r}")

    return __getattr__


#: Operator arguments holding ids of Bria objects, by the path segment of the object's collection.
_ID_ARGUMENTS: dict[str, str] = {
    "project_id": "projects",
    "dataset_id": "datasets",
    "source_dataset_id": "datasets",
    "model_id": "models",
    "image_id": "images",
}


class Number:
    """How a numeric argument that may be a template is checked: ``int`` or ``float``, inclusive bounds.

    ``optional`` accepts ``None`` (and an empty rendered string) as "not set". A plain immutable class with
    ``NamedTuple``'s constructor, fields, equality and repr: a ``NamedTuple`` compiles each string annotation when it
    is defined, which every forked parse of a DAG file would pay.
    """

    __slots__ = ("kind", "minimum", "maximum", "optional", "exclusive_minimum")
    _fields = __slots__

    kind: type
    minimum: float | None
    maximum: float | None
    optional: bool
    exclusive_minimum: bool

    def __init__(self, kind: type, minimum: float | None = None, maximum: float | None = None,
                 optional: bool = False, exclusive_minimum: bool = False) -> None:
        for name, value in zip(self._fields, (kind, minimum, maximum, optional, exclusive_minimum), strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Number is immutable: cannot set {name!r}")

    def _astuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __reduce__(self) -> tuple[type[Number], tuple[Any, ...]]:
        return Number, self._astuple()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Number) and self._astuple() == other._astuple()

    def __hash__(self) -> int:
        return hash(self._astuple())

    def __repr__(self) -> str:
        return "Number(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields) + ")"


def is_template(value: Any) -> bool:
    """Whether an argument is a Jinja template string (rendered when the task runs)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def coerce_number(value: Any, name: str, spec: Number) -> Any:
    """Check a numeric argument (literal, or the text a template rendered to) and return the number.

    :param value: the value (``"4"`` from a template is accepted).
    :param name: the argument name, for the message.
    :param spec: kind and bounds.
    :raises BriaInputError: naming the argument when it is not a number in range.
    """
    if spec.optional and (value is None or (isinstance(value, str) and not value.strip())):
        return None
    if isinstance(value, timedelta) and spec.kind is float:
        value = value.total_seconds()
    what = "an integer" if spec.kind is int else "a number"
    number: float | int
    if isinstance(value, bool):
        raise BriaInputError(f"{name} must be {what}, got {value!r}")
    try:
        if isinstance(value, str):
            text = value.strip()
            number = int(text) if spec.kind is int else float(text)
        elif spec.kind is int and isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, int) or (spec.kind is float and isinstance(value, float)):
            number = spec.kind(value)
        else:
            raise ValueError
    except (TypeError, ValueError):
        hint = " (it is templated: check what the template rendered)" if isinstance(value, str) else ""
        raise BriaInputError(f"{name} must be {what}, got {value!r}{hint}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise BriaInputError(f"{name} must be a finite number, got {value!r}")
    low = spec.minimum
    if low is not None and (number <= low if spec.exclusive_minimum else number < low):
        bound = "a positive number" if spec.exclusive_minimum and low == 0 else (
            f"> {low:g}" if spec.exclusive_minimum else f">= {low:g}")
        raise BriaInputError(f"{name} must be {bound}, got {value!r}")
    if spec.maximum is not None and number > spec.maximum:
        raise BriaInputError(f"{name} must be at most {spec.maximum:g}, got {number!r}")
    return number


#: How a template refers to a Param; compiled on first use (``re`` caches it), not when a DAG file is parsed.
_PARAM_REF = r"params(?:\.(\w+)|\[\s*['\"]([^'\"]+)['\"]\s*\])"


def params_in(template: Any) -> list[str]:
    """Names of the Params a template string refers to (``params.x`` or ``params['x']``), in order.

    :param template: an operator argument as given to the constructor (before rendering).
    """
    if not isinstance(template, str):
        return []
    return list(dict.fromkeys(a or b for a, b in re.findall(_PARAM_REF, template)))


def _path_ids(path: str | None) -> Iterator[tuple[str, str]]:
    segments = [s for s in (path or "").split("?")[0].split("/") if s]
    for i, segment in enumerate(segments[:-1]):
        yield segment, segments[i + 1]


class BriaBaseOperator(BaseOperator):
    """Base class of Bria operators.

    Failures a retry cannot fix end the task without Airflow retries: input errors, connection
    configuration errors, authentication errors (401/403), validation answers (400/412/413/415/422) and a
    404 on an id given as an argument (``project_id``, ``dataset_id``, ``model_id``...). Transient or
    ambiguous failures (5xx, 429, 409, timeouts, a 404 on an id the provider derived) keep retrying.

    :param bria_conn_id: Airflow connection id of type ``bria`` (templated).
    :param hook_params: extra keyword arguments for :class:`~airflow_provider_bria.hooks.bria.BriaHook`
        (``timeout``, ``retry_limit``, ``retry_delay``...).
    """

    template_fields: Sequence[str] = ("bria_conn_id",)
    #: Numeric arguments that may be templates (e.g. ``"{{ params.images }}"``): each is a template field,
    #: checked at construction when literal, and rendered then converted (with an error naming it) before
    #: ``execute`` otherwise.
    template_numbers: ClassVar[Mapping[str, Number]] = {}
    ui_color = "#e8e0ff"

    def __init__(
        self,
        *,
        bria_conn_id: str = DEFAULT_CONN_NAME,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bria_conn_id = bria_conn_id
        self.hook_params = hook_params or {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.template_numbers:
            cls.template_fields = tuple(dict.fromkeys((*cls.template_fields, *cls.template_numbers)))
        execute = cls.__dict__.get("execute")
        if execute is not None and not getattr(execute, "_bria_classified", False):
            cls.execute = _classified(execute)  # type: ignore[method-assign]

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        """Resume after a deferral; failures are classified as in ``execute``."""
        with self._classifying_failures():
            self._coerce_numbers()
            return super().resume_execution(next_method, next_kwargs, context)

    @contextmanager
    def _classifying_failures(self) -> Iterator[None]:
        """Re-raise a 404 on a user-given id as non-retryable; name the Param behind an input error."""
        try:
            yield
        except BriaNotFoundError as err:
            self._reraise_not_found(err)
            raise
        except BriaInputError as err:
            self._name_params(err)
            raise

    @cached_property
    def hook(self) -> BriaHook:
        """The hook, built on first use (no I/O at construction; its module is imported here, not at parse)."""
        from airflow_provider_bria.hooks.bria import BriaHook

        return BriaHook(bria_conn_id=self.bria_conn_id, **self.hook_params)

    def number_arg(self, name: str, value: Any) -> Any:
        """A numeric argument as the constructor keeps it: a template as given, a literal checked.

        :param name: the argument (a key of :attr:`template_numbers`).
        :param value: the value given.
        """
        return value if is_template(value) else coerce_number(value, name, self.template_numbers[name])

    def _coerce_numbers(self) -> None:
        """Convert every rendered numeric argument (before ``execute``), naming the argument on error."""
        for name, spec in self.template_numbers.items():
            setattr(self, name, coerce_number(getattr(self, name), name, spec))

    def _reserve_link_xcoms(self, context: Any) -> None:
        """Push an empty URL for each of the operator's console links before any work.

        Airflow resolves extra links when a task ends, failed ones included; a link whose XCom was never
        pushed makes the task log an "XCom not found" error. An empty URL shows no link and logs nothing; the
        operator overwrites it with the real URL once it knows the object.
        """
        ti = context.get("ti") if isinstance(context, Mapping) else None
        if ti is None or not hasattr(ti, "xcom_push"):
            return
        for link in self.operator_extra_links:
            key = getattr(link, "url_key", None)
            if key:
                ti.xcom_push(key=key, value="")

    # ------------------------------------------------------------------ classification

    def _source_params(self, argument: str) -> list[str]:
        """The Params the unrendered ``argument`` refers to (empty when it was a literal)."""
        init_kwargs = getattr(self, "_BaseOperator__init_kwargs", None) or {}
        return params_in(init_kwargs.get(argument))

    def _classify(self, err: BriaNotFoundError) -> BriaNotFoundError:
        """``err`` as a non-retryable 404 when its path holds an id the user gave, else ``err`` itself."""
        if isinstance(err, BriaNonRetryableError):
            return err
        for collection, value in _path_ids(err.path):
            for argument, expected in _ID_ARGUMENTS.items():
                given = getattr(self, argument, None)
                if expected != collection or given is None or isinstance(given, bool) or str(given).strip() != value:
                    continue
                params = self._source_params(argument)
                source = f"argument {argument}={value}"
                if params:
                    source += f" (from Param {', '.join(repr(p) for p in params)})"
                return BriaUserIdNotFoundError(
                    f"{source}: {err.message} (a retry cannot make it exist; check the id)",
                    argument=argument, status_code=err.status_code, request_id=err.request_id,
                    details=err.details, code=err.code, method=err.method, path=err.path, errors=err.errors,
                )
        return err

    def _reraise_not_found(self, err: BriaNotFoundError) -> None:
        """Raise the non-retryable form of ``err`` when it is about a user-given id; return otherwise."""
        classified = self._classify(err)
        if classified is not err:
            raise classified from err

    def _name_params(self, err: BriaInputError) -> None:
        """Append the Param an argument came from to an input error's message that names the argument."""
        text = str(err)
        notes = []
        for argument in self.template_fields:
            params = self._source_params(argument)
            if params and re.search(rf"\b{re.escape(argument)}\b", text):
                notes.append(f"{argument} came from Param {', '.join(repr(p) for p in params)}")
        if notes and len(err.args) == 1 and isinstance(err.args[0], str):
            err.args = (f"{text} ({'; '.join(notes)})",)


def _classified(execute: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an operator's ``execute`` so its failures are classified for Airflow's retries."""

    @functools.wraps(execute)
    def wrapper(self: BriaBaseOperator, *args: Any, **kwargs: Any) -> Any:
        self._reserve_link_xcoms(args[0] if args else kwargs.get("context"))
        with self._classifying_failures():
            self._coerce_numbers()
            return execute(self, *args, **kwargs)

    wrapper._bria_classified = True  # type: ignore[attr-defined]
    return wrapper
