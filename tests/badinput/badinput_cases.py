"""The bad-input table: (what, how to provoke it, expected exception, expected message, reaches the server?).

Each case's ``prepare(world)`` builds whatever the case needs on the emulator (a project, a model...) and
returns the bad call; the test snapshots the emulator between the two. ``remote=False`` cases must be rejected
client-side, before any request; ``remote=True`` cases are only decidable by the server (wrong token, unknown
ids, an untrained model) and must leave no object behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from badinput_helpers import NO_RETRY, World, context, png
from kit import TEST_TOKEN as TOKEN
from kit import conn_json

from airflow_provider_bria._compat import ParamValidationError
from airflow_provider_bria.exceptions import (
    BriaAuthError,
    BriaConflictError,
    BriaConnectionConfigError,
    BriaInputError,
    BriaModelNotReadyError,
    BriaNotFoundError,
)

Prepared = Callable[[], Any]


@dataclass(frozen=True)
class Case:
    """One bad input.

    :param id: test id.
    :param prepare: builds prerequisites, returns the bad call.
    :param exc: the exception class expected (exactly this class or a subclass).
    :param message: a substring the message must contain.
    :param remote: whether the bad call reaches the server.
    :param xfail: reason, when a known product bug makes the case fail today (strict: it must fail).
    """

    id: str
    prepare: Callable[[World], Prepared]
    exc: type[BaseException]
    message: str
    remote: bool = False
    xfail: str | None = None


def _hook(call: Callable[[Any], Any]) -> Callable[[World], Prepared]:
    return lambda w: (lambda: call(w.hook))


# ---------------------------------------------------------------- operators


def _run(op: Any) -> Any:
    return op.execute(context())


def _project_op(**kwargs: Any) -> Callable[[World], Prepared]:
    from airflow_provider_bria.operators.project import BriaCreateProjectOperator

    def prepare(w: World) -> Prepared:
        args = {"project_name": "op-project", "ip_medium": "illustration", "ip_type": "stylized_scene", **kwargs}
        return lambda: _run(BriaCreateProjectOperator(task_id="p", hook_params=NO_RETRY, **args))

    return prepare


def _legacy_dataset_in_fibo_project(w: World) -> Prepared:
    from airflow_provider_bria.operators.dataset import BriaCreateDatasetOperator

    pid = w.project()
    return lambda: _run(BriaCreateDatasetOperator(task_id="d", project_id=pid, name="legacy", training_version="max",
                                                  hook_params=NO_RETRY))


def _legacy_model_on_fibo_dataset(w: World) -> Prepared:
    from airflow_provider_bria.operators.model import BriaCreateModelOperator

    did = w.dataset(images=5, completed=True)
    return lambda: _run(BriaCreateModelOperator(task_id="m", dataset_id=did, name="m", training_version="bria-3.2",
                                                hook_params=NO_RETRY))


def _model_on_draft_dataset(w: World) -> Prepared:
    from airflow_provider_bria.operators.model import BriaCreateModelOperator

    did = w.dataset(images=5)
    return lambda: _run(BriaCreateModelOperator(task_id="m", dataset_id=did, name="m", hook_params=NO_RETRY))


def _upload_op(files: dict[str, bytes], **kwargs: Any) -> Callable[[World], Prepared]:
    from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

    def prepare(w: World) -> Prepared:
        did = w.dataset()
        folder = w.folder("src", files)
        args = {"on_invalid": "fail", **kwargs}
        return lambda: _run(BriaUploadImagesOperator(task_id="u", dataset_id=did, source=folder,
                                                     hook_params=NO_RETRY, **args))

    return prepare


def _too_many_for_basic(w: World) -> Prepared:
    from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

    did = w.dataset()
    folder = w.folder("many", {f"img-{i:03d}.png": png(index=i) for i in range(201)})
    return lambda: _run(BriaUploadImagesOperator(task_id="u", dataset_id=did, source=folder, max_concurrency=8,
                                                 hook_params=NO_RETRY))


def _schema_op(count: int) -> Callable[[World], Prepared]:
    from airflow_provider_bria.operators.captions import BriaGenerateVisualSchemaOperator

    def prepare(w: World) -> Prepared:
        folder = w.folder("schema", {f"s-{i}.png": png(256, i) for i in range(count)})
        images = [f"{folder}/s-{i}.png" for i in range(count)]
        return lambda: _run(BriaGenerateVisualSchemaOperator(task_id="s", images=images, hook_params=NO_RETRY))

    return prepare


def _training_op(mode: str, params: dict[str, Any]) -> Callable[[World], Prepared]:
    from airflow_provider_bria.operators.training import BriaStartTrainingOperator

    def prepare(w: World) -> Prepared:
        mid = w.model(mode=mode)
        return lambda: _run(BriaStartTrainingOperator(task_id="t", model_id=mid, training_parameters=params,
                                                      wait_for_completion=False, hook_params=NO_RETRY))

    return prepare


def _generate_with_untrained_model(w: World) -> Prepared:
    from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator

    mid = w.model()
    out = str(w.tmp / "out")
    return lambda: _run(BriaGenerateImagesOperator(task_id="g", model_id=mid, prompt="a kite", output_path=out,
                                                   hook_params=NO_RETRY))


def _generate_op(**kwargs: Any) -> Callable[[World], Prepared]:
    from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator

    def prepare(w: World) -> Prepared:
        return lambda: _run(BriaGenerateImagesOperator(task_id="g", model_id=1, output_path=str(w.tmp / "out"),
                                                       hook_params=NO_RETRY, **kwargs))

    return prepare


# ---------------------------------------------------------------- zip, connection, DAG params


def _unsafe_zip_entry(name: str) -> Callable[[World], Prepared]:
    def prepare(w: World) -> Prepared:
        import fsspec

        from airflow_provider_bria.operators._bulk_zip import ZipEntry, write_zip
        from airflow_provider_bria.operators._image_sources import resolve_sources

        folder = w.folder("zipsrc", {"a.png": png(index=1)})
        source = resolve_sources(folder).images[0]
        out = str(w.tmp / "out.zip")
        return lambda: write_zip([ZipEntry(name=name, source=source)], fsspec.filesystem("file"), out)

    return prepare


def _with_connection(value: Callable[[World], str]) -> Callable[[World], Prepared]:
    def prepare(w: World) -> Prepared:
        w.set_connection(value(w))
        return lambda: w.hook.list_projects()

    return prepare


def _dataset_id_as_model_id(w: World) -> Prepared:
    did = w.dataset()
    return lambda: w.hook.start_training(did)


def _create_with_wrong_token(w: World) -> Prepared:
    w.set_connection(conn_json(w.emulator.url, "not-the-right-token"))
    return lambda: w.hook.create_project("stolen", "illustration", "stylized_scene")


def _params(dag_id: str, conf: dict[str, Any]) -> Callable[[World], Prepared]:
    def prepare(w: World) -> Prepared:
        dags = w.example_dags
        assert dags is not None
        def validate() -> Any:
            try:
                return _merged_params(dags[dag_id].params, conf).validate()
            except ParamValidationError:
                raise
            except ValueError as err:  # Airflow 3.2's serialized params raise ValueError (same message)
                raise ParamValidationError(str(err)) from err

        return validate

    return prepare


# ---------------------------------------------------------------- security review (issue 11)


def _generation_op(kind: str, **kwargs: Any) -> Callable[[World], Prepared]:
    """A generation operator of ``kind`` (images, video, legacy, structured) with ``kwargs``; ``output_path`` may
    be a callable of the world (to point into its temporary folder)."""
    from airflow_provider_bria.operators import generation as g

    classes = {"images": g.BriaGenerateImagesOperator, "video": g.BriaGenerateVideoOperator,
               "legacy": g.BriaGenerateLegacyImagesOperator, "structured": g.BriaGenerateStructuredPromptOperator}
    inputs = {"video": {"image": "https://img.example/a.png"}}.get(kind, {"prompt": "a kite"})

    def prepare(w: World) -> Prepared:
        args = {"task_id": "g", "model_id": 1, "hook_params": NO_RETRY, **inputs, **kwargs}
        for key, value in list(args.items()):
            if callable(value):
                args[key] = value(w)
        return lambda: _run(classes[kind](**args))

    return prepare


def _a_file(w: World) -> str:
    path = w.tmp / "not-a-folder.txt"
    path.write_text("a file")
    return str(path)


def _prompts_file(lines: int) -> Callable[[World], str]:
    def make(w: World) -> str:
        path = w.tmp / f"prompts-{lines}.txt"
        path.write_text("".join(f"a kite number {i}\n" for i in range(lines)))
        return str(path)

    return make


def _big_png() -> bytes:
    """A valid 2200x2200 PNG of noise: ~13.9 MiB, above Bria's 12 MB limit."""
    import io
    import os

    from PIL import Image

    buf = io.BytesIO()
    Image.frombytes("RGB", (2200, 2200), os.urandom(2200 * 2200 * 3)).save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


