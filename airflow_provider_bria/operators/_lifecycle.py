"""Small bases of the create (find-or-create) and delete operators: project, dataset, clone, model.

* :class:`BriaCreateOperatorBase`: a subclass builds a :class:`CreateSpec` (how to find the object by its
  natural key, how to create it, what makes an existing one unfit for reuse) and calls
  :meth:`~BriaCreateOperatorBase.find_or_create`, which runs :func:`~._reconcile.create_or_reuse` (itself on
  :func:`~._reconcile.apply_then_check`) with the operator's ``if_exists``, state store and reconcile delay;
* :class:`BriaDeleteOperatorBase`: ``execute`` deletes idempotently (:func:`~._reconcile.delete_idempotent`);
  a subclass names its id argument and its delete call.

Each subclass keeps its own ``__init__`` (its arguments are public API).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from airflow_provider_bria.contract import parse_enum
from airflow_provider_bria.exceptions import BriaConflictError
from airflow_provider_bria.operators._reconcile import (
    IF_EXISTS_REUSE,
    coerce_id,
    create_or_reuse,
    delete_idempotent,
    is_templated,
    object_id,
    reconcile_delay,
    state_store_from_context,
    validate_if_exists,
)
from airflow_provider_bria.operators.base import BriaBaseOperator


def enum_arg(value: Any, kind: type[enum.Enum], field: str) -> Any:
    """An enum argument as an operator keeps it: the member's value; a literal is checked now (parse time).

    :param value: a member, its value, or a template (checked in ``execute``).
    :param kind: the enum.
    :param field: the argument name, for the message.
    :raises BriaInputError: for a literal that is not a value of ``kind``.
    """
    if isinstance(value, kind):
        return value.value
    if value is not None and not is_templated(value):
        parse_enum(kind, value, field)
    return value


def refuse_if_different(existing: str, diffs: list[str], advice: str) -> None:
    """Refuse to reuse an existing object whose settings differ from the request.

    :param existing: the object, e.g. ``"Project 'x' already exists (id=3)"``.
    :param diffs: one phrase per differing setting (nothing to refuse when empty).
    :param advice: what to do instead.
    :raises BriaConflictError: when ``diffs`` is not empty.
    """
    if diffs:
        raise BriaConflictError(
            f"{existing} with different settings: {'; '.join(diffs)}. Refusing to reuse it: {advice}"
        )


class CreateSpec:
    """How one create operator finds, creates and vets its object.

    A plain class, not a ``NamedTuple`` (which compiles each string annotation when defined: ~0.2 ms in every
    forked DAG parse).

    :param what: the object for logs and errors (``"project 'x'"``).
    :param find: read-only lookup by natural key (the object or ``None``).
    :param create: the create call.
    :param check: raises to refuse an existing (or reconciled) object.
    """

    __slots__ = ("what", "find", "create", "check")

    def __init__(self, what: str, find: Callable[[], Mapping[str, Any] | None], create: Callable[[], Mapping[str, Any]],
                 check: Callable[[Mapping[str, Any]], None] | None = None) -> None:
        self.what, self.find, self.create, self.check = what, find, create, check


class BriaCreateOperatorBase(BriaBaseOperator):
    """Base of the find-or-create operators (see the module docstring).

    Subclasses set :attr:`state_key` and pass ``if_exists`` on.

    :param if_exists: ``"reuse"`` (default) returns an existing object; ``"fail"`` raises
        :class:`~airflow_provider_bria.exceptions.BriaConflictError`.
    """

    #: Key in the Airflow 3.3+ task state store under which the created object's id is recorded.
    state_key: ClassVar[str] = ""

    def __init__(self, *, if_exists: str = IF_EXISTS_REUSE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.if_exists = validate_if_exists(if_exists)

    def find_or_create(self, context: Any, spec: CreateSpec) -> tuple[dict[str, Any], bool, int]:
        """Find the object or create it exactly once; return ``(object, created, id)``.

        :param context: the task context (for the task state store).
        :param spec: how to find, create and vet the object.
        """
        obj, created = create_or_reuse(
            find=spec.find, create=spec.create, if_exists=self.if_exists, what=spec.what, log=self.log,
            check=spec.check, state_store=state_store_from_context(context), state_key=self.state_key,
            reconcile_delay=reconcile_delay(self),
        )
        return obj, created, object_id(obj, spec.what)


class BriaDeleteOperatorBase(BriaBaseOperator):
    """Base of the idempotent delete operators: a missing object counts as deleted unless ``missing_ok=False``.

    Subclasses set :attr:`id_argument`, :attr:`noun`, :attr:`delete_call` and :attr:`conflict_text` (or
    override :meth:`conflict_message`), and keep ``self.missing_ok``.
    """

    #: The operator argument holding the id (``"dataset_id"``); also the key of the returned dict.
    id_argument: ClassVar[str] = ""
    #: The object, capitalised, for log lines (``"Dataset"``).
    noun: ClassVar[str] = ""
    #: Logged after a delete, with the id.
    deleted_message: ClassVar[str] = "Deleted %s"
    #: The hook method that deletes (called with the id).
    delete_call: ClassVar[str] = ""
    #: Why a 409 refused the delete, formatted with ``id``.
    conflict_text: ClassVar[str] = ""
    missing_ok: bool

    def conflict_message(self, object_id: int) -> str:
        """Why a 409 refused the delete (an override may read the object to say more; it must not raise).

        :param object_id: the id.
        """
        return self.conflict_text.format(id=object_id)

    def execute(self, context: Any) -> dict[str, Any]:
        """Delete the object; return ``{<id argument>: id, "deleted": bool}``."""
        ident = coerce_id(getattr(self, self.id_argument), self.id_argument)
        deleted = delete_idempotent(
            lambda: getattr(self.hook, self.delete_call)(ident), f"{self.noun} {ident}", missing_ok=self.missing_ok,
            conflict_message=lambda: self.conflict_message(ident), log=self.log,
        )
        if deleted:
            self.log.info(self.deleted_message, ident)
        return {self.id_argument: ident, "deleted": deleted}
