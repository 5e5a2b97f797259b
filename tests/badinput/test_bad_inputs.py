"""Table-driven bad inputs across the hook, the operators, zip staging, the connection and the DAG params.

Every case must raise its specific exception with a specific message, must not leak the api_token in the
message, and must leave the emulator's objects exactly as they were. Client-side cases (``remote=False``) may
read (an operator looks the project up before checking its family) but must not send any write.
"""

from __future__ import annotations

import pytest
from badinput_cases import CASES, Case
from badinput_helpers import World, object_state
from kit import TEST_TOKEN as TOKEN


def test_the_table_is_broad() -> None:
    assert len(CASES) >= 90
    assert len({c.id for c in CASES}) == len(CASES)
    areas = {c.id.split("-", 1)[0] for c in CASES}
    assert areas == {"hook", "op", "zip", "conn", "param"}


PARAMS = [
    pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else [])
    for c in CASES
]


@pytest.mark.parametrize("case", PARAMS)
def test_bad_input_is_rejected_without_side_effects(case: Case, world: World, request: pytest.FixtureRequest) -> None:
    if case.id.startswith("param-"):
        world.example_dags = request.getfixturevalue("example_dags")
    bad_call = case.prepare(world)
    before = world.emulator.state()
    seen = len(world.emulator.requests())

    with pytest.raises(case.exc) as caught:
        bad_call()

    message = str(caught.value)
    assert case.message in message, f"{type(caught.value).__name__}: {message}"
    for text in (message, repr(caught.value)):
        assert TOKEN not in text
        assert "not-the-right-token" not in text
    after = world.emulator.state()
    assert object_state(after) == object_state(before)
    sent = [f"{r['method']} {r['path']}" for r in world.emulator.requests()[seen:]]
    if case.remote:
        assert sent, "the case was expected to reach the server"
    else:
        # Rejected client-side: at most reads (an operator may look an object up first), nothing that writes.
        assert all(r.startswith("GET ") for r in sent), sent


