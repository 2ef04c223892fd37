"""The live camera in a real browser: Chromium's fake camera plays a clip made from the sample photo, and
annotated frames come back (the processed frames per second rise above 0, the video shows the drawn box),
in English, and in Chinese after leaving the page and coming back."""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from bench.bench_faces import small_photo
from core.classes import colour
from core.i18n import translate
from tests.browser import SHOTS, browser_page, go, idle, require_browser

CLIP_FRAMES, CLIP_FPS = 30, 30


def write_y4m(path, rgb: np.ndarray, frames: int = CLIP_FRAMES, fps: int = CLIP_FPS) -> None:
    """A Y4M clip (a text header, then raw I420 frames) of `rgb` swaying a few pixels left and right."""
    height, width = rgb.shape[:2]
    with open(path, "wb") as clip:
        clip.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for index in range(frames):
            moved = np.roll(rgb, round(6 * np.sin(2 * np.pi * index / frames)), axis=1)
            clip.write(b"FRAME\n" + cv2.cvtColor(moved, cv2.COLOR_RGB2YUV_I420).tobytes())


def box_pixels(rgb: np.ndarray, key: str = "happiness") -> int:
    """Pixels close to an expression's colour (the drawn box and label)."""
    paint = np.array([int(colour(key)[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb.astype(int) - paint).max(axis=2) < 40).sum())


def processed_fps(page, lang: str) -> float:
    metric = page.get_by_test_id("stMetric").filter(has_text=translate("live_fps", lang))
    return float(metric.get_by_test_id("stMetricValue").inner_text())


def video_frame(page, component) -> np.ndarray:
    """What the video shows now (a screenshot of its place: a playing video never counts as "stable")."""
    box = component.locator("video").bounding_box(timeout=60_000)
    return np.asarray(Image.open(io.BytesIO(page.screenshot(clip=box))).convert("RGB"))


def start_and_see_annotated_frames(page, lang: str, name: str) -> None:
    """Press Start, then wait until frames are processed and the video shows a drawn box and label."""
    page.get_by_role("heading", name=translate("live_title", lang)).wait_for(timeout=120_000)
    idle(page)
    component = page.frame_locator("iframe[title*='streamlit_webrtc']")
    component.get_by_role("button", name=translate("live_webrtc_start", lang)).click()
    page.get_by_test_id("stMetric").filter(has_text=translate("live_fps", lang)).wait_for(timeout=120_000)
    fps, boxed, enough = 0.0, False, None
    for _ in range(60):
        video = video_frame(page, component)
        enough = enough or max(300, 10 * box_pixels(cv2.resize(small_photo(), video.shape[1::-1])))
        fps = max(fps, processed_fps(page, lang))
        boxed = boxed or box_pixels(video) > enough
        if fps > 0 and boxed:
            break
        page.wait_for_timeout(2000)
    Image.fromarray(video).save(SHOTS / f"live_video_{name}.png")
    page.screenshot(path=str(SHOTS / f"live_{name}.png"), full_page=True)
    assert fps > 0, "annotated frames arrive"
    assert boxed, "the video shows the drawn box and label"


def test_a_fake_camera_gets_boxes_and_scores_back(app_url, tmp_path):
    require_browser()
    SHOTS.mkdir(parents=True, exist_ok=True)
    clip = tmp_path / "astronaut.y4m"
    write_y4m(clip, small_photo())
    camera = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
              f"--use-file-for-fake-video-capture={clip}")
    with browser_page(camera) as page:
        page.goto(app_url + "/live", wait_until="networkidle")
        start_and_see_annotated_frames(page, "en", "en")
        page.get_by_test_id("stPlotlyChart").first.wait_for(timeout=30_000)  # the tracked face's scores

        go(page, "en", "nav_prediction")
        page.get_by_role("heading", name=translate("pred_title", "en")).wait_for(timeout=60_000)
        page.get_by_text("中文", exact=True).click()
        idle(page)
        go(page, "zh", "nav_live")
        start_and_see_annotated_frames(page, "zh", "back_zh")
        page.frame_locator("iframe[title*='streamlit_webrtc']").get_by_role(
            "button", name=translate("live_webrtc_stop", "zh")).click()
        page.get_by_text(translate("live_press_start", "zh")).wait_for(timeout=30_000)
