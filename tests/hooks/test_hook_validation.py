"""Bad input raises BriaInputError with a specific message before any request is sent."""

from __future__ import annotations

from typing import Any

import pytest
from hooktestlib import png_bytes

from airflow_provider_bria.exceptions import BriaInputError

PNG = png_bytes()
URLS = [f"https://cdn.example/{i}.png" for i in range(11)]

BAD_CALLS: dict[str, tuple[Any, str]] = {
    "project_ip_type_medium": (lambda h: h.create_project("p", "photography", "icons"), "only allowed with ip_medium"),
    "project_name_empty": (lambda h: h.create_project(" ", "photography", "other"), "project_name is required"),
    "project_bad_medium": (lambda h: h.create_project("p", "video", "other"), "Invalid ip_medium"),
    "project_ip_name_missing": (lambda h: h.create_project("p", "illustration", "defined_character",
                                                           ip_description="dog"), "ip_name is required"),
    "project_bad_version": (lambda h: h.create_project("p", "photography", "other", training_version="v9"),
                            "Unknown training_version"),
    "update_project_nothing": (lambda h: h.update_project(1), "at least one field"),
    "project_id_bool": (lambda h: h.get_project(True), "project_id must be a positive integer"),
    "project_id_zero": (lambda h: h.delete_project(0), "project_id must be a positive integer"),
    "project_id_text": (lambda h: h.get_project("abc"), "project_id must be a positive integer"),
    "dataset_upload_type": (lambda h: h.create_dataset(1, "d", upload_type="zip"), "Invalid upload_type"),
    "dataset_name": (lambda h: h.create_dataset(1, ""), "name is required"),
    "dataset_max_images": (lambda h: h.get_dataset(1, max_images=201), "max_images must be an integer between 1"),
    "dataset_bad_schema": (lambda h: h.update_dataset(1, visual_schema="{not json"), "valid JSON"),
    "dataset_bad_status": (lambda h: h.update_dataset(1, status="done"), "Invalid status"),
    "dataset_nothing": (lambda h: h.update_dataset(1), "at least one field"),
    "upload_both": (lambda h: h.upload_image(1, file=PNG, image_url="https://x/a.png"), "exactly one of"),
    "upload_none": (lambda h: h.upload_image(1), "exactly one of"),
    "upload_not_image": (lambda h: h.upload_image(1, file=b"GIF89a...."), "not a JPEG, PNG or WebP"),
    "upload_empty": (lambda h: h.upload_image(1, file=b""), "file is empty"),
    "upload_text_file": (lambda h: h.upload_image(1, file=__import__("io").StringIO("x")), "binary mode"),
    "upload_encoding": (lambda h: h.upload_image(1, file=PNG, encoding="xml"), "encoding must be"),
    "upload_bad_url": (lambda h: h.upload_image(1, image_url="ftp://x/a.png"), "absolute http(s) URL"),
    "upload_flag_type": (lambda h: h.upload_image(1, file=PNG, content_moderation="yes"), "True, False or None"),
    "caption_empty": (lambda h: h.update_image_caption(1, 2, ""), "caption is required"),
    "bulk_url": (lambda h: h.bulk_upload(1, "not a url"), "zip_url must be an absolute"),
    "schema_too_few": (lambda h: h.generate_visual_schema(URLS[:4]), "needs 5-10 images, got 4"),
    "schema_too_many": (lambda h: h.generate_visual_schema(URLS), "needs 5-10 images, got 11"),
    "schema_string": (lambda h: h.generate_visual_schema("https://x/a.png"), "must be a list"),
    "prefix_ip_type": (lambda h: h.generate_prefix(ip_type="icons", ip_medium="illustration",
                                                   image_urls=URLS[:1]), "generate_prefix supports ip_type"),
    "prefix_both_sources": (lambda h: h.generate_prefix(ip_type="stylized_scene", ip_medium="photography",
                                                        image_urls=URLS[:1], images=[PNG]), "exactly one of"),
    "prefix_too_many": (lambda h: h.generate_prefix(ip_type="stylized_scene", ip_medium="photography",
                                                    image_urls=URLS[:7]), "needs 1-6 images, got 7"),
    "prefix_ip_name": (lambda h: h.generate_prefix(ip_type="defined_character", ip_medium="photography",
                                                   image_urls=URLS[:1]), "ip_name is required"),
    "refine_json": (lambda h: h.refine_structured_prompt(1, "nope", "x"), "valid JSON"),
    "refine_instruction": (lambda h: h.refine_structured_prompt(1, "{}", " "), "instruction is required"),
    "model_mode": (lambda h: h.create_model(1, "m", training_mode="manual"), "Invalid training_mode"),
    "model_version": (lambda h: h.create_model(1, "m", training_version="sdxl"), "Unknown training_version"),
    "update_model_nothing": (lambda h: h.update_model(1), "name and/or description"),
    "train_range": (lambda h: h.start_training(1, {"rank": 512}), "rank=512: Input should be less than or equal"),
    "train_scheduler": (lambda h: h.start_training(1, {"lr_scheduler": "step"}), "lr_scheduler=step"),
    "train_not_dict": (lambda h: h.start_training(1, [("rank", 4)]), "must be a dict"),
    "checkpoint_step": (lambda h: h.get_checkpoint(1, "latest"), "checkpoint step must be a positive integer"),
    "upload_model_both": (lambda h: h.upload_model("https://x/m.safetensors", project_id=1,
                                                   project_parameters={"project_name": "p"}), "exactly one of"),
    "upload_model_params": (lambda h: h.upload_model("https://x/m.safetensors",
                                                     project_parameters={"project_name": "p", "ip_medium": "x"}),
                            "Invalid ip_medium"),
    "upload_model_unknown_key": (lambda h: h.upload_model("https://x/m.safetensors",
                                                          project_parameters={"project_name": "p", "zzz": 1}),
                                 "Unknown project_parameters keys"),
    "gen_no_prompt": (lambda h: h.generate_image(1), "Either prompt or structured_prompt"),
    "gen_ratio": (lambda h: h.generate_image(1, prompt="x", aspect_ratio="2:1"), "Invalid aspect_ratio"),
    "gen_steps": (lambda h: h.generate_image(1, prompt="x", steps_num=10), "steps_num must be between 20 and 50"),
    "gen_guidance": (lambda h: h.generate_image(1, prompt="x", guidance_scale=4.5), "guidance_scale must be an int"),
    "gen_influence": (lambda h: h.generate_image(1, prompt="x", tailored_model_influence=2),
                      "tailored_model_influence must be between"),
    "gen_seed": (lambda h: h.generate_image(1, prompt="x", seed="7"), "seed must be an integer"),
    "gen_sp_without_seed": (lambda h: h.generate_image(1, structured_prompt="{}"), "requires seed"),
    "gen_model_id": (lambda h: h.generate_image(" ", prompt="x"), "tailored_model_id"),
    "gen_sp_json": (lambda h: h.generate_image(1, structured_prompt="{bad"), "valid JSON"),
    "gen_webhook": (lambda h: h.generate_image(1, prompt="x", webhook_url="mailto:a@b"), "webhook_url"),
    "sp_no_prompt": (lambda h: h.generate_structured_prompt(1, structured_prompt="{}"), "needs a prompt"),
    "video_image": (lambda h: h.image_to_video(1, ""), "image is required"),
    "video_seed": (lambda h: h.image_to_video(1, "https://x/a.png", seed=1.5), "seed must be"),
    "legacy_prompt": (lambda h: h.text_to_image_legacy(1, ""), "prompt is required"),
    "legacy_num_results": (lambda h: h.text_to_image_legacy(1, "x", num_results=0), "num_results must be"),
    "legacy_ratio": (lambda h: h.text_to_image_legacy(1, "x", aspect_ratio="7:3"), "Invalid aspect_ratio"),
    "legacy_guidance": (lambda h: h.text_to_image_legacy(1, "x", guidance_method_1="sketch"),
                        "guidance_method_1 must be one of"),
    "status_id": (lambda h: h.get_status("a b/c"), "Invalid Bria request id"),
    "status_empty": (lambda h: h.get_status(""), "request_id_or_status_url is required"),
    "wait_interval": (lambda h: h.wait_for_job("r", poll_interval=0), "poll_interval must be a positive"),
    "foreign_absolute_path": (lambda h: h.request("GET", "https://elsewhere.example/v1/x"),
                              "Refusing to send the api_token"),
    "download_empty": (lambda h: h.open_download(""), "needs a URL"),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_input_is_rejected_before_any_request(name: str, hook: Any, api: Any) -> None:
    call, message = BAD_CALLS[name]
    api.register_uri(__import__("requests_mock").ANY, __import__("requests_mock").ANY, status_code=200, json=[])
    with pytest.raises(BriaInputError) as info:
        call(hook)
    assert message in str(info.value)
    assert api.call_count == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"retry_limit": -1}, {"retry_limit": 1.5}, {"retry_delay": -1}, {"retry_max_delay": "x"}, {"timeout": 0},
     {"timeout": "soon"}, {"bria_conn_id": ""}],
)
def test_bad_hook_arguments(kwargs: dict[str, Any]) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook

    with pytest.raises(BriaInputError):
        BriaHook(**kwargs)
