"""Templatable numbers (issue 15 item 7): numeric arguments may be Params; they render to numbers, and a bad
rendering fails naming the argument (and the Param), before any request."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_bria.exceptions import BriaInputError, BriaNonRetryableError
from airflow_provider_bria.operators.base import BriaBaseOperator, Number, coerce_number
from airflow_provider_bria.operators.captions import BriaRegenerateCaptionsOperator
from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator, BriaGenerateVideoOperator
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator


def _numeric_operators() -> list[type[BriaBaseOperator]]:
    return [BriaGenerateImagesOperator, BriaGenerateVideoOperator, BriaUploadImagesOperator,
            BriaRegenerateCaptionsOperator]


@pytest.mark.parametrize("cls", _numeric_operators(), ids=lambda c: c.__name__)
def test_numeric_arguments_are_template_fields(cls: type[BriaBaseOperator]) -> None:
    assert cls.template_numbers
    assert set(cls.template_numbers) <= set(cls.template_fields)


def test_num_images_per_prompt_renders_from_a_param() -> None:
    """A real render: the Param's value arrives as text and becomes an int before execute."""
    from airflow.sdk import DAG

    with DAG("tn", schedule=None, params={"images": 4, "conc": "2"}):
        op = BriaGenerateImagesOperator(task_id="g", model_id=1, prompt="p",
                                        num_images_per_prompt="{{ params.images }}",
                                        max_concurrency="{{ params.conc }}")
    assert op.num_images_per_prompt == "{{ params.images }}"  # kept as a template until the task runs
    op.render_template_fields({"params": {"images": 4, "conc": "2"}})
    assert op.num_images_per_prompt == "4"
    op._coerce_numbers()
    assert op.num_images_per_prompt == 4
    assert op.max_concurrency == 2


def test_a_bad_rendering_names_the_argument_and_the_param(bria_conn: Any) -> None:
    from airflow.sdk import DAG

    with DAG("tn2", schedule=None, params={"images": "four"}):
        op = BriaGenerateImagesOperator(task_id="g", model_id=1, prompt="p",
                                        num_images_per_prompt="{{ params.images }}")
    op._lock_for_execution = True  # as the task runner does before rendering
    op.render_template_fields({"params": {"images": "four"}})
    with pytest.raises(BriaInputError) as info:
        op.execute({})
    message = str(info.value)
    assert "num_images_per_prompt must be an integer, got 'four'" in message
    assert "num_images_per_prompt came from Param 'images'" in message
    assert isinstance(info.value, BriaNonRetryableError)
    assert bria_conn.requests(path_prefix="/v") == []  # nothing was sent


@pytest.mark.parametrize(
    ("value", "spec", "expected"),
    [("4", Number(int, 1, 100), 4), (" 2.5 ", Number(float, 0, exclusive_minimum=True), 2.5),
     ("", Number(int, 1, optional=True), None), (3.0, Number(int, 1), 3)],
)
def test_coerce_number_accepts(value: Any, spec: Number, expected: Any) -> None:
    assert coerce_number(value, "n", spec) == expected


@pytest.mark.parametrize(
    ("value", "spec", "message"),
    [("101", Number(int, 1, 100), "n must be at most 100, got 101"), ("0", Number(float, 0, exclusive_minimum=True),
     "n must be a positive number, got '0'"), (True, Number(int), "n must be an integer"),
     ("nan", Number(float), "finite"),
     ("2.5", Number(int), "n must be an integer, got '2.5' (it is templated")],
)
def test_coerce_number_refuses(value: Any, spec: Number, message: str) -> None:
    with pytest.raises(BriaInputError, match=message.replace("(", r"\(")):
        coerce_number(value, "n", spec)


def test_literal_numbers_are_still_checked_when_the_dag_is_parsed() -> None:
    with pytest.raises(BriaInputError, match="num_images_per_prompt must be at most 100"):
        BriaGenerateImagesOperator(task_id="g", model_id=1, prompt="p", num_images_per_prompt=101)
    with pytest.raises(BriaInputError, match="max_images must be >= 1"):
        BriaUploadImagesOperator(task_id="u", dataset_id=1, source="/tmp", max_images=0)


def test_number_keeps_the_named_tuple_interface() -> None:
    """``Number`` is a plain class (issue 18: no NamedTuple on the parse path) with the same public behaviour."""
    import copy
    import pickle

    spec = Number(float, 0, exclusive_minimum=True)
    fields = (spec.kind, spec.minimum, spec.maximum, spec.optional, spec.exclusive_minimum)
    assert fields == (float, 0, None, False, True)
    assert spec == Number(float, 0, None, False, True)
    assert hash(spec) == hash(Number(float, 0, exclusive_minimum=True))
    assert spec != Number(float, 0)
    assert spec != (float, 0, None, False, True)
    assert repr(spec) == ("Number(kind=<class 'float'>, minimum=0, maximum=None, optional=False, "
                          "exclusive_minimum=True)")
    assert pickle.loads(pickle.dumps(spec)) == spec  # noqa: S301 - our own bytes
    assert copy.deepcopy(spec) == spec
    with pytest.raises(AttributeError, match="immutable"):
        spec.minimum = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        Number(int, 1, 2, False, False, "extra")  # type: ignore[call-arg]
