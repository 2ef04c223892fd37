"""End to end in a real browser: upload a photo on the prediction page, see the box and the chart; the
photos and choices survive leaving the page and a language switch."""
from core.i18n import translate
from core.images import encode_jpeg, sample_photo
from tests.browser import browser_page, checked, go, idle, require_browser


def test_upload_a_photo_and_see_boxes_and_scores(app_url, tmp_path):
    require_browser()
    with browser_page() as page:
        page.goto(app_url + "/prediction", wait_until="networkidle")
        page.get_by_role("heading", name="Expression prediction").wait_for(timeout=60_000)
        page.get_by_text("Search harder for faces").wait_for(timeout=30_000)
        page.get_by_test_id("stButtonGroup").get_by_role("radio", name="Upload").click()
        photos = page.locator("[data-testid='stFileUploader']").filter(has_text="Photos (JPEG").locator("input[type='file']")
        photos.wait_for(state="attached", timeout=30_000)
        photos.set_input_files(files=[{"name": "portrait.jpg", "mimeType": "image/jpeg",
                                       "buffer": encode_jpeg(sample_photo())},
                                      {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"not a photo"}])
        page.get_by_role("heading", name="portrait.jpg").wait_for(timeout=120_000)
        page.get_by_text("notes.jpg: This file is not an image we can read").wait_for(timeout=30_000)
        page.get_by_text("Face #1", exact=True).first.wait_for(timeout=60_000)  # the bar chart's title
        page.locator("text=#1 ").first.wait_for(timeout=30_000)  # the box label on the photo
        assert page.locator("[data-testid='stPlotlyChart']").count() >= 2  # photo with boxes + scores
        page.screenshot(path=str(tmp_path / "prediction.png"), full_page=True)

        # The photos and the choices survive leaving the page and a language switch.
        page.get_by_text(translate("pred_tta", "en")).click()
        idle(page)
        assert page.get_by_role("switch", name=translate("pred_tta", "en")).is_checked()
        go(page, "en", "nav_attention")
        page.get_by_role("heading", name=translate("att_title", "en")).first.wait_for(timeout=60_000)
        page.get_by_text("中文", exact=True).click()
        go(page, "zh", "nav_prediction")
        page.get_by_role("heading", name="portrait.jpg").wait_for(timeout=120_000)
        checked(page, "zh", "pred_model_bundled")
        assert page.get_by_test_id("stButtonGroup").get_by_role("radio", name=translate("source_upload", "zh")).is_checked()
        assert page.get_by_role("switch", name=translate("pred_tta", "zh")).is_checked()
        assert page.get_by_text(translate("privacy_line", "zh")).count() == 1, "once, in the sidebar"
        page.screenshot(path=str(tmp_path / "prediction_back_zh.png"), full_page=True)
