"""Load on one server: many browser sessions and REST clients at once, and the memory the server keeps.

    FACELAB_PHOTOS_DIR=../shared/photos python -m bench.bench_load [--sessions 5 10 20] [--rate 5] [--quick]

It starts `streamlit run app.py` (the app and the REST route on one port) on 127.0.0.1 and sends traffic
there only, bounded in count and time:

1. N browser sessions at once (Playwright, one headless Chromium, one context per session) open the
   prediction page and upload the 7-face group photo; per session, the seconds from the upload to the
   photo's heading with its boxes. The baseline is one session alone, in the same server.
2. The REST route at a fixed request rate, with a one-face 640x480 photo; the baseline is one request at a
   time. Then as fast as it goes with 4 clients, for the throughput.
3. The server's resident memory after 200 REST uploads and after 50 sessions opened and closed.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2

from bench.bench_faces import small_photo
from core.images import encode_jpeg, sample_photo
from tests.browser import CHROMIUM, CHROMIUM_ARGS, running_server

ROOT = Path(__file__).resolve().parents[1]

GROUP_PHOTO = "2007_007763.jpg"  # 7 faces


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time used so far: by process `pid` (user + system), or by the whole machine (busy time)."""
    if pid is not None:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as stat:
        user, nice, system, idle, iowait, *rest = (int(v) for v in stat.readline().split()[1:])
    return (user + nice + system + sum(rest[:3])) / os.sysconf("SC_CLK_TCK")


def cpu_split(pid: int, server_before: float, machine_before: float, sessions: int) -> str:
    server = cpu_seconds(pid) - server_before
    others = cpu_seconds() - machine_before - server
    return f"CPU per session: server {server / sessions:.2f} s, Chromium and the bench {others / sessions:.2f} s"


def percentiles(values: list[float]) -> str:
    if not values:
        return "no successes"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):.2f} s, p95 {p95:.2f} s, max {ordered[-1]:.2f} s"


# --------------------------------------------------------------------------- browser sessions


