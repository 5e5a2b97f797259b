"""Where the api_token really goes, seen from the server side (real sockets on 127.0.0.1).

``localhost`` and ``127.0.0.1`` reach the same server but are different authorities: the ``Host`` header the
server records tells which one the transport used. The configured origin is ``http://127.0.0.1:<port>``, so a
token seen with ``Host: localhost:<port>`` (or another port) went to a host that is not the API's.
"""

from __future__ import annotations

from typing import Any

import pytest
from securitylib import TOKEN, Recorder, json_route, redirect_route, send

from airflow_provider_bria.exceptions import BriaError, BriaInputError, BriaTransportError


def _evil_forms(server: Recorder) -> list[str]:
    port = server.port
    return [
        f"http://localhost:{port}\\@127.0.0.1:{port}/v2/status/r-1",
        f"http://LOCALHOST:{port}\\@127.0.0.1:{port}/v2/status/r-1",
        f"HTTP://localhost:{port}\\@127.0.0.1/v2/status/r-1",
        f"http://localhost:{port}\\\\@127.0.0.1:{port}/v2/status/r-1",
    ]


def _api_host(server: Recorder) -> str:
    return f"127.0.0.1:{server.port}"


def test_backslash_at_status_urls_never_send_the_token_elsewhere(hook: Any, server: Recorder) -> None:
    server.routes["/v2/status/r-1"] = json_route({"status": "IN_PROGRESS", "request_id": "r-1"})
    for url in _evil_forms(server):
        with pytest.raises(BriaInputError):
            hook.get_status(url)
        with pytest.raises(BriaInputError):
            hook.request("GET", url)
        with pytest.raises(BriaInputError):
            hook.open_download(url)
    assert server.tokens_sent_to() <= {_api_host(server)}


def test_status_url_on_another_host_or_port_polls_the_configured_origin(hook: Any, server: Recorder,
                                                                        other: Recorder) -> None:
    server.routes["/v2/status/r-2"] = json_route({"status": "IN_PROGRESS", "request_id": "r-2"})
    other.routes["/v2/status/r-2"] = json_route({"status": "COMPLETED"})
    for url in (f"{other.origin}/v2/status/r-2", f"http://localhost:{server.port}/v2/status/r-2",
                f"HTTP://127.0.0.1:{server.port}/v2/status/r-2"):
        assert hook.get_status(url).request_id == "r-2"
    assert other.seen == []
    assert server.tokens_sent_to() == {_api_host(server)}


def test_download_redirect_from_a_foreign_host_never_carries_the_token(hook: Any, server: Recorder,
                                                                       other: Recorder) -> None:
    server.routes["/files/a.png"] = lambda h: send(h, 200, b"PNGDATA")
    other.routes["/cdn/ambiguous"] = redirect_route(f"http://localhost:{server.port}\\@127.0.0.1:{server.port}/x")
    other.routes["/cdn/to-api"] = redirect_route(f"{server.origin}/files/a.png")
    with pytest.raises(BriaInputError):
        hook.open_download(f"{other.origin}/cdn/ambiguous")
    with hook.open_download(f"{other.origin}/cdn/to-api") as resp:
        assert resp.content == b"PNGDATA"
    assert server.tokens_sent_to() == set()
    assert other.tokens_sent_to() == set()


def test_download_on_the_api_origin_is_rebuilt_and_authenticated(hook: Any, server: Recorder, other: Recorder) -> None:
    server.routes["/files/b.png"] = lambda h: send(h, 200, b"B")
    other.routes["/files/b.png"] = lambda h: send(h, 200, b"OTHER")
    with hook.open_download(f"HTTP://127.0.0.1:{server.port}/files/b.png") as resp:
        assert resp.content == b"B"
    with hook.open_download(f"{other.origin}/files/b.png") as resp:  # another port: no token
        assert resp.content == b"OTHER"
    with hook.open_download(f"http://localhost:{server.port}/files/b.png") as resp:  # another authority: no token
        assert resp.content == b"B"
    assert server.tokens_sent_to() == {_api_host(server)}
    assert other.tokens_sent_to() == set()


