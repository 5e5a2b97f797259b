"""The one apply-then-check primitive (operators/_reconcile.py ``apply_then_check``), against a scripted remote."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_bria.exceptions import (
    BriaConflictError,
    BriaServerError,
    BriaTransportError,
    BriaValidationError,
)
from airflow_provider_bria.operators._reconcile import apply_then_check


class Remote:
    """One remote call whose attempts follow a script: ``ok``, ``lost`` (applied, answer lost: 502), ``dropped``
    (not applied: connection dropped), ``reject`` (400), ``conflict`` (409, applied earlier)."""

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.applied: list[int] = []
        self.sends = 0
        self.lookups = 0

    def apply(self) -> dict[str, Any]:
        self.sends += 1
        step = self.script.pop(0) if self.script else "ok"
        if step in ("ok", "lost"):
            self.applied.append(self.sends)
            if step == "lost":
                raise BriaServerError("bad gateway", status_code=502)
            return {"id": self.sends}
        if step == "dropped":
            raise BriaTransportError("connection dropped")
        if step == "reject":
            raise BriaValidationError("bad request", status_code=400)
        if step == "conflict":
            self.applied.append(0)
            raise BriaConflictError("already", status_code=409)
        raise AssertionError(step)

    def lookup(self) -> dict[str, Any] | None:
        self.lookups += 1
        return {"id": self.applied[0], "found": True} if self.applied else None


def run(remote: Remote, **kwargs: Any) -> Any:
    kwargs.setdefault("delay", 0)
    return apply_then_check(remote.apply, remote.lookup, what="Creating x", **kwargs)


def test_an_answered_call_is_returned_without_a_lookup() -> None:
    remote = Remote("ok")
    outcome = run(remote)
    assert (outcome.value, outcome.reconciled, outcome.attempts) == ({"id": 1}, False, 1)
    assert (remote.sends, remote.lookups) == (1, 0)


def test_ambiguous_failure_then_lookup_finds_it_sends_no_second_time() -> None:
    remote = Remote("lost", "ok")
    outcome = run(remote, retries=3)
    assert remote.sends == 1
    assert remote.lookups == 1
    assert outcome.value == {"id": 1, "found": True}
    assert outcome.reconciled is True
    assert isinstance(outcome.after, BriaServerError)
    assert remote.applied == [1]  # exactly one object exists


def test_lookup_finds_nothing_so_the_call_is_sent_once_more() -> None:
    remote = Remote("dropped", "ok")
    outcome = run(remote, retries=1)
    assert (remote.sends, remote.lookups) == (2, 1)
    assert (outcome.value, outcome.reconciled, outcome.attempts) == ({"id": 2}, False, 2)


def test_retries_are_bounded_and_the_last_ambiguous_error_is_raised() -> None:
    remote = Remote("dropped", "dropped", "dropped", "ok")
    with pytest.raises(BriaTransportError):
        run(remote, retries=1)
    assert (remote.sends, remote.lookups) == (2, 2)
    assert remote.applied == []


def test_no_retry_when_retries_is_zero() -> None:
    remote = Remote("dropped", "ok")
    with pytest.raises(BriaTransportError):
        run(remote, retries=0)
    assert (remote.sends, remote.lookups) == (1, 1)


def test_a_permanent_error_is_neither_looked_up_nor_retried() -> None:
    remote = Remote("reject", "ok")
    with pytest.raises(BriaValidationError):
        run(remote, retries=5)
    assert (remote.sends, remote.lookups) == (1, 0)


def test_may_retry_false_stops_before_a_second_send() -> None:
    remote = Remote("dropped", "ok")
    with pytest.raises(BriaTransportError):
        run(remote, retries=5, may_retry=lambda: False)
    assert remote.sends == 1


def test_lookup_after_lets_the_lookup_decide_a_conflict_without_retrying() -> None:
    remote = Remote("conflict")
    outcome = run(remote, lookup_after=(BriaConflictError,))
    assert outcome.reconciled is True
    assert isinstance(outcome.after, BriaConflictError)
    assert remote.sends == 1


def test_lookup_after_reraises_when_the_lookup_finds_nothing() -> None:
    remote = Remote("conflict", "ok")
    remote.lookup = lambda: None  # type: ignore[method-assign]
    with pytest.raises(BriaConflictError):
        run(remote, lookup_after=(BriaConflictError,))
    assert remote.sends == 1


def test_a_conflict_is_permanent_without_lookup_after() -> None:
    remote = Remote("conflict")
    with pytest.raises(BriaConflictError):
        run(remote)
    assert remote.lookups == 0


def test_the_delay_comes_before_each_lookup_and_may_depend_on_the_attempt() -> None:
    slept: list[float] = []
    remote = Remote("dropped", "dropped", "ok")
    run(remote, retries=2, delay=lambda attempt: 0.5 * 2 ** (attempt - 1), sleep=slept.append)
    assert slept == [0.5, 1.0]


def test_applied_is_an_immutable_value() -> None:
    """``Applied`` is a plain class (no dataclass at import): it still compares by value and cannot be changed."""
    from airflow_provider_bria.operators._reconcile import Applied

    err = RuntimeError("lost")
    a = Applied({"id": 1}, reconciled=True, attempts=2, after=err)
    assert a == Applied({"id": 1}, True, 2, err)
    assert a != Applied({"id": 1}, True, 3, err)
    assert (a.value, a.reconciled, a.attempts, a.after) == ({"id": 1}, True, 2, err)
    assert Applied(5) == Applied(5, reconciled=False, attempts=1, after=None)
    assert "reconciled=True" in repr(a)
    assert "attempts=2" in repr(a)
    with pytest.raises(AttributeError):
        a.attempts = 3  # type: ignore[misc]
    import copy
    import pickle

    assert copy.deepcopy(a).value == {"id": 1}
    assert copy.copy(a) == a
    assert pickle.loads(pickle.dumps(Applied(7, attempts=2))) == Applied(7, attempts=2)  # noqa: S301 (our own bytes)
