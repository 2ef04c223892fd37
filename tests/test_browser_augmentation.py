"""End to end in a real browser: Debian's Chromium driven by Playwright."""
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from core.gallery import GALLERY
from core.i18n import translate
from tests.browser import SHOTS, browser_page, idle, require_browser, running_app
from tests.test_app_augmentation import README_SPEC


def _png_bytes() -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_click_through_the_augmentation_page(app_url, tmp_path):
    require_browser()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        page.goto(app_url, wait_until="networkidle")
        page.get_by_role("heading", name="Data augmentation").wait_for(timeout=60_000)
        page.get_by_text("The lecture's filter bank F1–F10").wait_for(timeout=60_000)
        page.locator("[data-testid='stImage']").nth(9).wait_for(timeout=60_000)
        assert page.locator("[data-testid='stImage']").count() >= 10
        page.screenshot(path=str(SHOTS / "augmentation_filters.png"), full_page=True)

        # The gallery's thumbnails: another example photo replaces the astronaut, with its credit line.
        thumbnails = page.locator("[data-testid='stHorizontalBlock']").filter(
            has=page.get_by_role("button", name=translate("gallery_cat", "en"), exact=True))
        assert thumbnails.first.locator("[data-testid='stImage']").count() == len(GALLERY)
        page.get_by_role("button", name=translate("gallery_cameraman", "en"), exact=True).click()
        page.get_by_text(translate("gallery_credit_cameraman", "en")).wait_for(timeout=60_000)
        page.get_by_text("The lecture's filter bank F1–F10").wait_for(timeout=60_000)
        idle(page)
        page.screenshot(path=str(SHOTS / "augmentation_gallery.png"))

        page.get_by_role("tab", name="Affine").click()
        page.get_by_text("Rotation and translation").wait_for()
        page.get_by_text("t3 · horizontal flip about the width").click()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "augmentation_affine.png"), full_page=True)

        page.get_by_role("tab", name="Pipeline").click()
        page.get_by_text("Original · draw 1", exact=True).wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "augmentation_pipeline.png"), full_page=True)

        page.get_by_role("tab", name="Filters").click()
        page.get_by_role("radio", name="Upload").click()
        photo_input = page.locator("[data-testid='stFileUploader']").filter(
            has_text="Upload a photo").locator("input[type='file']")
        photo_input.wait_for(state="attached", timeout=30_000)
        photo_input.set_input_files(
            files=[{"name": "photo.png", "mimeType": "image/png", "buffer": _png_bytes()}])
        page.get_by_text("photo.png").wait_for(timeout=30_000)
        page.get_by_text("The lecture's filter bank F1–F10").wait_for(timeout=60_000)
        photo_input.set_input_files(
            files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"this is not an image"}])
        page.get_by_text("This file is not an image we can read").wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "augmentation_bad_upload.png"), full_page=True)

        page.get_by_text("中文", exact=True).click()
        page.get_by_role("heading", name="数据增强").wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "augmentation_zh.png"), full_page=True)


def test_a_deep_link_first_still_gets_the_frame():
    """The first request to a fresh server is /fine-tuning's URL: the sidebar and language switch are there."""
    require_browser()
    with running_app() as url, browser_page() as page:
        page.goto(url + "/finetuning", wait_until="networkidle")
        page.get_by_role("heading", name="Fine-tuning").first.wait_for(timeout=60_000)
        page.get_by_text("Language", exact=True).wait_for(timeout=30_000)
        nav = page.locator("[data-testid='stSidebarNav']").inner_text()
        assert "Attention maps" in nav and "shared" not in nav


def _open_pipeline_tab(page) -> None:
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.get_by_text("The lecture's filter bank F1–F10").wait_for(timeout=90_000)
    page.get_by_role("tab", name="Pipeline").click(timeout=90_000)
    page.get_by_text("Original · draw 8", exact=True).wait_for(timeout=90_000)


def test_a_loaded_pipeline_is_what_the_page_shows_and_downloads_in_both_languages(app_url):
    require_browser()
    from playwright.sync_api import expect

    with browser_page() as page:
        page.goto(app_url, wait_until="networkidle")
        _open_pipeline_tab(page)
        operators = page.locator("[data-testid='stMultiSelect']").filter(has_text="Operators, in order")
        expect(operators.locator("[data-tag]")).to_have_count(4, timeout=30_000)

        spec_input = page.locator("[data-testid='stFileUploader']").filter(
            has_text="Load a pipeline (JSON)").locator("input[type='file']")
        spec_input.set_input_files(files=[{"name": "readme.json", "mimeType": "application/json",
                                           "buffer": json.dumps(README_SPEC).encode()}])
        expect(operators.locator("[data-tag]")).to_have_count(3, timeout=60_000)
        expect(operators).not_to_contain_text("Colour jitter")

        draws = page.locator("[data-testid='stSlider']").filter(has_text="Number of draws").get_by_role("slider")
        draws.focus()
        page.keyboard.press("ArrowLeft")
        expect(page.get_by_text("Original · draw 8", exact=True)).to_have_count(0, timeout=60_000)
        page.get_by_text("Original · draw 7", exact=True).wait_for(timeout=60_000)
        with page.expect_download() as download:
            page.get_by_role("button", name="Download pipeline JSON").click()
        saved = json.loads(Path(download.value.path()).read_text())
        assert [op["op"] for op in saved["ops"]] == ["motion_blur", "affine", "crop"]

        # Beside the JSON, the same pipeline as Python code that calls core.augment, for this seed and count.
        page.get_by_text(translate("aug_as_code", "en")).click()
        python = page.locator("[data-testid='stCode']").filter(has_text="aug.PipelineSpec")
        expect(python).to_contain_text("aug.OpSpec('motion_blur'", timeout=30_000)
        expect(python).to_contain_text("def augmented(image, count=7, seed=0)")
        expect(python).not_to_contain_text("'color'")
        page.locator("[data-testid='stExpander']").filter(has_text=translate("aug_as_code", "en")).screenshot(
            path=str(SHOTS / "augmentation_as_python.png"))

        # A language switch keeps the open tab and the loaded pipeline, and translates the operators.
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.get_by_text("中文", exact=True).click()
        page.get_by_role("heading", name="数据增强").wait_for(timeout=30_000)
        expect(page.get_by_role("tab", name="增强流程")).to_have_attribute("aria-selected", "true", timeout=30_000)
        operators = page.locator("[data-testid='stMultiSelect']").filter(has_text="操作（按顺序）")
        expect(operators.locator("[data-tag]")).to_have_count(3, timeout=30_000)
        expect(operators.locator("[data-tag]").first).to_contain_text("运动模糊")
        expect(page.locator("[data-testid='stExpander']").filter(has_text=translate("aug_as_code", "zh"))).to_contain_text(
            "aug.OpSpec('motion_blur'", timeout=30_000)
        page.screenshot(path=str(SHOTS / "augmentation_pipeline_zh.png"), full_page=True)