async def test_async_status_paths_send_the_token_only_to_the_configured_origin(hook: Any, server: Recorder,
                                                                             other: Recorder) -> None:
    server.routes["/v2/status/r-3"] = json_route({"status": "IN_PROGRESS", "request_id": "r-3"})
    other.routes["/v2/status/r-3"] = json_route({"status": "COMPLETED"})
    try:
        for url in _evil_forms(server):
            with pytest.raises(BriaInputError):
                await hook.aget_status(url.replace("r-1", "r-3"))
            with pytest.raises(BriaInputError):
                await hook.arequest("GET", url)
        for url in (f"{other.origin}/v2/status/r-3", f"http://localhost:{server.port}/v2/status/r-3", "r-3"):
            assert (await hook.aget_status(url)).request_id == "r-3"
    finally:
        await hook.aclose()
    assert other.seen == []
    assert server.tokens_sent_to() == {_api_host(server)}


async def test_trigger_polls_a_poisoned_handle_on_the_configured_origin(server: Recorder, other: Recorder,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from airflow_provider_bria.triggers.job import BriaJobTrigger

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT",
                       json.dumps({"conn_type": "bria", "host": server.origin, "password": TOKEN}))
    server.routes["/v2/status/r-4"] = json_route({"status": "COMPLETED", "request_id": "r-4",
                                                  "result": {"image_url": f"{server.origin}/f.png"}})
    trigger = BriaJobTrigger([f"{other.origin}/v2/status/r-4"], end_time=9e9, poll_interval=0.01,
                             hook_params={"retry_limit": 0})
    events = [e async for e in trigger.run()]
    assert events[0].payload["status"] == "success"
    poisoned = BriaJobTrigger([f"http://localhost:{server.port}\\@127.0.0.1:{server.port}/v2/status/r-4"],
                              end_time=9e9, poll_interval=0.01, hook_params={"retry_limit": 0})
    events = [e async for e in poisoned.run()]
    assert events[0].payload["status"] == "error"
    assert TOKEN not in str(events[0].payload)
    assert other.seen == []
    assert server.tokens_sent_to() == {_api_host(server)}


def test_generation_retry_never_polls_a_status_url_from_a_sidecar(hook: Any, server: Recorder, tmp_path: Any) -> None:
    """Anyone who can write to the output folder can edit a sidecar: its status_url must not get the token."""
    from securitylib import context, png, resumed_images_op

    evil = f"http://localhost:{server.port}\\@127.0.0.1:{server.port}/v2/status/r-9"
    op = resumed_images_op(server, tmp_path, "r-9", lambda h: send(h, 200, png(1024, 1024)),
                           sidecar={"status_url": evil})
    records = op.execute(context())
    assert records[0]["request_id"] == "r-9"
    assert server.tokens_sent_to() == {_api_host(server)}
    assert not [s for s in server.seen if s.method != "GET"]  # resumed: nothing paid again


# ---------------------------------------------------------------- item 2: token shape, header values in errors


@pytest.mark.parametrize("token", ["q7zk\nw9xv", "q7zk\r\nX-Evil: 1", "q7zk\tw9xv", "q7zk\x00", "q7zk w9xv",
                                   "q7zk\u00e9w9xv", " q7zk\u2028w9xv "])
def test_token_with_control_characters_is_refused_without_echo(token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from airflow_provider_bria.exceptions import BriaConnectionConfigError
    from airflow_provider_bria.hooks.bria import BriaHook

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT",
                       json.dumps({"conn_type": "bria", "host": "http://127.0.0.1:9", "password": token}))
    with pytest.raises(BriaConnectionConfigError, match="re-enter the token") as info:
        BriaHook().settings  # noqa: B018
    assert "q7zk" not in str(info.value)
    assert "w9xv" not in str(info.value)


