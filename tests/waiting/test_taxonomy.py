"""The one error taxonomy (:mod:`airflow_provider_bria.exceptions`): every status class lands in one kind."""

from __future__ import annotations

import pytest

from airflow_provider_bria.exceptions import (
    AMBIGUOUS_ERRORS,
    RETRYABLE_ERRORS,
    TARGET_ERRORS,
    BriaInputError,
    BriaTrainingError,
    ErrorKind,
    build_api_error,
    classify_error,
    is_retryable_read,
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, ErrorKind.TRANSIENT),
        (500, ErrorKind.AMBIGUOUS),
        (502, ErrorKind.AMBIGUOUS),
        (503, ErrorKind.AMBIGUOUS),
        (400, ErrorKind.PERMANENT),
        (401, ErrorKind.PERMANENT),
        (403, ErrorKind.PERMANENT),
        (404, ErrorKind.PERMANENT),
        (409, ErrorKind.PERMANENT),
        (413, ErrorKind.PERMANENT),
        (422, ErrorKind.PERMANENT),
    ],
)
def test_http_errors_are_classified_by_what_a_retry_can_do(status: int, kind: ErrorKind) -> None:
    err = build_api_error(status, {"message": "x"})
    assert classify_error(err) is kind
    assert is_retryable_read(err) is (kind is not ErrorKind.PERMANENT)


def test_transport_errors_are_ambiguous_and_non_api_errors_permanent() -> None:
    from airflow_provider_bria.exceptions import BriaTransportError

    assert classify_error(BriaTransportError("reset")) is ErrorKind.AMBIGUOUS
    for err in (BriaInputError("bad"), BriaTrainingError("failed"), RuntimeError("bug"), KeyError("k")):
        assert classify_error(err) is ErrorKind.PERMANENT
        assert not is_retryable_read(err)


def test_groups_are_consistent_with_the_classification() -> None:
    assert set(AMBIGUOUS_ERRORS) <= set(RETRYABLE_ERRORS)
    assert not set(TARGET_ERRORS) & set(RETRYABLE_ERRORS)


def test_old_import_paths_name_the_same_groups() -> None:
    from airflow_provider_bria.operators._reconcile import AMBIGUOUS_ERRORS as reconcile_ambiguous
    from airflow_provider_bria.triggers._training_events import TRANSIENT_ERRORS as poll_errors

    assert reconcile_ambiguous is AMBIGUOUS_ERRORS
    assert poll_errors == RETRYABLE_ERRORS
