"""In a real browser: choices survive a language switch and leaving the page, uploads survive leaving
the page. (AppTest keeps widget values that a browser loses, so only a browser shows these bugs.)"""
import io
import zipfile

from core.i18n import translate
from core.images import encode_png
from tests.browser import SHOTS, browser_page, checked, go, idle, pick, require_browser
from tests.conftest import gradient_image


def _class_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("happy", "sad"):
            for index in range(6):
                archive.writestr(f"{label}/{index}.png", encode_png(gradient_image(48, 48, seed=index)))
    return buffer.getvalue()


def _selectbox_shows(page, lang: str, label: str, option: str) -> None:
    shown = page.get_by_role("combobox", name=translate(label, lang), exact=True).input_value()
    assert shown == translate(option, lang), (label, shown)


def test_fine_tuning_choices_survive_a_language_switch_and_leaving_the_page(app_url):
    require_browser()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        page.goto(app_url + "/finetuning", wait_until="networkidle")
        page.get_by_role("heading", name="Fine-tuning").first.wait_for(timeout=60_000)
        pick(page, "en", "ft_source_zip")
        upload = page.locator("[data-testid='stFileUploader'] input[type='file']").first
        upload.wait_for(state="attached", timeout=30_000)
        upload.set_input_files(files=[{"name": "faces.zip", "mimeType": "application/zip", "buffer": _class_zip()}])
        page.get_by_role("radio", name=translate("ft_start_bundled", "en"), exact=True).wait_for(timeout=60_000)
        for key in ("ft_start_bundled", "balance_weighted_loss", "ft_augment_none"):
            pick(page, "en", key)
        page.get_by_role("combobox", name=translate("ft_optimizer", "en"), exact=True).click()
        page.get_by_role("option", name=translate("opt_adam", "en"), exact=True).click()
        idle(page)
        for key in ("ft_source_zip", "ft_start_bundled", "balance_weighted_loss", "ft_augment_none"):
            checked(page, "en", key)

        page.get_by_text("中文", exact=True).click()
        page.get_by_role("heading", name=translate("ft_title", "zh")).first.wait_for(timeout=30_000)
        idle(page)
        page.screenshot(path=str(SHOTS / "finetuning_zh_choices.png"), full_page=True)
        for key in ("ft_source_zip", "ft_start_bundled", "balance_weighted_loss", "ft_augment_none"):
            checked(page, "zh", key)
        _selectbox_shows(page, "zh", "ft_optimizer", "opt_adam")
        _selectbox_shows(page, "zh", "ft_schedule", "sched_cosine")

        go(page, "zh", "nav_prediction")
        page.get_by_role("heading", name=translate("pred_title", "zh")).wait_for(timeout=60_000)
        go(page, "zh", "nav_finetuning")
        page.get_by_role("heading", name=translate("ft_title", "zh")).first.wait_for(timeout=30_000)
        page.get_by_text("faces.zip").first.wait_for(timeout=30_000)  # the archive is still in use
        for key in ("ft_source_zip", "ft_start_bundled", "balance_weighted_loss", "ft_augment_none"):
            checked(page, "zh", key)
        _selectbox_shows(page, "zh", "ft_optimizer", "opt_adam")
        page.screenshot(path=str(SHOTS / "finetuning_back.png"), full_page=True)

