"""End to end in a real browser: upload a photo on the prediction page, see the box and the chart; the
photos and choices survive leaving the page and a language switch. The example photos, the faces table's
thumbnails and the model card's drill-down, in both languages."""
import re

from core.classes import display_name
from core.gallery import GALLERY
from core.i18n import translate
from core.images import encode_jpeg, sample_photo
from tests.browser import SHOTS, browser_page, checked, go, idle, require_browser


def test_upload_a_photo_and_see_boxes_and_scores(app_url, tmp_path):
    require_browser()
    with browser_page() as page:
        page.goto(app_url + "/prediction", wait_until="networkidle")
        page.get_by_role("heading", name="Expression prediction").wait_for(timeout=60_000)
        page.get_by_text("Search harder for faces").wait_for(timeout=120_000)
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


def _choose(page, lang: str, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled by the string `label`."""
    page.locator("[data-testid='stSelectbox']").filter(has_text=translate(label, lang)).click()
    page.get_by_role("option", name=option, exact=True).click()
    idle(page)


def faces_table(page, lang: str):
    """The faces table of the predict tab: hidden tabs keep their tables in the page, and a rerun may show
    the previous table beside the new one for a moment."""
    return page.get_by_role("tabpanel", name=translate("pred_tab_predict", lang)).locator(
        "[data-testid='stDataFrame']").first


def test_example_photos_face_thumbnails_and_the_model_card_in_both_languages(app_url):
    """The gallery's group photo gives a faces table with thumbnails; the model card's matrix opens on a cell's
    faces (when the server has the data set); both survive a language switch and leaving the page."""
    require_browser()
    from playwright.sync_api import expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 1600})
        page.goto(app_url + "/prediction", wait_until="networkidle")
        page.get_by_role("heading", name=translate("pred_title", "en")).wait_for(timeout=60_000)
        page.get_by_text(translate("gallery_credit_astronaut", "en")).wait_for(timeout=120_000)
        thumbnails = page.locator("[data-testid='stHorizontalBlock']").filter(
            has=page.get_by_role("button", name=translate("gallery_cat", "en"), exact=True))
        expect(thumbnails.first.locator("[data-testid='stImage']")).to_have_count(len(GALLERY), timeout=120_000)
        page.get_by_role("button", name=translate("gallery_group", "en"), exact=True).click()
        page.get_by_role("heading", name="4 faces in 1 photo").wait_for(timeout=120_000)
        page.get_by_text(translate("gallery_credit_group", "en")).wait_for(timeout=30_000)
        faces_table(page, "en").wait_for(timeout=60_000)  # a canvas: look at the screenshot
        idle(page)
        page.screenshot(path=str(SHOTS / "prediction_gallery_group.png"), full_page=True)

        page.get_by_role("tab", name=translate("pred_tab_card", "en")).click()
        page.get_by_text(translate("card_test_ferplus", "en")).wait_for(timeout=60_000)
        scored = page.get_by_text(re.compile("^Scored again on this server: "))
        stated = page.get_by_text(re.compile("^The faces behind each cell need the data set"))
        expect(scored.or_(stated)).to_be_visible(timeout=600_000)  # the first visit scores 3,152 faces
        with_faces = scored.is_visible()
        fear, surprise = (display_name(name, "en") for name in ("fear", "surprise"))
        if with_faces:
            _choose(page, "en", "cm_true_class", fear)
            _choose(page, "en", "cm_predicted_class", surprise)
            page.get_by_text(f"faces are {fear}, predicted {surprise}").wait_for(timeout=60_000)
            expect(page.locator("[data-testid='stImage']").first).to_be_visible(timeout=30_000)
        idle(page)
        page.wait_for_function("() => [...document.images].every(image => image.complete)", timeout=60_000)
        page.screenshot(path=str(SHOTS / "prediction_card_en.png"), full_page=True)

        page.get_by_text("中文", exact=True).click()
        expect(page.get_by_role("tab", name=translate("pred_tab_card", "zh"))).to_have_attribute(
            "aria-selected", "true", timeout=60_000)
        go(page, "zh", "nav_attention")
        page.get_by_role("heading", name=translate("att_title", "zh")).first.wait_for(timeout=60_000)
        go(page, "zh", "nav_prediction")
        expect(page.get_by_role("tab", name=translate("pred_tab_card", "zh"))).to_have_attribute(
            "aria-selected", "true", timeout=60_000)
        page.get_by_text(translate("card_test_ferplus", "zh")).wait_for(timeout=60_000)
        if with_faces:
            fear, surprise = (display_name(name, "zh") for name in ("fear", "surprise"))
            page.get_by_text(f"真实为{fear}、预测为{surprise}").first.wait_for(timeout=120_000)
            expect(page.locator("[data-testid='stImage']").first).to_be_visible(timeout=30_000)
        idle(page)
        page.screenshot(path=str(SHOTS / "prediction_card_back_zh.png"), full_page=True)

        page.get_by_role("tab", name=translate("pred_tab_predict", "zh")).click()
        page.get_by_role("heading", name=translate("gallery_group", "zh")).wait_for(timeout=120_000)
        page.get_by_text(translate("gallery_credit_group", "zh")).wait_for(timeout=30_000)
        faces_table(page, "zh").wait_for(timeout=30_000)
        idle(page)
        page.screenshot(path=str(SHOTS / "prediction_gallery_back_zh.png"), full_page=True)