def _upload_big_png(w: World) -> Prepared:
    return _upload_op({"ok.png": png(index=1), "huge.png": _big_png()})(w)


def _evil(w: World, path: str = "/v2/status/r-1") -> str:
    """``http://localhost:<port>\\@127.0.0.1:<port><path>``: ``urlsplit`` sees the emulator, urllib3 localhost."""
    port = w.emulator.url.rsplit(":", 1)[-1]
    return f"http://localhost:{port}\\@127.0.0.1:{port}{path}"


def _with_token(token: str) -> Callable[[World], Prepared]:
    return _with_connection(lambda w: conn_json(w.emulator.url, token))


def _merged_params(params: Any, conf: dict[str, Any]) -> Any:
    """The DAG's params with a run conf applied, as the API does (``deep_merge`` exists from Airflow 3.2)."""
    if hasattr(params, "deep_merge"):
        return params.deep_merge(conf)
    import copy

    merged = copy.deepcopy(params)
    for key, value in conf.items():
        merged[key] = value
    return merged


NOT_AN_IMAGE = b"Just some text pretending to be an image.\n" * 10
JUNK = bytes(range(1, 256)).replace(b"\n", b"") * 4
CORRUPT_PNG = png(index=3)[:300]

CASES: list[Case] = [
    # ---- hook: enums, combinations, word limits, counts, ids
    Case("hook-unknown-ip-type", _hook(lambda h: h.create_project("p", "illustration", "robots")),
         BriaInputError, "Invalid ip_type 'robots'"),
    Case("hook-unknown-ip-medium", _hook(lambda h: h.create_project("p", "painting", "other")),
         BriaInputError, "Invalid ip_medium 'painting'"),
    Case("hook-icons-need-illustration", _hook(lambda h: h.create_project("p", "photography", "icons")),
         BriaInputError, "only allowed with ip_medium 'illustration'"),
    Case("hook-character-without-ip-name",
         _hook(lambda h: h.create_project("p", "illustration", "defined_character", ip_description="a fox")),
         BriaInputError, "ip_name is required for ip_type 'defined_character'"),
    Case("hook-unknown-training-version",
         _hook(lambda h: h.create_project("p", "illustration", "other", training_version="sdxl")),
         BriaInputError, "Unknown training_version 'sdxl'"),
    Case("hook-empty-project-name", _hook(lambda h: h.create_project("  ", "illustration", "other")),
         BriaInputError, "project_name is required"),
    Case("hook-unknown-upload-type", _hook(lambda h: h.create_dataset(1, "d", upload_type="huge")),
         BriaInputError, "Invalid upload_type 'huge'"),
    Case("hook-max-images-out-of-range", _hook(lambda h: h.get_dataset(1, max_images=500)),
         BriaInputError, "max_images must be an integer between 1 and 200, got 500"),
    Case("hook-model-id-not-a-number", _hook(lambda h: h.get_model("abc")),
         BriaInputError, "model_id must be a positive integer id, got 'abc'"),
    Case("hook-negative-dataset-id", _hook(lambda h: h.delete_dataset(-3)),
         BriaInputError, "dataset_id must be a positive integer id, got -3"),
    Case("hook-visual-schema-eleven-images",
         _hook(lambda h: h.generate_visual_schema([f"https://img.example/{i}.png" for i in range(11)])),
         BriaInputError, "generate_visual_schema needs 5-10 images, got 11"),
    Case("hook-visual-schema-four-images",
         _hook(lambda h: h.generate_visual_schema([f"https://img.example/{i}.png" for i in range(4)])),
         BriaInputError, "generate_visual_schema needs 5-10 images, got 4"),
    Case("hook-prefix-unsupported-ip-type",
         _hook(lambda h: h.generate_prefix(ip_type="icons", ip_medium="illustration",
                                           image_urls=["https://img.example/a.png"])),
         BriaInputError, "generate_prefix supports ip_type"),
    Case("hook-upload-gif", _hook(lambda h: h.upload_image(1, file=b"GIF89a" + b"\0" * 64, image_name="a.gif")),
         BriaInputError, "is not a JPEG, PNG or WebP image"),
    Case("hook-upload-empty-file", _hook(lambda h: h.upload_image(1, file=b"", image_name="a.png")),
         BriaInputError, "file is empty"),
    Case("hook-upload-file-and-url",
         _hook(lambda h: h.upload_image(1, file=png(64), image_url="https://img.example/a.png")),
         BriaInputError, "exactly one of file or image_url"),
    Case("hook-expert-learning-rate-too-high", _hook(lambda h: h.start_training(1, {"learning_rate": 0.5})),
         BriaInputError, "learning_rate=0.5: Input should be less than or equal to 0.001"),
    Case("hook-expert-rank-too-low", _hook(lambda h: h.start_training(1, {"rank": 2})),
         BriaInputError, "rank=2: Input should be greater than or equal to 4"),
    Case("hook-expert-unknown-scheduler", _hook(lambda h: h.start_training(1, {"lr_scheduler": "exponential"})),
         BriaInputError, "lr_scheduler=exponential"),
    Case("hook-generate-without-prompt", _hook(lambda h: h.generate_image(1)),
         BriaInputError, "Either prompt or structured_prompt"),
    Case("hook-generate-guidance-out-of-range", _hook(lambda h: h.generate_image(1, prompt="x", guidance_scale=7)),
         BriaInputError, "guidance_scale must be between 3 and 5, got 7"),
    Case("hook-generate-unknown-aspect-ratio", _hook(lambda h: h.generate_image(1, prompt="x", aspect_ratio="21:9")),
         BriaInputError, "Invalid aspect_ratio '21:9'"),
    Case("hook-structured-prompt-not-json",
         _hook(lambda h: h.generate_image(1, structured_prompt="{not json", seed=1)),
         BriaInputError, "structured_prompt must be a string holding valid JSON"),
    # ---- hook: ids the server does not know
    Case("hook-unknown-model-id", _hook(lambda h: h.get_model(987654)),
         BriaNotFoundError, "HTTP 404", remote=True),
    Case("hook-start-training-unknown-model", _hook(lambda h: h.start_training(987654)),
         BriaNotFoundError, "HTTP 404", remote=True),
    Case("hook-delete-unknown-dataset", _hook(lambda h: h.delete_dataset(987654)),
         BriaNotFoundError, "HTTP 404", remote=True),
    Case("hook-dataset-id-used-as-model-id", _dataset_id_as_model_id, BriaNotFoundError, "Model not found",
         remote=True),
    Case("hook-generate-with-foreign-model", _hook(lambda h: h.generate_image("987654", prompt="a kite")),
         BriaAuthError, "Model does not belong to organization", remote=True),
    # ---- operators
    Case("op-project-unknown-ip-type", _project_op(ip_type="robots"), BriaInputError, "Invalid ip_type 'robots'"),
    Case("op-project-icons-photography", _project_op(ip_type="icons", ip_medium="photography"),
         BriaInputError, "only allowed with ip_medium 'illustration'"),
    Case("op-legacy-dataset-in-fibo-project", _legacy_dataset_in_fibo_project,
         BriaInputError, "FIBO and legacy cannot be mixed"),
    Case("op-legacy-model-on-fibo-dataset", _legacy_model_on_fibo_dataset,
         BriaInputError, "FIBO datasets train FIBO models only"),
    Case("op-model-on-draft-dataset", _model_on_draft_dataset, BriaConflictError,
         "a model can only be created on a completed dataset"),
    Case("op-upload-small-image", _upload_op({"ok.png": png(index=1), "small.png": png(512, 2)}),
         BriaInputError, "below the minimum"),
    Case("op-upload-corrupt-png", _upload_op({"ok.png": png(index=1), "broken.png": CORRUPT_PNG}),
         BriaInputError, "broken.png"),
    Case("op-upload-text-file-named-png", _upload_op({"ok.png": png(index=1), "notes.png": NOT_AN_IMAGE}),
         BriaInputError, "notes.png"),
    Case("op-upload-binary-junk", _upload_op({"ok.png": png(index=1), "junk.jpg": JUNK}),
         BriaInputError, "junk.jpg"),
    Case("op-upload-201-images-to-basic", _too_many_for_basic,
         BriaInputError, "would exceed the basic dataset limit of 200"),
    Case("op-upload-guard-max-images", _upload_op({f"i{i}.png": png(index=i) for i in range(3)}, max_images=2),
         BriaInputError, "exceed max_images=2"),
    Case("op-visual-schema-eleven-images", _schema_op(11), BriaInputError, "needs 5-10 images, got 11"),
    Case("op-expert-params-on-automated-model", _training_op("fully_automated", {"rank": 64}),
         BriaInputError, "only supported when training_mode is set to 'expert'"),
    Case("op-expert-steps-out-of-range", _training_op("expert", {"total_training_steps": 6000}),
         BriaInputError, "total_training_steps=6000: Input should be less than or equal to 5000"),
    Case("op-generate-zero-images", _generate_op(prompt="a kite", num_images_per_prompt=0),
         BriaInputError, "num_images_per_prompt"),
    Case("op-generate-steps-out-of-range", _generate_op(prompt="a kite", steps_num=10),
         BriaInputError, "steps_num must be between 20 and 50, got 10"),
    Case("op-generate-with-untrained-model", _generate_with_untrained_model,
         BriaModelNotReadyError, "is Created, not Completed"),
    # ---- zip entries
    Case("zip-entry-parent-dir", _unsafe_zip_entry("../evil.png"), BriaInputError, "Unsafe zip entry name"),
    Case("zip-entry-nested-parent", _unsafe_zip_entry("ok/../../etc/passwd.png"), BriaInputError,
         "Unsafe zip entry name"),
    Case("zip-entry-absolute", _unsafe_zip_entry("/tmp/abs.png"), BriaInputError, "Unsafe zip entry name"),
    # ---- connection
    Case("conn-without-token", _with_connection(lambda w: conn_json(w.emulator.url, None)),
         BriaConnectionConfigError, "has no API token"),
    Case("conn-ftp-host", _with_connection(lambda w: conn_json("ftp://files.example.com", TOKEN)),
         BriaConnectionConfigError, "must be an http(s) URL"),
    Case("conn-bad-console-url",
         _with_connection(lambda w: conn_json(w.emulator.url, TOKEN, extra={"console_url": "javascript:x"})),
         BriaConnectionConfigError, "extra 'console_url' must be an http(s) URL"),
    Case("conn-negative-timeout",
         _with_connection(lambda w: conn_json(w.emulator.url, TOKEN, extra={"timeout": -5})),
         BriaConnectionConfigError, "must be a positive number of seconds"),
    Case("conn-wrong-token-read", _with_connection(lambda w: conn_json(w.emulator.url, "not-the-right-token")),
         BriaAuthError, "HTTP 401", remote=True),
    Case("conn-wrong-token-create", _create_with_wrong_token, BriaAuthError, "HTTP 401", remote=True),
    # ---- DAG params (validated as the API server validates a triggered run's conf)
    Case("param-prep-unknown-ip-type", _params("bria_dataset_preparation", {"ip_type": "robots"}),
         ParamValidationError, "'robots' is not one of"),
    Case("param-prep-too-few-demo-images", _params("bria_dataset_preparation", {"num_demo_images": 3}),
         ParamValidationError, "3 is less than the minimum of 5"),
    Case("param-prep-schema-sample-eleven", _params("bria_dataset_preparation", {"schema_sample_size": 11}),
         ParamValidationError, "11 is greater than the maximum of 10"),
    Case("param-training-unknown-mode", _params("bria_training", {"training_mode": "manual"}),
         ParamValidationError, "'manual' is not one of"),
    Case("param-training-dataset-id-text", _params("bria_training", {"dataset_id": "twelve"}),
         ParamValidationError, "'twelve' is not of type"),
    Case("param-generation-nine-images", _params("bria_scheduled_generation", {"images_per_prompt": 9}),
         ParamValidationError, "9 is greater than the maximum of 8"),
    Case("param-generation-aspect-ratio", _params("bria_scheduled_generation", {"aspect_ratio": "21:9"}),
         ParamValidationError, "'21:9' is not one of"),
    Case("param-generation-no-prompts", _params("bria_scheduled_generation", {"prompts": []}),
         ParamValidationError, "should be non-empty"),
    # ---- security review (issue 11): connection
    Case("conn-host-unclosed-ipv6", _with_connection(lambda w: conn_json("http://[::1", TOKEN)),
         BriaConnectionConfigError, "an unclosed '[' of an IPv6 address"),
    Case("conn-host-with-space", _with_connection(lambda w: conn_json("http://bria .test", TOKEN)),
         BriaConnectionConfigError, "contains whitespace, control characters or a backslash"),
    Case("conn-host-backslash-at", _with_connection(lambda w: conn_json(_evil(w, ""), TOKEN)),
         BriaConnectionConfigError, "contains whitespace, control characters or a backslash"),
    Case("conn-token-inner-newline", _with_token("test-token\n7f3c9a1e5b"),
         BriaConnectionConfigError, "re-enter the token exactly as Bria shows it"),
    Case("conn-token-crlf-header-injection", _with_token("tok\r\nX-Injected: 1"),
         BriaConnectionConfigError, "re-enter the token exactly as Bria shows it"),
    Case("conn-token-inner-tab", _with_token("tok\tmore"), BriaConnectionConfigError, "the value is not shown"),
    Case("conn-token-non-ascii", _with_token("tok\u00e9n"), BriaConnectionConfigError, "non-ASCII"),
    Case("conn-token-nul", _with_token("tok\x00en"), BriaConnectionConfigError, "control"),
    Case("conn-timeout-not-a-number",
         _with_connection(lambda w: conn_json(w.emulator.url, TOKEN, extra={"timeout": "soon"})),
         BriaConnectionConfigError, "must be a number of seconds"),
    # ---- security review: where the token may go
    Case("hook-status-dotdot-path", _hook(lambda h: h.get_status("../../v1/tailored-gen/projects")),
         BriaInputError, "pass the request_id"),
    Case("hook-status-dotdot-id", _hook(lambda h: h.get_status("..")), BriaInputError, "pass the request_id"),
    Case("hook-status-backslash-at-url", lambda w: (lambda: w.hook.get_status(_evil(w))),
         BriaInputError, "backslash or user-info"),
    Case("hook-status-userinfo-url", _hook(lambda h: h.get_status("http://user:pw@127.0.0.1/v2/status/r-1")),
         BriaInputError, "backslash or user-info"),
    Case("hook-status-tab-in-url", _hook(lambda h: h.get_status("http://127.0.0.1\t.evil/v2/status/r-1")),
         BriaInputError, "whitespace or control characters"),
    Case("hook-request-backslash-at-url",
         lambda w: (lambda: w.hook.request("GET", _evil(w, "/v1/tailored-gen/projects"))),
         BriaInputError, "backslash or user-info"),
    Case("hook-request-foreign-origin",
         _hook(lambda h: h.request("GET", "https://evil.example/v1/tailored-gen/projects")),
         BriaInputError, "Refusing to send the api_token to https://evil.example"),
    Case("hook-request-dot-segments",
         _hook(lambda h: h.request("GET", "/v1/tailored-gen/../../_emulator/state")),
         BriaInputError, "'.' and '..' segments are not allowed"),
    Case("hook-request-file-url", _hook(lambda h: h.request("GET", "file:///etc/passwd")),
         BriaInputError, "must be an absolute http(s) URL"),
    Case("hook-download-file-url", _hook(lambda h: h.open_download("file:///etc/passwd")),
         BriaInputError, "must be an absolute http(s) URL"),
    Case("hook-download-backslash-at-url",
         lambda w: (lambda: w.hook.open_download(_evil(w, "/_emulator/files/a.png"))),
         BriaInputError, "backslash or user-info"),
    Case("hook-upload-file-url", _hook(lambda h: h.upload_image(1, image_url="file:///etc/passwd")),
         BriaInputError, "image_url must be an absolute http(s) URL"),
    Case("hook-generate-file-webhook",
         _hook(lambda h: h.generate_image(1, prompt="a kite", webhook_url="file:///etc/passwd")),
         BriaInputError, "webhook_url must be an absolute http(s) URL"),
    # ---- security review: output location, spend, download limits (all before any request)
    Case("op-output-path-is-a-file", _generation_op("images", output_path=_a_file),
         BriaInputError, "is a file, not a folder"),
    Case("op-output-path-under-a-file", _generation_op("images", output_path=lambda w: _a_file(w) + "/sub"),
         BriaInputError, "is not writable"),
    Case("op-output-path-unknown-protocol", _generation_op("images", output_path="nosuchproto://bucket/out"),
         BriaInputError, "output_path 'nosuchproto://bucket/out' cannot be used as an output folder"),
    Case("op-output-path-http", _generation_op("images", output_path="http://example.com/out"),
         BriaInputError, "output_path 'http://example.com/out' cannot be used as an output folder"),
    Case("op-video-output-path-is-a-file", _generation_op("video", output_path=_a_file),
         BriaInputError, "is a file, not a folder"),
    Case("op-legacy-output-path-unknown-protocol", _generation_op("legacy", output_path="nosuchproto://b/o"),
         BriaInputError, "cannot be used as an output folder"),
    Case("op-structured-output-path-is-a-file", _generation_op("structured", output_path=_a_file),
         BriaInputError, "is a file, not a folder"),
    Case("op-prompts-file-200k-lines",
         _generation_op("images", prompt=None, prompts_file=_prompts_file(200_000), num_images_per_prompt=4,
                        output_path=lambda w: str(w.tmp / "out")),
         BriaInputError, "would cost 800000 paid generation requests"),
    Case("op-legacy-over-max-requests",
         _generation_op("legacy", prompt=["a", "b", "c"], max_requests=2, output_path=lambda w: str(w.tmp / "o")),
         BriaInputError, "would cost 3 paid generation requests"),
    Case("op-structured-over-max-requests",
         _generation_op("structured", prompt=["a", "b"], max_requests="1"),
         BriaInputError, "more than max_requests=1"),
    Case("op-max-requests-zero", _generation_op("images", max_requests=0), BriaInputError, "max_requests must be >= 1"),
    Case("op-max-download-bytes-zero", _generation_op("video", max_download_bytes=0),
         BriaInputError, "max_download_bytes must be >= 1"),
    Case("op-download-timeout-negative", _generation_op("images", download_timeout=-1),
         BriaInputError, "download_timeout must be a positive number"),
    Case("op-max-output-pixels-text", _generation_op("images", max_output_pixels="lots"),
         BriaInputError, "max_output_pixels must be an integer"),
    Case("op-upload-png-above-12-mb", _upload_big_png, BriaInputError, "above Bria's 12 MB image limit"),
]
