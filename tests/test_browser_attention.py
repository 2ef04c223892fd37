"""End to end in a real browser: the attention page with the sample, AU12 only, and an uploaded photo with no face."""

from tests.browser import SHOTS, browser_page, require_browser
from tests.conftest import encode, gradient_image


def test_attention_page_in_a_browser(app_url):
    require_browser()
    from playwright.sync_api import expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 2400})  # Streamlit scrolls inside its own container
        page.goto(app_url, wait_until="networkidle")
        page.get_by_role("link", name="Attention maps").click()
        page.get_by_role("heading", name="Attention maps (EAC-Net)").wait_for(timeout=60_000)
        page.get_by_text("Feature channel").wait_for(timeout=120_000)
        page.locator("[data-testid='stPlotlyChart']").nth(3).wait_for(timeout=60_000)
        page.screenshot(path=str(SHOTS / "attention_sample.png"), full_page=True)

        page.get_by_role("button", name="Only AU12").click()
        row_6 = page.get_by_text("6 · AU12 Lip Corner Puller, AU14 Dimpler, AU15 Lip Corner Depressor")
        row_6.wait_for(timeout=60_000)
        expect(page.get_by_text("0 · AU1 Inner Brow Raiser")).to_have_count(0, timeout=60_000)
        page.screenshot(path=str(SHOTS / "attention_au12.png"), full_page=True)

        page.get_by_role("radio", name="Upload").click()
        photo_input = page.locator("[data-testid='stFileUploader']").locator("input[type='file']")
        photo_input.wait_for(state="attached", timeout=30_000)
        photo_input.set_input_files(files=[{"name": "no_face.png", "mimeType": "image/png",
                                            "buffer": encode(gradient_image(240, 320), "PNG")}])
        page.get_by_text("No face was found in this photo").wait_for(timeout=60_000)
        expect(page.locator("[data-testid='stImage']")).to_have_count(1, timeout=60_000)
        expect(page.locator("[data-testid='stException']")).to_have_count(0)
        page.screenshot(path=str(SHOTS / "attention_no_face.png"), full_page=True)

        page.get_by_text("中文", exact=True).click()
        page.get_by_text("这张照片中没有找到人脸").wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "attention_no_face_zh.png"), full_page=True)
