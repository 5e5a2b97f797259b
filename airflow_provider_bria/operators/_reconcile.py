"""Find-or-create with reconciliation after ambiguous failures: the idempotency core of the create operators.

Bria has no idempotency keys, and a ``POST`` that times out, drops its connection or gets a 5xx may or may
not have created the object. So every create operator follows one protocol, implemented here once:

1. Look the object up by its natural key (project name; dataset name within a project; model name within a
   dataset). If it exists: ``if_exists="reuse"`` returns it (after an optional compatibility check that
   refuses to reuse an object with different settings); ``if_exists="fail"`` raises
   :class:`~airflow_provider_bria.exceptions.BriaConflictError`, unless the task state store records that an
   earlier try of *this* task instance created it (so ``fail`` stays safe under Airflow retries).
2. Otherwise create it once.
3. After an *ambiguous* failure (:class:`~airflow_provider_bria.exceptions.BriaServerError` or
   :class:`~airflow_provider_bria.exceptions.BriaTransportError`) look again: found means our call went
   through, so it is returned; not found means create once more. After a second ambiguous failure look a
   last time, then re-raise. Every other error (400, 401, 404, 409, 429...) proves nothing was created and
   propagates at once: an Airflow retry starts again at step 1, so it can never duplicate either.

Other engineers may reuse :func:`create_or_reuse` for any create call with a natural key. The delete
operators share :func:`delete_idempotent` (a missing object counts as deleted; a 409 gets a clear message), and
every operator coerces ids and flags that arrive from templates or XCom with :func:`coerce_id` and
:func:`coerce_bool`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from airflow_provider_bria.exceptions import (  # AMBIGUOUS_ERRORS: re-exported, the taxonomy lives there
    AMBIGUOUS_ERRORS as AMBIGUOUS_ERRORS,
)
from airflow_provider_bria.exceptions import (
    BriaConflictError,
    BriaInputError,
    BriaNotFoundError,
)

IF_EXISTS_REUSE = "reuse"
IF_EXISTS_FAIL = "fail"
IF_EXISTS_CHOICES = (IF_EXISTS_REUSE, IF_EXISTS_FAIL)

_log = logging.getLogger(__name__)


def validate_if_exists(value: Any) -> str:
    """Return ``value`` if it is a valid ``if_exists`` choice, else raise :class:`BriaInputError`.

    :param value: ``"reuse"`` or ``"fail"``.
    """
    if value not in IF_EXISTS_CHOICES:
        raise BriaInputError(f"Invalid if_exists {value!r}; expected one of: {', '.join(IF_EXISTS_CHOICES)}")
    return str(value)


def coerce_id(value: Any, field: str) -> int:
    """Coerce an object id that may arrive from XCom or a template as ``int`` or ``str``.

    :param value: the raw value (``12``, ``"12"``, ``" 12 "``).
    :param field: the argument name, for the message.
    :raises BriaInputError: when the value is not a positive integer.
    """
    if isinstance(value, bool) or value is None:
        raise BriaInputError(f"{field} must be an integer id, got {value!r}")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    else:
        try:
            result = int(str(value).strip())
        except ValueError:
            raise BriaInputError(f"{field} must be an integer id, got {value!r}") from None
    if result <= 0:
        raise BriaInputError(f"{field} must be a positive integer id, got {value!r}")
    return result


_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def coerce_bool(value: Any, field: str) -> bool:
    """Coerce a flag that may arrive rendered from a template (``"True"``, ``"false"``...) to a ``bool``.

    :param value: a ``bool``, ``0``/``1``, or one of ``true/false``, ``yes/no``, ``on/off``, ``1/0`` in any case.
    :param field: the argument name, for the message.
    :raises BriaInputError: for anything else (``bool("false")`` would silently be ``True``).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise BriaInputError(f"{field} must be True or False (or a template rendering to true/false), got {value!r}")


def object_id(obj: Mapping[str, Any], what: str) -> int:
    """Return the integer ``id`` of an API object.

    :param obj: the object returned by the API.
    :param what: a description for the message.
    :raises BriaConflictError: when the object has no usable id (an unexpected API answer).
    """
    try:
        return int(obj["id"])
    except (KeyError, TypeError, ValueError):
        raise BriaConflictError(f"The API returned {what} without an integer id: {dict(obj)!r}") from None


def _state_get(state_store: Any, key: str | None) -> Any:
    if state_store is None or not key:
        return None
    try:
        return state_store.get(key)
    except Exception as err:  # the store is best-effort: never fail the task because of it
        _log.warning("Could not read task state %r (%s); continuing without it", key, type(err).__name__)
        return None


def _state_set(state_store: Any, key: str | None, value: int) -> None:
    if state_store is None or not key:
        return
    try:
        state_store.set(key, value)
    except Exception as err:
        _log.warning("Could not record task state %r (%s); continuing", key, type(err).__name__)


