"""Unit tests of the generation building blocks: plan (seeds, names, prompts), rate limiter, output folder."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from generation_helpers import png_bytes

from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.operators import _generation_plan as plan
from airflow_provider_bria.operators._outputs import OutputFolder, OutputValidationError, check_image, to_uri
from airflow_provider_bria.operators._rate_limit import RateLimiter

# ---------------------------------------------------------------------------------------------- plan


def test_names_are_deterministic_and_depend_on_every_input() -> None:
    base = {"kind": "image", "prompt": "A red car!", "structured_prompt": None, "seed": 7, "index": 0,
            "params": {"aspect_ratio": "1:1"}}
    name = plan.output_stem(12, **base)
    assert name == plan.output_stem(12, **base)
    assert name.startswith("a-red-car-")
    assert len(name.rsplit("-", 1)[1]) == plan.HASH_LEN
    variants = [
        plan.output_stem(13, **base),
        plan.output_stem(12, **{**base, "prompt": "A red car"}),
        plan.output_stem(12, **{**base, "seed": 8}),
        plan.output_stem(12, **{**base, "index": 1}),
        plan.output_stem(12, **{**base, "params": {"aspect_ratio": "16:9"}}),
        plan.output_stem(12, **{**base, "structured_prompt": "{}"}),
    ]
    assert len({name, *variants}) == 7
    # parameters left to the server default do not change the name
    assert plan.output_stem(12, **{**base, "params": {"aspect_ratio": "1:1", "steps_num": None}}) == name


def test_slug_is_short_ascii_with_fallback() -> None:
    assert plan.slugify("  Hello, World — été 2025 ") == "hello-world-t-2025"
    assert plan.slugify("x" * 100) == "x" * plan.SLUG_MAX
    assert plan.slugify("日本語", fallback="structured") == "structured"


def test_seeds_base_plus_index_or_derived() -> None:
    items = plan.plan_items(5, [("a", None), ("b", None)], kind="image", per_request=3, base_seed=100)
    assert [(i.prompt, i.index, i.seed) for i in items] == [
        ("a", 0, 100), ("a", 1, 101), ("a", 2, 102), ("b", 0, 100), ("b", 1, 101), ("b", 2, 102)]
    assert len({i.stem for i in items}) == 6
    derived = plan.plan_items(5, [("a", None)], kind="image", per_request=2, base_seed=None)
    again = plan.plan_items(5, [("a", None)], kind="image", per_request=2, base_seed=None)
    assert [i.seed for i in derived] == [i.seed for i in again]
    assert derived[0].seed != derived[1].seed
    assert all(0 <= i.seed < plan.SEED_MODULUS for i in derived)
    other_model = plan.plan_items(6, [("a", None)], kind="image", per_request=1, base_seed=None)
    assert other_model[0].seed != derived[0].seed


def test_work_item_json_round_trip() -> None:
    item = plan.plan_items(5, [("a", '{"x": 1}')], kind="image", per_request=1, base_seed=3)[0]
    assert plan.WorkItem.from_json(json.loads(json.dumps(item.to_json()))) == item


@pytest.mark.parametrize(
    ("prompts", "structured", "expected"),
    [
        (["a", "b"], None, [("a", None), ("b", None)]),
        (["a", "b"], '{"s": 1}', [("a", '{"s": 1}'), ("b", '{"s": 1}')]),
        ([], '{"s": 1}', [(None, '{"s": 1}')]),
        ([], ['{"s": 1}', '{"s": 2}'], [(None, '{"s": 1}'), (None, '{"s": 2}')]),
        (["a", "b"], ['{"s": 1}', '{"s": 2}'], [("a", '{"s": 1}'), ("b", '{"s": 2}')]),
        ([], {"s": 1}, [(None, '{"s": 1}')]),
    ],
)
def test_pair_prompts(prompts: list[str], structured: object, expected: list[tuple[object, object]]) -> None:
    assert plan.pair_prompts(prompts, structured) == expected


def test_pair_prompts_errors() -> None:
    with pytest.raises(BriaInputError, match="nothing to generate"):
        plan.pair_prompts([], None)
    with pytest.raises(BriaInputError, match="exactly one per prompt"):
        plan.pair_prompts(["a", "b", "c"], ['{"s": 1}', '{"s": 2}'])


def test_prompts_file_lines_json_and_object_store(tmp_path: Path, memory_store: str) -> None:
    lines = tmp_path / "prompts.txt"
    lines.write_text("# header\nfirst prompt\n\n  second prompt  \nfirst prompt\n", encoding="utf-8")
    assert plan.collect_prompts("zero", str(lines)) == ["zero", "first prompt", "second prompt"]
    js = tmp_path / "prompts.json"
    js.write_text(json.dumps(["one", "two"]), encoding="utf-8")
    assert plan.collect_prompts(None, "file://" + str(js)) == ["one", "two"]

    from airflow.sdk import ObjectStoragePath

    mem = ObjectStoragePath(memory_store + "/in/prompts.txt")
    mem.fs.pipe(mem.path, b"alpha\nbeta\n")
    assert plan.collect_prompts(["x"], memory_store + "/in/prompts.txt") == ["x", "alpha", "beta"]


def test_read_prompts_file_is_public_on_the_operators_module(tmp_path: Path, memory_store: str) -> None:
    """DAGs import ``read_prompts_file`` from ``operators.generation``, never from the private plan module."""
    from airflow_provider_bria.operators import generation

    assert "read_prompts_file" in generation.__all__
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\ufeff# brand prompts\na harbour at dawn\n\n a market at noon \n", encoding="utf-8")
    assert generation.read_prompts_file(str(prompts)) == ["a harbour at dawn", "a market at noon"]
    assert generation.read_prompts_file(f"file://{tmp_path}/prompts.txt") == ["a harbour at dawn", "a market at noon"]
    js = tmp_path / "prompts.json"
    js.write_text('["x", "y"]', encoding="utf-8")
    assert generation.read_prompts_file(str(js)) == ["x", "y"]

    from airflow.sdk import ObjectStoragePath

    mem = ObjectStoragePath(memory_store + "/pub/prompts.txt")
    mem.fs.pipe(mem.path, b"alpha\n")
    assert generation.read_prompts_file(memory_store + "/pub/prompts.txt") == ["alpha"]
    with pytest.raises(BriaInputError, match="does not exist"):
        generation.read_prompts_file(str(tmp_path / "missing.txt"))


def test_prompt_input_errors(tmp_path: Path) -> None:
    with pytest.raises(BriaInputError, match="does not exist"):
        plan.collect_prompts(None, str(tmp_path / "missing.txt"))
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2", encoding="utf-8")
    with pytest.raises(BriaInputError, match="does not parse"):
        plan.collect_prompts(None, str(bad))
    with pytest.raises(BriaInputError, match=r"prompt\[1\]"):
        plan.collect_prompts(["ok", ""], None)
    with pytest.raises(BriaInputError, match="string or a list"):
        plan.collect_prompts(42, None)


def test_int_coercion_from_templates() -> None:
    assert plan.as_model_id("17") == 17
    assert plan.as_optional_seed("None") is None
    assert plan.as_optional_seed(" 42 ") == 42
    for bad in ("abc", 0, -1, True, 1.5):
        with pytest.raises(BriaInputError, match="model_id"):
            plan.as_model_id(bad)
    assert plan.as_optional_seed(-3) == -3  # the spec types seed as an integer and states no range
    for bad in ("abc", True, 1.5):
        with pytest.raises(BriaInputError, match="seed"):
            plan.as_optional_seed(bad)


# ---------------------------------------------------------------------------------------------- rate limit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rate_limiter_spaces_calls_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(5):
        limiter.acquire()
        starts.append(clock.now)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert gaps == pytest.approx([1.01, 1.01, 1.01, 1.01])  # 60/min plus the 1 % safety margin
    # after an idle period there is no burst credit: the next call starts now, the one after waits
    clock.now += 30
    limiter.acquire()
    t = clock.now
    limiter.acquire()
    assert clock.now - t == pytest.approx(1.01)


def test_rate_limiter_in_any_minute_never_exceeds_the_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(25):
        limiter.acquire()
        starts.append(clock.now)
    for s in starts:
        assert sum(1 for t in starts if s <= t <= s + 60) <= 10  # even a closed 60 s window


def test_rate_limiter_is_thread_safe() -> None:
    clock = FakeClock()  # time stands still: every reservation must get its own slot
    limiter = RateLimiter(120, clock=clock, sleep=clock.sleep)
    slots: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(25):
            wait = limiter.reserve()
            with lock:
                slots.append(clock.now + wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slots.sort()
    assert len(slots) == 200
    assert limiter.acquired == 200
    assert [round(b - a, 9) for a, b in zip(slots, slots[1:], strict=False)] == [0.505] * 199  # 120/min + 1 %


def test_rate_limiter_cancel_and_validation() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock, sleep=clock.sleep)
    assert limiter.acquire()
    cancelled = threading.Event()
    cancelled.set()
    assert limiter.acquire(cancelled) is False
    assert RateLimiter(None).acquire()
    for bad in (0, -5, "60", float("inf"), True):
        with pytest.raises(BriaInputError, match="requests_per_minute"):
            RateLimiter(bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_output_folder_write_list_and_json(kind: str, tmp_path: Path, memory_store: str) -> None:
    location = str(tmp_path / "out") if kind == "file" else memory_store + "/out"
    folder = OutputFolder(location)
    assert folder.names() == set()
    data = png_bytes(32, 16)
    size, kept = folder.write("a.png", [data[:10], data[10:]], keep_bytes=True)
    assert size == len(data)
    assert kept == data
    folder.write_json("a.json", {"k": 1})
    assert folder.names() == {"a.png", "a.json"}
    assert folder.read_json("a.json") == {"k": 1}
    assert folder.read_json("missing.json") is None
    assert folder.uri_of("a.png").startswith(f"{kind}://")
    assert folder.child("a.png").read_bytes() == data


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_rejected_content_leaves_nothing_behind(kind: str, tmp_path: Path, memory_store: str) -> None:
    location = str(tmp_path / "out") if kind == "file" else memory_store + "/rej"
    folder = OutputFolder(location)
    with pytest.raises(OutputValidationError, match="not a valid image"):
        folder.write("b.png", [b"<html>oops</html>"], check=lambda d: check_image(d, "1:1", name="b.png"))
    with pytest.raises(OutputValidationError, match="empty"):
        folder.write("c.png", [b""])
    assert folder.names() == set()
    assert not any(p.name.endswith(".part") for p in folder.root.iterdir()) if folder.root.exists() else True


def test_a_local_folder_commits_with_one_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # fsspec's local mv goes through shutil.move, which stats the target first: a syscall per file for nothing
    import os

    folder = OutputFolder(str(tmp_path / "out"))
    folder.probe()
    monkeypatch.setattr(folder._fs, "mv", lambda *a, **k: pytest.fail("a local commit is one os.replace"))
    # and the temporary file is the OS's own file object: fsspec's local opener costs ~0.1 ms of CPU a file
    monkeypatch.setattr(folder._fs, "open", lambda *a, **k: pytest.fail("a local write does not go through fsspec"))
    renames: list[tuple[str, str]] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renames.append((str(a), str(b))), real_replace(a, b))[1])
    data = png_bytes(16, 16)
    folder.write("a.png", [data], check=lambda d: check_image(d, None))
    folder.write_json("a.json", {"status": "submitted"})
    assert [Path(b).name for _, b in renames] == ["a.png", "a.json"]
    assert all(Path(a).name.startswith(".") and a.endswith(".part") for a, _ in renames)  # from a temporary name
    assert folder.names() == {"a.png", "a.json"}
    assert (tmp_path / "out" / "a.png").read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.json", "a.png"]


def test_a_local_folder_checks_content_in_memory_before_creating_any_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # content held in memory (checked images, sidecars) is checked first, then written with plain OS calls
    import os

    folder = OutputFolder(str(tmp_path / "out"))
    folder.probe()
    created: list[str] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *a, **k: (created.append(str(path)), real_open(path, *a, **k))[1])
    with pytest.raises(OutputValidationError):
        folder.write("bad.png", [b"<html>"], check=lambda d: check_image(d, None))
    assert created == []  # a rejected download never touched the disk
    data = png_bytes(16, 16)
    assert folder.write("a.png", [data[:7], data[7:]], check=lambda d: check_image(d, None)) == (len(data), data)
    assert len(created) == 1
    assert Path(created[0]).name.startswith(".a.png.")
    assert created[0].endswith(".part")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]
    assert (tmp_path / "out" / "a.png").read_bytes() == data


def test_temporary_names_draw_no_randomness_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # os.urandom is a system call that hands the GIL to the other workers: drawn once per folder, not per file
    import os
    import uuid

    folder = OutputFolder(str(tmp_path / "out"))
    other = OutputFolder(str(tmp_path / "out"))  # e.g. another task writing to the same folder
    folder.probe()
    monkeypatch.setattr(uuid, "uuid4", lambda: pytest.fail("a random token per file written"))
    monkeypatch.setattr(os, "urandom", lambda n: pytest.fail("a random token per file written"))
    created: list[str] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *a, **k: (created.append(str(path)), real_open(path, *a, **k))[1])
    data = png_bytes(16, 16)
    for n in range(3):
        folder.write(f"{n}.png", [data], check=lambda d: check_image(d, None))
        folder.write_json("same.json", {"n": n})
    other.write_json("same.json", {"n": "other"})
    names = [Path(c).name for c in created]
    assert len(set(names)) == len(names) == 7  # every temporary name is new...
    assert all(n.startswith(".") and n.endswith(".part") for n in names)
    # ...the clean-up of a later try still finds the final name in it (".<name>.<token>.part")
    assert {n[1:-len(".part")].rsplit(".", 1)[0] for n in names} == {"0.png", "1.png", "2.png", "same.json"}
    assert names[-1].rsplit(".", 2)[1][:8] != names[-2].rsplit(".", 2)[1][:8]  # the other folder's own token
    assert json.loads((tmp_path / "out" / "same.json").read_text())["n"] == "other"


@pytest.mark.parametrize("where", ["sub/out", "sub/out/", "file://{tmp}/sub/out/", "/", "memory", "memory/"])
def test_uri_of_is_the_path_class_join(where: str, tmp_path: Path, memory_store: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # uri_of builds a plain name's URI from a prefix computed once: it must be what ObjectStoragePath's "/" gives
    location = memory_store + where[len("memory"):] if where.startswith("memory") else where.format(tmp=tmp_path)
    if not location.startswith(("/", "memory", "file")):
        location = str(tmp_path / location)
    folder = OutputFolder(location)
    names = ["a.png", "shot-01-3f2a.json", "with space.png", "ünï €.png", ".hidden", "x..y", "sub/a.png", "..", "."]
    expected = {n: str(folder.root / n) for n in names}
    calls: list[str] = []
    real_truediv = type(folder.root).__truediv__
    monkeypatch.setattr(type(folder.root), "__truediv__", lambda self, n: (calls.append(n), real_truediv(self, n))[1])
    assert {n: folder.uri_of(n) for n in names} == expected
    assert calls == ["sub/a.png", "..", "."]  # plain names skip the path class


def test_object_store_writes_in_memory_content_in_one_put(memory_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker killed between "write a temporary object" and "copy it to its final name" left a .part object
    # (and lost a "submitted" sidecar): on stores with atomic PUTs nothing goes through a temporary object.
    folder = OutputFolder(memory_store + "/atomic")
    fs = folder._fs
    opened: list[str] = []
    real_open = fs.open
    monkeypatch.setattr(fs, "mv", lambda *a, **k: pytest.fail("no move on an atomic-PUT store"))
    monkeypatch.setattr(fs, "open", lambda path, *a, **k: (opened.append(str(path)), real_open(path, *a, **k))[1])
    data = png_bytes(16, 16)
    folder.write("a.png", [data], check=lambda d: check_image(d, None))
    folder.write_json("a.json", {"status": "submitted"})
    assert opened  # the store was written...
    assert [p for p in opened if p.endswith(".part")] == []  # ...never through a temporary object
    assert folder.names() == {"a.png", "a.json"}
    assert folder.child("a.png").read_bytes() == data
    with pytest.raises(OutputValidationError):
        folder.write("b.png", [b"<html>"], check=lambda d: check_image(d, None))
    assert not folder.exists("b.png")


def test_check_image_size_and_aspect() -> None:
    info = check_image(png_bytes(512, 288), "16:9")
    assert (info.format, info.width, info.height, info.aspect_ok) == ("PNG", 512, 288, True)
    assert check_image(png_bytes(512, 512), "16:9").aspect_ok is False
    assert check_image(png_bytes(512, 512), None).aspect_ok is None
    truncated = png_bytes(200, 200, (1, 2, 3))[:-30]
    with pytest.raises(OutputValidationError):
        check_image(truncated, "1:1")


def test_to_uri() -> None:
    assert to_uri("s3://conn@bucket/x") == "s3://conn@bucket/x"
    assert to_uri("/tmp/x") == "file:///tmp/x"
    with pytest.raises(BriaInputError):
        to_uri("  ")


# ---------------------------------------------------------------------------------------------- image input


def test_read_image_input_forms(tmp_path: Path, memory_store: str) -> None:
    import base64

    from airflow_provider_bria.operators._generation_inputs import read_image_input

    data = png_bytes(8, 8)
    b64 = base64.b64encode(data).decode()
    identity = read_image_input(b64)[1]
    assert identity.startswith("sha256:")
    assert read_image_input("https://cdn.example/x.png") == ("https://cdn.example/x.png",) * 2
    assert read_image_input(b64) == (b64, identity)
    assert read_image_input("data:image/png;base64," + b64) == (b64, identity)
    path = tmp_path / "in.png"
    path.write_bytes(data)
    assert read_image_input(str(path)) == (b64, identity)
    assert read_image_input("file://" + str(path)) == (b64, identity)
    assert read_image_input(data) == (b64, identity)
    from airflow.sdk import ObjectStoragePath

    mem = ObjectStoragePath(memory_store + "/img/in.png")
    mem.fs.pipe(mem.path, data)
    assert read_image_input(memory_store + "/img/in.png") == (b64, identity)
    for bad in ("", None, str(tmp_path / "missing.png"), base64.b64encode(b"not an image at all").decode()):
        with pytest.raises(BriaInputError):
            read_image_input(bad)


def test_default_output_path_is_per_run_and_safe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from generation_helpers import make_context

    from airflow_provider_bria.operators._generation_inputs import default_output_path

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    path = default_output_path(make_context(dag_id="my dag", run_id="manual__2025-01-01T00:00:00+00:00"))
    assert path == f"file://{tmp_path}/bria_outputs/my_dag/manual__2025-01-01T00_00_00_00_00"
