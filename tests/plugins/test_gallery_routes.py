"""Gallery routes of the Bria plugin on Airflow's real API app, over a generation run made by the operators.

The oracle for "every file" is the output folder itself (``os.listdir``) and the operators' own XCom records;
the oracle for access rules is Airflow's auth manager (JWTs it signed, its 401/403 answers).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from generation_helpers import run_test_dag, train_model
from kit import TEST_TOKEN as TOKEN
from kit import conn_json

DAG_ID = "generation_deferrable"


class Run:
    """The generation run and its output folder."""

    def __init__(self, result: Any, folder: Path) -> None:
        self.result = result
        self.folder = folder
        self.run_id = result.run_id

    def page(self, task: str | None = None) -> str:
        base = f"/bria/gallery/{DAG_ID}/{quote(self.run_id, safe='')}"
        return base + (f"/{task}" if task else "")

    def media(self, task: str, name: str, *, thumb: bool = False) -> str:
        return (f"/bria/media/{DAG_ID}/{quote(self.run_id, safe='')}/{task}/-1/{quote(name, safe='')}"
                + ("?thumb=1" if thumb else ""))


@pytest.fixture(scope="module")
def run(
    emulator_session: Any, airflow_db: Path, api_app: Any, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    """One run of ``generation_deferrable`` (2 images, then an image-to-video) against the emulator."""
    from airflow_provider_bria.hooks.bria import BriaHook

    out = tmp_path_factory.mktemp("gallery") / "out"
    with pytest.MonkeyPatch.context() as mp:
        emulator_session.reset()
        mp.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(emulator_session.url, TOKEN))
        model_id = train_model(BriaHook(), emulator_session)
        result = run_test_dag(DAG_ID, {"model_id": model_id, "output_path": "file://" + str(out)})
    assert result.state == "success", result.tasks
    return Run(result, out)


def _names(html: str, attr: str = "data-name") -> list[str]:
    return re.findall(attr + r"='([^']+)'", html)


def test_run_gallery_shows_every_file_with_its_metadata(admin: Any, run: Run) -> None:
    resp = admin.get(run.page())
    assert resp.status_code == 200, resp.text
    page = resp.text
    on_disk = sorted(p.name for p in run.folder.iterdir() if p.suffix in (".png", ".mp4"))
    assert len(on_disk) == 3  # 2 images + 1 video
    thumbs = re.findall(r"<img class=bria-thumb [^>]*data-name='([^']+)'", page)
    videos = re.findall(r"<video class=bria-video [^>]*src='([^']+)'", page)
    assert sorted(thumbs) == sorted(n for n in on_disk if n.endswith(".png"))
    fulls = re.findall(r"<img class=bria-full [^>]*src='([^']+)'", page)  # click a thumbnail: full size
    assert sorted(u.rsplit("/", 1)[-1] for u in fulls) == sorted(quote(n) for n in thumbs)
    assert not any("thumb=1" in u for u in fulls)
    assert len(videos) == 1
    assert videos[0].endswith(quote([n for n in on_disk if n.endswith(".mp4")][0]))
    for record in run.result.xcom("images"):  # the operator's own records: prompt, seed, request id
        assert f">{record['prompt']}<" in page
        assert f">{record['seed']}<" in page
        assert f">{record['request_id']}<" in page
    assert f">{run.result.xcom('video')['request_id']}<" in page
    assert "Content-Security-Policy" in resp.headers
    assert "script" not in page.lower()


def test_pages_hold_no_presigned_url_nor_token(admin: Any, run: Run) -> None:
    """Sidecars keep the result URLs Bria returned; pages must not show them (nor the api_token)."""
    urls = []
    for side in run.folder.glob("*.json"):
        data = json.loads(side.read_text())
        urls += [data[k] for k in ("image_url", "video_url", "status_url") if data.get(k)]
    assert urls, "the sidecars were expected to hold result URLs"
    pages = admin.get(run.page()).text + admin.get(run.page("images")).text + admin.get(run.page("video")).text
    for url in urls:
        assert url not in pages
    assert TOKEN not in pages
    assert "http://" not in pages
    assert "https://" not in pages


def test_thumbnail_and_full_size(admin: Any, run: Run) -> None:
    from PIL import Image

    png = sorted(run.folder.glob("*.png"))[0]
    full = admin.get(run.media("images", png.name))
    assert full.status_code == 200
    assert full.headers["content-type"] == "image/png"
    assert full.content == png.read_bytes()
    thumb = admin.get(run.media("images", png.name, thumb=True))
    assert thumb.status_code == 200
    with Image.open(io.BytesIO(thumb.content)) as img, Image.open(png) as orig:
        assert max(img.size) <= 320 < max(orig.size)
        assert abs(img.size[0] / img.size[1] - orig.size[0] / orig.size[1]) < 0.02
    video = sorted(run.folder.glob("*.mp4"))[0]
    resp = admin.get(run.media("video", video.name))
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "video/mp4"
    assert resp.content == video.read_bytes()


def test_task_gallery_of_the_video_task_plays_inline(admin: Any, run: Run) -> None:
    page = admin.get(run.page("video")).text
    assert "<video class=bria-video controls" in page
    assert "bria-thumb" not in page


def test_anonymous_and_bad_tokens_are_refused(client: Any, run: Run) -> None:
    png = sorted(run.folder.glob("*.png"))[0].name
    for url in (run.page(), run.page("images"), run.media("images", png), "/bria/overview"):
        assert client.get(url).status_code == 401, url
        assert client.get(url, headers={"Authorization": "Bearer not-a-jwt"}).status_code in (401, 403), url
        assert client.get(url, cookies={"_token": "forged"}).status_code in (401, 403), url


def test_read_access_to_the_dag_is_required(client: Any, token: Any, run: Run, denied_dags: set[str]) -> None:
    png = sorted(run.folder.glob("*.png"))[0].name
    client.headers["Authorization"] = f"Bearer {token('viewer')}"
    assert client.get(run.media("images", png)).status_code == 200  # a viewer may read it...
    denied_dags.add(DAG_ID)
    for url in (run.page(), run.page("images"), run.media("images", png), run.media("images", png, thumb=True)):
        assert client.get(url).status_code == 403, url  # ...until the auth manager refuses that DAG


def test_the_session_cookie_of_the_ui_is_accepted(client: Any, token: Any, run: Run) -> None:
    client.cookies.set("_token", token("viewer"))
    assert client.get(run.page()).status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        "../out.png", "..%2Fout.png", "%2E%2E%2Fsecret.png", "..\\secret.png", ".hidden.png", "x.json",
        "missing.png", "%00.png", "....png", "secret.txt",
    ],
)
def test_media_cannot_leave_the_output_folder(admin: Any, run: Run, name: str) -> None:
    outside = run.folder.parent / "secret.png"
    outside.write_bytes(sorted(run.folder.glob("*.png"))[0].read_bytes())
    (run.folder / ".hidden.png").write_bytes(outside.read_bytes())
    base = f"/bria/media/{DAG_ID}/{quote(run.run_id, safe='')}/images/-1/"
    resp = admin.get(base + name)
    assert resp.status_code == 404, (name, resp.status_code)
    assert resp.content != outside.read_bytes()


def test_a_file_of_another_task_is_not_served_through_this_task(admin: Any, run: Run) -> None:
    """The media route resolves the folder from (dag, run, task): a name is looked up in that folder only."""
    video = sorted(run.folder.glob("*.mp4"))[0].name
    assert admin.get(run.media("images", video)).status_code == 200  # same folder for both tasks in this DAG
    assert admin.get(f"/bria/media/{DAG_ID}/{quote(run.run_id, safe='')}/nope/-1/{video}").status_code == 404
    assert admin.get(f"/bria/media/{DAG_ID}/no-such-run/images/-1/{video}").status_code == 404


def test_unknown_run_and_task(admin: Any, run: Run) -> None:
    assert admin.get(f"/bria/gallery/{DAG_ID}/no-such-run").status_code == 404
    assert admin.get(run.page("nope")).status_code == 404


def test_review_images_are_only_those_the_task_offered(admin: Any, api_app: Any, run: Run) -> None:
    """``/bria/review-image``: the folder and names come from the task's XCom ``review_images``, nothing else."""
    from airflow.models.xcom import XComModel

    pngs = sorted(p for p in run.folder.glob("*.png") if not p.name.startswith("."))
    XComModel.set("review_images", {"folder": "file://" + str(run.folder), "names": [pngs[0].name]},
                  dag_id=DAG_ID, task_id="images", run_id=run.run_id)
    base = f"/bria/review-image/{DAG_ID}/{quote(run.run_id, safe='')}"
    resp = admin.get(f"{base}/images/{pngs[0].name}")
    assert resp.status_code == 200
    assert resp.content == pngs[0].read_bytes()
    assert admin.get(f"{base}/images/{pngs[0].name}?thumb=1").headers["content-type"] == "image/png"
    assert admin.get(f"{base}/images/{pngs[1].name}").status_code == 404  # in the folder, but not offered
    assert admin.get(f"{base}/images/..%2F{pngs[0].name}").status_code == 404
    assert admin.get(f"{base}/video/{pngs[0].name}").status_code == 404  # another task offered nothing
    from fastapi.testclient import TestClient

    assert TestClient(api_app).get(f"{base}/images/{pngs[0].name}").status_code == 401
