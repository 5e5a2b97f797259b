"""Targeted fault rules (``POST /_emulator/faults`` ``"rules"``): the n-th matching request fails, exactly.

Random ``fault_rate`` faults are for invariants; rules make "this POST was applied but its answer was lost"
happen on purpose, so a test can assert that it really happened.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from emulator_helpers import TG, Api

PROJECTS = f"{TG}/projects"
BODY = {"project_name": "Ruled", "ip_medium": "illustration", "ip_type": "stylized_scene"}


def _project_names(api: Api) -> list[str]:
    return [p["project_name"] for p in api.ok("GET", PROJECTS)]


def _dropped(call: Any) -> bool:
    try:
        call()
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
        return True
    return False


def test_after_drop_applies_the_request_and_loses_the_answer(emulator: Any, api: Api) -> None:
    config = emulator.set_faults(0.0, rules=[{"method": "post", "path_regex": f"^{PROJECTS}$", "phase": "after",
                                              "kind": "drop", "nth": 1}])
    assert config["rules"][0]["method"] == "POST"
    assert _project_names(api) == []  # a GET does not match a POST rule
    assert _dropped(lambda: api.post(PROJECTS, json=BODY))
    assert _project_names(api) == ["Ruled"]  # applied although the client saw no answer
    assert api.post(PROJECTS, json={**BODY, "project_name": "Second"}).status_code == 201  # times=1: only once
    log = [e for e in emulator.requests(PROJECTS) if e["method"] == "POST"]
    assert [(e["fault"], e["handler_status"]) for e in log] == [("after-drop", 201), (None, 201)]
    rule = emulator.faults()["rules"][0]
    assert (rule["matched"], rule["fired"]) == (2, 1)
    assert emulator.state()["counts"]["faults_injected"] == 1


@pytest.mark.parametrize("kind", [500, 503])
def test_after_status_applies_the_request(emulator: Any, api: Api, kind: int) -> None:
    emulator.set_faults(0.0, rules=[{"method": "POST", "path_regex": "/projects$", "kind": kind}])
    resp = api.post(PROJECTS, json=BODY)
    assert resp.status_code == kind
    assert _project_names(api) == ["Ruled"]


def test_before_faults_leave_the_state_untouched(emulator: Any, api: Api) -> None:
    emulator.set_faults(0.0, rules=[
        {"method": "POST", "path_regex": "/projects$", "phase": "before", "kind": 429, "nth": 1},
        {"method": "POST", "path_regex": "/projects$", "phase": "before", "kind": 503, "nth": 2},
        {"method": "POST", "path_regex": "/projects$", "phase": "before", "kind": "drop", "nth": 3},
    ])
    first = api.post(PROJECTS, json=BODY)
    assert first.status_code == 429
    assert "Retry-After" not in first.headers  # Bria documents none: off by default
    assert api.post(PROJECTS, json=BODY).status_code == 503
    assert _dropped(lambda: api.post(PROJECTS, json=BODY))
    assert _project_names(api) == []
    assert api.post(PROJECTS, json=BODY).status_code == 201
    log = [e for e in emulator.requests(PROJECTS) if e["method"] == "POST"]
    assert [(e["fault"], e["handler_status"]) for e in log] == [
        ("before-429", None), ("before-503", None), ("before-drop", None), (None, 201)
    ]
    assert [r["fired"] for r in emulator.faults()["rules"]] == [1, 1, 1]


def test_retry_after_only_with_the_flag(start_emulator: Any) -> None:
    emu = start_emulator(extra_args=["--retry-after"])
    try:
        emu.set_faults(0.0, rules=[{"path_regex": "/projects$", "phase": "before", "kind": 429}])
        resp = Api(emu.url, emu.token).get(PROJECTS)
        assert resp.status_code == 429
        assert resp.headers["Retry-After"] == "1"
    finally:
        emu.stop()


@pytest.mark.parametrize(
    ("kind", "text"),
    [("quota", "Quota exceeded: Free users can make up to 1000 requests"), ("subscription", "Access denied")],
)
def test_quota_and_subscription_403_are_bare_strings(emulator: Any, api: Api, kind: str, text: str) -> None:
    emulator.set_faults(0.0, rules=[{"method": "POST", "path_regex": "/projects$", "phase": "before", "kind": kind}])
    resp = api.post(PROJECTS, json=BODY)
    assert resp.status_code == 403
    body = resp.json()
    assert isinstance(body, str)  # the spec's 403 examples are bare JSON strings
    assert body.startswith(text)
    assert _project_names(api) == []
    emulator.set_faults(0.0, rules=[{"path_regex": "^/v2/", "phase": "before", "kind": kind}])
    v2 = api.post("/v2/image/generate/tailored", json={"tailored_model_id": "1", "prompt": "x"})
    assert v2.status_code == 403
    assert v2.json()["error"]["details"].startswith(text)
    with pytest.raises(Exception, match="before"):
        emulator.set_faults(0.0, rules=[{"phase": "after", "kind": kind}])


def test_nth_and_times_select_a_window_of_matching_requests(emulator: Any, api: Api) -> None:
    emulator.set_faults(0.0, rules=[{"path_regex": "^/v1/tailored-gen/projects$", "phase": "before", "kind": 500,
                                     "nth": 2, "times": 2}])
    statuses = [api.get(PROJECTS).status_code for _ in range(5)]
    assert statuses == [200, 500, 500, 200, 200]
    assert api.get(f"{TG}/datasets").status_code == 200  # another path: not counted
    rule = emulator.faults()["rules"][0]
    assert (rule["matched"], rule["fired"]) == (5, 2)


def test_rules_apply_with_a_random_rate_and_do_not_consume_its_draws(emulator: Any, api: Api) -> None:
    """A rule-faulted request takes no random draw: the random sequence of the other requests is unchanged."""

    def sequence(rules: list[dict[str, Any]]) -> list[Any]:
        emulator.set_faults(0.5, seed=11, rules=rules)
        start = len(emulator.requests())
        _dropped(lambda: api.get(f"{TG}/datasets"))  # matched by the rule below (when set)
        for _ in range(20):
            _dropped(lambda: api.get(PROJECTS))
        return [(e["status"], e["fault"]) for e in emulator.requests()[start:]]

    plain = sequence([])
    ruled = sequence([{"path_regex": "/datasets$", "phase": "before", "kind": 503}])
    assert ruled[0] == (503, "before-503")
    # The 20 project reads get the first 20 draws of the seeded sequence, as the first 20 requests did before.
    assert ruled[1:] == plain[:20]
    assert plain[:20] != plain[1:]  # (so the test would see a draw taken by the rule-faulted request)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"path_regex": "x"}, "list"),
        (["drop"], "object"),
        ([{"path": "/x"}], "unknown rule fields"),
        ([{"path_regex": "("}], "regular expression"),
        ([{"phase": "during"}], "phase"),
        ([{"kind": 404}], "kind"),
        ([{"kind": True}], "kind"),
        ([{"phase": "after", "kind": 429}], "429"),
        ([{"nth": 0}], "nth"),
        ([{"times": "2"}], "times"),
        ([{"method": "GET /"}], "method"),
    ],
)
def test_invalid_rules_are_rejected_and_change_nothing(emulator: Any, rules: Any, message: str) -> None:
    emulator.set_faults(0.0, rules=[{"path_regex": "/keep$"}])
    resp = requests.post(
        f"{emulator.url}/_emulator/faults",
        json={"fault_rate": 0.4, "rules": rules},
        headers={"api_token": emulator.token},
        timeout=10,
    )
    assert resp.status_code == 400
    assert message in resp.json()["message"]
    config = emulator.faults()
    assert [r["path_regex"] for r in config["rules"]] == ["/keep$"]
    assert config["fault_rate"] == 0.0


def test_set_faults_replaces_and_reset_clears_the_rules(emulator: Any, api: Api) -> None:
    emulator.set_faults(0.0, rules=[{"path_regex": "/projects$", "phase": "before", "kind": 500, "times": 100}])
    assert api.get(PROJECTS).status_code == 500
    emulator.set_faults(0.0)
    assert emulator.faults()["rules"] == []
    assert api.get(PROJECTS).status_code == 200
    emulator.set_faults(0.0, rules=[{"path_regex": "/projects$", "phase": "before", "kind": 500, "times": 100}])
    emulator.reset()
    assert emulator.faults()["rules"] == []
    assert api.get(PROJECTS).status_code == 200


def test_unauthorised_requests_are_not_counted(emulator: Any, api: Api) -> None:
    emulator.set_faults(0.0, rules=[{"path_regex": "/projects$", "phase": "before", "kind": 503}])
    assert Api(emulator.url, None).get(PROJECTS).status_code == 401
    assert api.get(PROJECTS).status_code == 503