def _force_token(hook: Any, token: str) -> None:
    """Bypass the connection check (as a token added by other code would), to test the transport's errors."""
    from dataclasses import replace

    hook._settings = replace(hook.settings, token=token)


BAD = "leak\nme-9f8e7d"


def _assert_clean(err: BaseException) -> None:
    chain: BaseException | None = err
    while chain is not None:
        for text in (str(chain), repr(chain)):
            assert "leak" not in text, text
            assert "me-9f8e7d" not in text, text
        chain = chain.__cause__ or (None if chain.__suppress_context__ else chain.__context__)


def test_header_errors_never_carry_the_token_sync(hook: Any, server: Recorder) -> None:
    server.routes["/v1/x"] = json_route({})
    _force_token(hook, BAD)
    with pytest.raises(BriaError) as info:
        hook.request("GET", "/v1/x")
    assert isinstance(info.value, BriaTransportError)
    _assert_clean(info.value)


async def test_header_errors_never_carry_the_token_async(hook: Any, server: Recorder) -> None:
    server.routes["/v2/status/r-5"] = json_route({"status": "IN_PROGRESS"})
    _force_token(hook, BAD)
    try:
        with pytest.raises(BriaError) as info:
            await hook.aget_status("r-5")
    finally:
        await hook.aclose()
    _assert_clean(info.value)


@pytest.mark.parametrize("tagged", [False, True])
def test_legacy_saved_urls_get_the_token_only_with_a_valid_tag(hook: Any, server: Recorder, tmp_path: Any,
                                                               tagged: bool) -> None:
    """A v1 retry downloads the URLs an earlier try saved; a URL planted in the sidecar gets no token."""
    import json

    from securitylib import context, png

    from airflow_provider_bria.operators._generation_plan import plan_items
    from airflow_provider_bria.operators.generation import BriaGenerateLegacyImagesOperator

    server.routes["/v1/tailored-gen/models/1"] = json_route({"id": 1, "status": "Completed"})
    server.routes["/files/l0.png"] = lambda h: send(h, 200, png(1024, 1024))
    op = BriaGenerateLegacyImagesOperator(task_id="l", model_id=1, prompt="a fox", output_path=str(tmp_path),
                                          check_model=False, hook_params={"retry_limit": 0})
    stem = plan_items(1, [("a fox", None)], kind="legacy", per_request=1, base_seed=None,
                      params=op._params())[0].stem
    url = f"{server.origin}/files/l0.png"
    side = {"status": "generated", "urls": [url], "seeds": [5]}
    if tagged:
        side["url_tags"] = [hook.url_tag(url)]
    (tmp_path / f"{stem}.json").write_text(json.dumps(side))
    op.execute(context())
    assert [s.path for s in server.seen] == ["/files/l0.png"]
    assert server.tokens_sent_to() == ({_api_host(server)} if tagged else set())
    saved = json.loads((tmp_path / f"{stem}.json").read_text())
    assert saved["url_tags"] == [hook.url_tag(url)]
    assert TOKEN not in json.dumps(saved)


async def test_trigger_event_never_carries_a_bad_token(server: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token with CR/LF ends the trigger with an error event that does not quote it (the event reaches the
    task, its logs and its XCom)."""
    import json

    from airflow_provider_bria.triggers.job import BriaJobTrigger

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT",
                       json.dumps({"conn_type": "bria", "host": server.origin, "password": BAD}))
    trigger = BriaJobTrigger(["r-6"], end_time=9e9, poll_interval=0.01, hook_params={"retry_limit": 0})
    events = [e async for e in trigger.run()]
    payload = json.dumps(events[0].payload)
    assert events[0].payload["status"] == "error"
    assert "leak" not in payload
    assert "me-9f8e7d" not in payload
    assert server.seen == []
