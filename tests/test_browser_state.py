"""In a real browser: choices survive a language switch and leaving the page, uploads survive leaving
the page. (AppTest keeps widget values that a browser loses, so only a browser shows these bugs.)"""
import io
import zipfile

from core.i18n import translate
from core.images import encode_jpeg, encode_png, sample_photo
from tests.browser import SHOTS, browser_page, require_browser
from tests.conftest import gradient_image


def _class_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("happy", "sad"):
            for index in range(6):
                archive.writestr(f"{label}/{index}.png", encode_png(gradient_image(48, 48, seed=index)))
    return buffer.getvalue()


def _go(page, lang: str, nav: str) -> None:
    page.locator("[data-testid='stSidebarNav']").get_by_text(translate(nav, lang), exact=True).click()


RADIOS = {"ft_source_zip": "ft_source", "ft_start_bundled": "ft_start", "balance_weighted_loss": "ft_balance",
          "ft_augment_none": "ft_augment", "pred_model_upload": "pred_model", "pred_model_bundled": "pred_model"}


def _group(page, lang: str, option: str):
    return page.get_by_role("radiogroup", name=translate(RADIOS[option], lang), exact=True)


def _idle(page) -> None:
    """Wait until the app has finished its run (Streamlit shows its status widget while it runs)."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="detached", timeout=120_000)


def _pick(page, lang: str, option: str) -> None:
    _group(page, lang, option).get_by_text(translate(option, lang), exact=True).click()
    _idle(page)


def _checked(page, lang: str, option: str) -> None:
    radio = _group(page, lang, option).get_by_role("radio", name=translate(option, lang), exact=True)
    radio.wait_for(state="attached", timeout=30_000)
    assert radio.is_checked(), f"{option} ({lang}) is not shown as selected"


def _selectbox_shows(page, lang: str, label: str, option: str) -> None:
    shown = page.get_by_role("combobox", name=translate(label, lang), exact=True).input_value()
    assert shown == translate(option, lang), (label, shown)


def test_fine_tuning_choices_survive_a_language_switch_and_leaving_the_page(app_url):
    require_browser()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        page.goto(app_url + "/finetuning", wait_until="networkidle")
        page.get_by_role("heading", name="Fine-tuning").first.wait_for(timeout=60_000)
        _pick(page, "en", "ft_source_zip")
        upload = page.locator("[data-testid='stFileUploader'] input[type='file']").first
        upload.wait_for(state="attached", timeout=30_000)
        upload.set_input_files(files=[{"name": "faces.zip", "mimeType": "application/zip", "buffer": _class_zip()}])
        page.get_by_role("radio", name=translate("ft_start_bundled", "en"), exact=True).wait_for(timeout=60_000)
        for key in ("ft_start_bundled", "balance_weighted_loss", "ft_augment_none"):
            _pick(page, "en", key)
        page.get_by_role("combobox", name=translate("ft_optimizer", "en"), exact=True).click()
        page.get_by_role("option", name=translate("opt_adam", "en"), exact=True).click()
        _idle(page)
        for key in ("ft_source_zip", "ft_start_bundled", "balance_weighted_loss", "ft_augment_none"):
            _checked(page, "en", key)

        page.get_by_text("中文", exact=True).click()
        page.get_by_role("heading", name=translate("ft_title", "zh")).first.wait_for(timeout=30_000)
        _idle(page)
        page.screenshot(path=str(SHOTS / "finetuning_zh_choices.png"), full_page=True)
        for key in ("ft_source_zip", "ft_start_bundled", "balance_weighted_loss", "ft_augment_none"):
            _checked(page, "zh", key)
        _selectbox_shows(page, "zh", "ft_optimizer", "opt_adam")
        _selectbox_shows(page, "zh", "ft_schedule", "sched_cosine")

        _go(page, "zh", "nav_prediction")
        page.get_by_role("heading", name=translate("pred_title", "zh")).wait_for(timeout=60_000)
        _go(page, "zh", "nav_finetuning")
        page.get_by_role("heading", name=translate("ft_title", "zh")).first.wait_for(timeout=30_000)
        page.get_by_text("faces.zip").first.wait_for(timeout=30_000)  # the archive is still in use
        for key in ("ft_source_zip", "ft_start_bundled", "balance_weighted_loss", "ft_augment_none"):
            _checked(page, "zh", key)
        _selectbox_shows(page, "zh", "ft_optimizer", "opt_adam")
        page.screenshot(path=str(SHOTS / "finetuning_back.png"), full_page=True)


def test_prediction_photos_and_choices_survive_leaving_the_page_and_a_language_switch(app_url):
    require_browser()
    with browser_page() as page:
        page.goto(app_url + "/prediction", wait_until="networkidle")
        page.get_by_role("heading", name="Expression prediction").wait_for(timeout=60_000)
        _pick(page, "en", "pred_model_upload")
        _pick(page, "en", "pred_model_bundled")
        page.get_by_test_id("stButtonGroup").get_by_role("radio", name="Upload").click()
        photos = page.locator("[data-testid='stFileUploader']").filter(has_text="Photos (JPEG").locator("input[type='file']")
        photos.wait_for(state="attached", timeout=30_000)
        photos.set_input_files(files=[{"name": "portrait.jpg", "mimeType": "image/jpeg",
                                       "buffer": encode_jpeg(sample_photo())}])
        page.get_by_role("heading", name="portrait.jpg").wait_for(timeout=120_000)
        page.get_by_text(translate("pred_tta", "en")).click()
        _idle(page)
        assert page.get_by_role("switch", name=translate("pred_tta", "en")).is_checked()

        _go(page, "en", "nav_attention")
        page.get_by_role("heading", name=translate("att_title", "en")).first.wait_for(timeout=60_000)
        page.get_by_text("中文", exact=True).click()
        _go(page, "zh", "nav_prediction")
        page.get_by_role("heading", name="portrait.jpg").wait_for(timeout=120_000)  # the photo is kept
        page.get_by_text("portrait.jpg", exact=False).first.wait_for()
        _checked(page, "zh", "pred_model_bundled")
        assert page.get_by_test_id("stButtonGroup").get_by_role("radio", name=translate("source_upload", "zh")).is_checked()
        assert page.get_by_role("switch", name=translate("pred_tta", "zh")).is_checked()
        assert page.get_by_text(translate("privacy_line", "zh")).count() == 1
        page.screenshot(path=str(SHOTS / "prediction_back_zh.png"), full_page=True)
