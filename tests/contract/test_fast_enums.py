"""The contract's enums are built by ``_compat.str_enum`` (fast, for every forked DAG parse); they must behave exactly
like the ``class X(str, Enum)`` statement builds them. The oracle is Python's own ``Enum`` metaclass, fed the same
members and methods."""

from __future__ import annotations

import enum
import json
import pickle
from typing import Any

import pytest

from airflow_provider_bria import _compat, contract, exceptions

FAST_ENUMS = [obj for module in (contract, exceptions) for obj in vars(module).values()
              if isinstance(obj, type) and issubclass(obj, enum.Enum) and obj.__module__ == module.__name__]


def _built_fast(cls: type) -> bool:
    """Whether ``str_enum`` built ``cls`` (by name: a test that reloads ``_compat`` makes a new ``_StrEnum``)."""
    return any(b.__module__ == _compat.__name__ and b.__name__ == "_StrEnum" for b in cls.__mro__)


def _classic(fast: type[enum.Enum]) -> type[enum.Enum]:
    """The same enum built by the ``Enum`` metaclass (what ``class X(str, Enum)`` does)."""
    namespace = enum.EnumMeta.__prepare__(fast.__name__, (str, enum.Enum))
    for member in fast:
        namespace[member.name] = member.value
    for key, value in vars(fast).items():
        if not key.startswith("_") and key not in fast.__members__:
            namespace[key] = value
    return enum.EnumMeta(fast.__name__, (str, enum.Enum), namespace)


def test_every_contract_enum_is_built_fast() -> None:
    """All of them (the check below would pass vacuously on an empty list)."""
    names = {e.__name__ for e in FAST_ENUMS}
    assert {"IpType", "ModelStatus", "JobStatus", "TrainingMode", "ErrorKind"} <= names
    assert len(FAST_ENUMS) >= 13
    assert all(_built_fast(e) for e in FAST_ENUMS)


@pytest.mark.parametrize("fast", FAST_ENUMS, ids=lambda e: e.__name__)
def test_fast_enum_behaves_like_the_class_statement(fast: type[enum.Enum]) -> None:
    classic = _classic(fast)
    assert [(m.name, m.value) for m in fast] == [(m.name, m.value) for m in classic]
    assert fast.__members__.keys() == classic.__members__.keys()
    assert fast.__doc__
    assert fast.__module__ in (contract.__name__, exceptions.__name__)
    views: list[Any] = [str, repr, format, hash, lambda m: f"{m}|{m!s}|{m!r}", lambda m: json.dumps(m),
                        lambda m: m == m.value, lambda m: m.value in {m}, lambda m: isinstance(m, str),
                        lambda m: m.name, lambda m: m.upper()]
    for fm, cm in zip(fast, classic, strict=True):
        for view in views:
            assert str(view(fm)).replace(fast.__qualname__, "X") == str(view(cm)).replace(classic.__qualname__, "X")
        assert fast(fm.value) is fm
        assert fast[fm.name] is fm
        assert pickle.loads(pickle.dumps(fm)) is fm  # noqa: S301 (our own bytes)
        assert isinstance(fm, enum.Enum)
        assert isinstance(fm, fast)
    with pytest.raises(ValueError, match="is not a valid"):
        fast("no such value")


def test_methods_and_properties_survive() -> None:
    assert contract.ModelStatus.parse("in_progress") is contract.ModelStatus.IN_PROGRESS
    assert contract.ModelStatus.COMPLETED.is_terminal
    assert contract.ModelStatus.UPLOADED_COMPLETED.is_success
    assert contract.JobStatus.parse("running") is contract.JobStatus.IN_PROGRESS
    assert contract.BulkUploadStatus.from_body({"status": " Completed "}).is_terminal  # type: ignore[union-attr]
    assert contract.parse_enum(contract.IpType, "icons", "ip_type") is contract.IpType.ICONS


def test_fallback_without_simple_enum_builds_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.10 has no ``enum._simple_enum``: the metaclass builds the enum from the same body."""
    monkeypatch.delattr(enum, "_simple_enum", raising=False)

    @_compat.str_enum
    class Colour(str, _compat.EnumBody):
        """Colours."""

        RED = "red"
        BLUE = "blue"

        @property
        def is_red(self) -> bool:
            return self is Colour.RED

    assert [m.value for m in Colour] == ["red", "blue"]
    assert Colour("blue") is Colour.BLUE
    assert Colour.RED.is_red
    assert isinstance(Colour.RED, str)
    assert Colour.__doc__ == "Colours."