def is_templated(value: Any) -> bool:
    """Whether a constructor argument is still a Jinja template (so it can only be checked in ``execute``).

    :param value: the raw argument.
    """
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def reconcile_delay(operator: Any) -> float:
    """Seconds to wait before looking up again after an ambiguous failure: the hook's ``retry_delay``.

    :param operator: a Bria operator (its ``hook_params`` may set ``retry_delay``; default 1 s).
    """
    try:
        return max(0.0, float((getattr(operator, "hook_params", None) or {}).get("retry_delay", 1.0)))
    except (TypeError, ValueError):
        return 1.0


def conflict_from(err: BriaConflictError, message: str) -> BriaConflictError:
    """Return a :class:`BriaConflictError` with a clearer message that keeps the server's details.

    :param err: the 409 from the API.
    :param message: the explanation for the user (the server's message is appended).
    """
    return BriaConflictError(
        f"{message} (server said: {err.message})",
        status_code=err.status_code,
        request_id=err.request_id,
        method=err.method,
        path=err.path,
    )


def state_store_from_context(context: Any) -> Any:
    """Return the Airflow 3.3+ ``task_state_store`` of a task context, or ``None``.

    :param context: the task context (a mapping).
    """
    try:
        return context.get("task_state_store")
    except Exception:
        return None


T = TypeVar("T")


class Applied(Generic[T]):
    """What :func:`apply_then_check` got (immutable).

    A plain class, not a dataclass: a ``@dataclass`` costs ~0.8 ms to define on Python 3.11, paid by every forked
    DAG parse that imports this module.

    :param value: the answer of the call, or what the lookup found after a failure.
    :param reconciled: ``True`` when the value comes from the lookup (the failed call was applied after all).
    :param attempts: how many times the call was sent.
    :param after: the error after which the lookup found the object (``None`` when the call answered).
    """

    __slots__ = ("value", "reconciled", "attempts", "after")
    value: T
    reconciled: bool
    attempts: int
    after: BaseException | None

    def __init__(self, value: T, reconciled: bool = False, attempts: int = 1,
                 after: BaseException | None = None) -> None:
        for name, given in (("value", value), ("reconciled", reconciled), ("attempts", attempts), ("after", after)):
            object.__setattr__(self, name, given)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Applied is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Applied is immutable: cannot delete {name!r}")

    def _fields(self) -> tuple[Any, ...]:
        return (self.value, self.reconciled, self.attempts, self.after)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Applied) and other.__class__ is self.__class__ and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self) -> tuple[Any, ...]:
        return (Applied, self._fields())  # pickle and copy rebuild it through __init__ (attributes are read-only)

    def __repr__(self) -> str:
        return (f"Applied(value={self.value!r}, reconciled={self.reconciled!r}, attempts={self.attempts!r}, "
                f"after={self.after!r})")


