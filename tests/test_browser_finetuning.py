"""In a real browser: two short runs on a tiny zip are both kept, in the runs table and on the shared charts'
legends, in English, after switching to 中文, and after leaving the page and coming back."""
from core.i18n import translate
from tests.browser import SHOTS, browser_page, go, idle, pick, require_browser
from tests.test_app_finetuning import _class_zip

RUNS = ("Run 1", "Run 2")


def _train_once(page, number: int) -> None:
    """Press Train and wait until the run is kept: its name is on the shared charts' legends."""
    page.get_by_role("button", name=translate("ft_train", "en"), exact=True).click()
    page.locator(".legendtext", has_text=f"Run {number}").first.wait_for(timeout=300_000)
    idle(page)


def _runs_table(page, lang: str):
    return page.locator("[data-testid='stDataFrame']").filter(has_text=translate("runs_col_name", lang))


def _runs_shown(page, lang: str, names: tuple[str, ...]) -> None:
    """Every run is in the table and in the legend of each shared chart."""
    table = _runs_table(page, lang)
    table.wait_for(timeout=30_000)
    for title in ("runs_chart_loss", "runs_chart_accuracy", "runs_chart_f1"):
        chart = page.locator("[data-testid='stPlotlyChart']").filter(has_text=translate(title, lang))
        chart.wait_for(timeout=30_000)
        legend = " ".join(chart.locator(".legendtext").all_text_contents())
        assert all(name in legend for name in names), (title, legend)
    cells = " ".join(table.locator("[role='gridcell']").all_text_contents())  # the grid's canvas holds them
    assert all(name in cells for name in names), cells


def _screenshot(page, name: str) -> None:
    """The whole page: Streamlit scrolls inside its own container, so the window is made as tall as it."""
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(max(height, 1000), 8000)})
    page.screenshot(path=str(SHOTS / name))
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_two_runs_are_kept_in_the_table_and_on_the_charts(app_url):
    require_browser()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        page.goto(app_url + "/finetuning", wait_until="networkidle")
        page.get_by_role("heading", name=translate("ft_title", "en")).first.wait_for(timeout=60_000)
        pick(page, "en", "ft_source_zip")
        upload = page.locator("[data-testid='stFileUploader'] input[type='file']").first
        upload.wait_for(state="attached", timeout=30_000)
        upload.set_input_files(files=[{"name": "faces.zip", "mimeType": "application/zip", "buffer": _class_zip()}])
        page.get_by_role("button", name=translate("ft_train", "en"), exact=True).wait_for(timeout=180_000)
        idle(page)
        page.get_by_text(translate("runs_none", "en")).wait_for(timeout=30_000)
        page.get_by_role("slider", name=translate("ft_epochs", "en")).press("Home")  # 1 epoch
        idle(page)
        _train_once(page, 1)
        rate = page.get_by_label(translate("ft_lr", "en"), exact=True)  # the second run differs
        rate.fill("0.01")
        rate.press("Enter")
        idle(page)
        _train_once(page, 2)
        _runs_shown(page, "en", RUNS)
        _screenshot(page, "finetuning_runs_en.png")

        page.get_by_text("中文", exact=True).click()
        page.get_by_role("heading", name=translate("ft_title", "zh")).first.wait_for(timeout=30_000)
        idle(page)
        zh_runs = tuple(translate("runs_default_name", "zh", number=n) for n in (1, 2))
        _runs_shown(page, "zh", zh_runs)
        _screenshot(page, "finetuning_runs_zh.png")

        go(page, "zh", "nav_prediction")
        page.get_by_role("heading", name=translate("pred_title", "zh")).first.wait_for(timeout=60_000)
        go(page, "zh", "nav_finetuning")
        page.get_by_role("heading", name=translate("ft_title", "zh")).first.wait_for(timeout=30_000)
        idle(page)
        _runs_shown(page, "zh", zh_runs)
        _screenshot(page, "finetuning_runs_back_zh.png")