async def one_session(browser, url: str, photo: bytes, timeout_s: float) -> float:
    """Seconds from the upload to the photo's heading and its box labels; raises on failure."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = await context.new_page()
        await page.goto(url + "/prediction", wait_until="domcontentloaded", timeout=timeout_s * 1000)
        await page.get_by_test_id("stButtonGroup").get_by_role("radio", name="Upload").click(timeout=timeout_s * 1000)
        uploader = page.locator("[data-testid='stFileUploader']").filter(has_text="Photos (JPEG").locator(
            "input[type='file']")
        await uploader.wait_for(state="attached", timeout=timeout_s * 1000)
        started = time.perf_counter()
        await uploader.set_input_files(files=[{"name": "group.jpg", "mimeType": "image/jpeg", "buffer": photo}])
        await page.get_by_role("heading", name="group.jpg").wait_for(timeout=timeout_s * 1000)
        await page.locator("text=#7 ").first.wait_for(timeout=timeout_s * 1000)
        return time.perf_counter() - started
    finally:
        await context.close()


async def sessions_at_once(url: str, photo: bytes, count: int, timeout_s: float) -> tuple[list[float], list[str]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            results = await asyncio.gather(*(one_session(browser, url, photo, timeout_s) for _ in range(count)),
                                           return_exceptions=True)
        finally:
            await browser.close()
    times = [r for r in results if isinstance(r, float)]
    errors = [type(r).__name__ for r in results if not isinstance(r, float)]
    return times, errors


async def open_and_close(url: str, count: int, timeout_s: float) -> int:
    """Open the prediction page with its sample photo in `count` sessions, a few at a time; the successes."""
    from playwright.async_api import async_playwright

    done = 0
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for _ in range(count):
                context = await browser.new_context()
                page = await context.new_page()
                with contextlib.suppress(Exception):
                    await page.goto(url + "/prediction", wait_until="domcontentloaded", timeout=timeout_s * 1000)
                    await page.get_by_text("Face #1", exact=True).first.wait_for(timeout=timeout_s * 1000)
                    done += 1
                await context.close()
        finally:
            await browser.close()
    return done


# --------------------------------------------------------------------------- the REST route


def post(url: str, photo: bytes) -> tuple[int, float]:
    request = urllib.request.Request(url + "/api/v1/recognize", data=photo, headers={"Content-Type": "image/jpeg"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError:
        status = 0
    return status, time.perf_counter() - started


def at_rate(url: str, photo: bytes, rate: float, seconds: float) -> tuple[list[float], int, float]:
    """Requests sent at `rate` per second for `seconds`: latencies of the successes, failures, wall time."""
    latencies, failures, lock = [], 0, threading.Lock()

    def send() -> None:
        nonlocal failures
        status, latency = post(url, photo)
        with lock:
            if status == 200:
                latencies.append(latency)
            else:
                failures += 1

    started = time.perf_counter()
    threads = []
    for index in range(int(rate * seconds)):
        time.sleep(max(0.0, started + index / rate - time.perf_counter()))
        thread = threading.Thread(target=send)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return latencies, failures, time.perf_counter() - started


def throughput(url: str, photo: bytes, requests: int, clients: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = [status for status, _ in pool.map(lambda _: post(url, photo), range(requests))]
    return sum(status == 200 for status in statuses) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--rate", type=float, default=5.0, help="REST requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the fixed-rate REST run lasts")
    parser.add_argument("--quick", action="store_true", help="2 and 5 sessions, 5 s of REST, 40 uploads, 10 sessions")
    args = parser.parse_args()
    photos = Path(os.environ.get("FACELAB_PHOTOS_DIR", ROOT.parent / "shared" / "photos"))
    group = (photos / GROUP_PHOTO).read_bytes()
    # Two one-face 640x480 photos: a webcam-like portrait (face about 150 px, found by the first HOG search)
    # and the whole sample shrunk (face 104 px, under RETRY_FACE_SIDE, so HOG searches again upsampled).
    rest_photos = {"webcam-like portrait, face 150 px": encode_jpeg(small_photo()),
                   "whole sample shrunk, face 104 px": encode_jpeg(cv2.resize(sample_photo(), (640, 480),
                                                                             interpolation=cv2.INTER_AREA))}
    one_face = rest_photos["webcam-like portrait, face 150 px"]
    sessions = [2, 5] if args.quick else args.sessions
    uploads, opened = (40, 10) if args.quick else (200, 50)
    rest_seconds = 5.0 if args.quick else args.seconds
    print(f"{os.cpu_count()} CPU cores; Python {sys.version.split()[0]}", flush=True)
    with running_server(120) as (url, process):
        pid = process.pid
        post(url, one_face)  # load the model and the detectors once
        print(f"server RSS after start and one prediction: {rss_mb(pid):.0f} MB", flush=True)

        print("\n1. browser sessions uploading the 7-face photo at once", flush=True)
        base, errors = asyncio.run(sessions_at_once(url, group, 1, 120))
        baseline = base[0] if base else float("nan")
        print(f"   1 session (baseline): {baseline:.2f} s{' ' + str(errors) if errors else ''}", flush=True)
        for count in sessions:
            started, server_cpu, machine_cpu = time.perf_counter(), cpu_seconds(pid), cpu_seconds()
            times, errors = asyncio.run(sessions_at_once(url, group, count, 180))
            p95 = sorted(times)[min(len(times) - 1, round(0.95 * (len(times) - 1)))] if times else float("nan")
            print(f"   {count:2d} sessions: {len(times)}/{count} ok, errors {errors or 'none'}; {percentiles(times)}; "
                  f"p95 / baseline {p95 / baseline:.1f}x; wall {time.perf_counter() - started:.1f} s; "
                  f"server RSS {rss_mb(pid):.0f} MB; {cpu_split(pid, server_cpu, machine_cpu, count)}", flush=True)

        for name, photo in rest_photos.items():
            print(f"\n2. REST route, one-face 640x480 JPEG: {name}", flush=True)
            sequential = [post(url, photo)[1] for _ in range(10)]
            print(f"   one at a time (baseline): median {statistics.median(sequential) * 1000:.0f} ms "
                  f"({1 / statistics.median(sequential):.1f} photos/s)", flush=True)
            latencies, failures, wall = at_rate(url, photo, args.rate, rest_seconds)
            print(f"   {args.rate:g} requests/s for {rest_seconds:g} s: {len(latencies)} ok, {failures} failed, "
                  f"served {len(latencies) / wall:.1f} photos/s; median {statistics.median(latencies) * 1000:.0f} ms "
                  f"({statistics.median(latencies) / statistics.median(sequential):.1f}x baseline); "
                  f"{percentiles(latencies)}", flush=True)
            print(f"   as fast as it goes, 4 clients: {throughput(url, photo, 40, 4):.1f} photos/s", flush=True)

        print("\n3. memory the server keeps", flush=True)
        before = rss_mb(pid)
        for _ in range(uploads):
            post(url, one_face)
        print(f"   after {uploads} REST uploads: {before:.0f} -> {rss_mb(pid):.0f} MB", flush=True)
        before = rss_mb(pid)
        done = asyncio.run(open_and_close(url, opened, 120))
        time.sleep(5)
        print(f"   after {opened} sessions opened and closed ({done} ok): {before:.0f} -> {rss_mb(pid):.0f} MB",
              flush=True)


if __name__ == "__main__":
    main()