def apply_then_check(
    apply: Callable[[], T],
    lookup: Callable[[], T | None],
    *,
    what: str,
    retries: int = 1,
    delay: float | Callable[[int], float] = 1.0,
    lookup_after: tuple[type[BaseException], ...] = (),
    may_retry: Callable[[], bool] | None = None,
    log: logging.Logger | Any | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Applied[T]:
    """Send a call that may not be repeated blindly once; after an ambiguous failure, look before sending again.

    The one place of the "apply, then check" protocol (creates, start training, bulk submit, image upload):

    * the call answers: its answer is returned;
    * an *ambiguous* failure (:data:`AMBIGUOUS_ERRORS`: 5xx, timeout, dropped connection; the call may have been
      applied): wait ``delay``, then ``lookup()``. Found: returned as reconciled, never sent again. Not found:
      sent again, at most ``retries`` more times (and only while ``may_retry()``), else the error is re-raised;
    * an error of ``lookup_after`` (e.g. a 409 "already started"): ``lookup()`` once; found is returned,
      otherwise the error is re-raised (never retried);
    * any other (permanent) error propagates at once: nothing was applied, nothing is retried.

    :param apply: the call; its answer is returned.
    :param lookup: read-only; returns the applied object, or ``None`` when the call was not applied.
    :param what: the call, for log lines (``"Creating project 'x'"``).
    :param retries: how many more times the call may be sent after an ambiguous failure that was not applied.
    :param delay: seconds to wait before the lookup, or a function of the attempt number (1, 2...).
    :param lookup_after: errors after which the lookup decides, without a retry.
    :param may_retry: asked before every re-send (e.g. "the task is not being killed").
    :param log: logger; defaults to this module's.
    :param sleep: the sleep function (tests pass a no-op).
    """
    logger = log or _log
    attempt = 0
    while True:
        attempt += 1
        try:
            return Applied(apply(), attempts=attempt)
        except AMBIGUOUS_ERRORS as err:
            logger.warning("%s failed ambiguously (attempt %d: %s); looking it up before deciding", what, attempt, err)
            wait = delay(attempt) if callable(delay) else delay
            if wait > 0:
                sleep(wait)
            found = lookup()
            if found is not None:
                logger.info("%s went through after all; not sending it again", what)
                return Applied(found, reconciled=True, attempts=attempt, after=err)
            if attempt > retries or (may_retry is not None and not may_retry()):
                logger.error("%s was not applied after %d ambiguous failure(s); giving up", what, attempt)
                raise
            logger.info("%s was not applied; sending it once more", what)
        except lookup_after as err:
            found = lookup()
            if found is None:
                raise
            return Applied(found, reconciled=True, attempts=attempt, after=err)


def _reuse(
    existing: Mapping[str, Any], what: str, *, if_exists: str, mine: Any,
    check: Callable[[Mapping[str, Any]], None] | None, log: logging.Logger | Any,
) -> tuple[dict[str, Any], bool]:
    """:func:`create_or_reuse` found the object before creating: ours (an earlier try's), reused, or refused."""
    ident = object_id(existing, what)
    if mine is not None and str(mine) == str(ident):
        log.info("Found %s (id=%s), created by an earlier try of this task; using it", what, ident)
        if check is not None:
            check(existing)
        return dict(existing), True
    if if_exists == IF_EXISTS_FAIL:
        raise BriaConflictError(
            f"{what} already exists (id={ident}) and if_exists='fail'; "
            "use if_exists='reuse' to use it, or choose another name"
        )
    if check is not None:
        check(existing)
    log.info("Found existing %s (id=%s); reusing it (if_exists='reuse')", what, ident)
    return dict(existing), False


def create_or_reuse(
    *,
    find: Callable[[], Mapping[str, Any] | None],
    create: Callable[[], Mapping[str, Any]],
    if_exists: str = IF_EXISTS_REUSE,
    what: str,
    log: logging.Logger | Any | None = None,
    check: Callable[[Mapping[str, Any]], None] | None = None,
    state_store: Any = None,
    state_key: str | None = None,
    reconcile_delay: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, Any], bool]:
    """Find an object by its natural key, or create it exactly once.

    :param find: look the object up by its natural key; return it or ``None``. Must be read-only.
    :param create: create the object; return it. Called at most twice, never after a non-ambiguous error.
    :param if_exists: ``"reuse"`` returns an existing object; ``"fail"`` raises :class:`BriaConflictError`.
    :param what: human description used in logs and errors, e.g. ``"project 'Brand X'"``.
    :param log: logger (the operator's ``self.log``); defaults to this module's logger.
    :param check: called with an existing (or reconciled) object before it is returned; raise to refuse it
        (e.g. an existing project with a different ``ip_type``).
    :param state_store: optional ``context["task_state_store"]`` (Airflow 3.3+). When given, the id of the
        object this task created is recorded under ``state_key`` so a later try of the same task instance
        recognises it as its own, even with ``if_exists="fail"``.
    :param state_key: key in ``state_store``.
    :param reconcile_delay: seconds to wait after an ambiguous failure before looking again.
    :param sleep: the sleep function (tests pass a no-op).
    :return: ``(object, created)``; ``created`` is ``True`` when this call (or an earlier try of the same
        task instance, per the state store) created the object.
    :raises BriaConflictError: the object exists and ``if_exists="fail"``, or ``check`` refused it.
    """
    logger = log or _log
    validate_if_exists(if_exists)

    existing = find()
    if existing is not None:
        mine = _state_get(state_store, state_key)
        return _reuse(existing, what, if_exists=if_exists, mine=mine, check=check, log=logger)
    outcome = apply_then_check(create, find, what=f"Creating {what}", retries=1, delay=reconcile_delay,
                               log=logger, sleep=sleep)
    ident = object_id(outcome.value, what)
    if outcome.reconciled and check is not None:
        check(outcome.value)
    _state_set(state_store, state_key, ident)
    if not outcome.reconciled:
        logger.info("Created %s (id=%s)", what, ident)
    return dict(outcome.value), True


def delete_idempotent(
    delete: Callable[[], Any],
    what: str,
    *,
    missing_ok: bool,
    conflict_message: str | Callable[[], str],
    log: logging.Logger | Any | None = None,
) -> bool:
    """Run a delete call so that a retry after a lost response succeeds; return whether it deleted something.

    :param delete: the delete call (e.g. ``lambda: hook.delete_model(12)``).
    :param what: the object, for log lines (``"Model 12"``).
    :param missing_ok: a 404 counts as "already deleted" (returns ``False``); with ``False`` the 404 propagates.
    :param conflict_message: the explanation raised on a 409 (the server's message is appended); a callable is
        only called on a 409, so it may make API calls to give details (it should not raise).
    :param log: logger (the operator's ``self.log``); defaults to this module's logger.
    :return: ``True`` when this call deleted the object, ``False`` when it was already gone.
    :raises BriaConflictError: the object cannot be deleted now (typically: a model is training).
    :raises BriaNotFoundError: the object does not exist and ``missing_ok`` is ``False``.
    """
    logger = log or _log
    try:
        delete()
    except BriaNotFoundError:
        if not missing_ok:
            raise
        logger.info("%s does not exist (already deleted); nothing to do", what)
        return False
    except BriaConflictError as err:
        message = conflict_message() if callable(conflict_message) else conflict_message
        raise conflict_from(err, message) from err
    return True
