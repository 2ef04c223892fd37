"""Benchmark: the live camera's frames per second at 640x480 with one face, and how it drops frames.

Run from the repository root:

    python -m bench.bench_live [--repeats N] [--seconds S] [--rounds R]

The frame is the webcam-like portrait of bench.bench_faces (the astronaut's head and shoulders filling
640x480, a face of about 150 px).

1. Cost of one frame, timed interleaved in one process after a warm-up (models already loaded):
   * baseline: the bare detector + predictor call, `Predictor.predict_many([frame], search="hog")`;
   * ours: `LiveSession.process` (the same call, then tracking, smoothing and drawing), with the Grad-CAM and
     attention refresh off and on (on: once a second, so in a tight loop about one frame in ten pays it).
   Frames per second are 1000 / the median ms; the ratio is against the baseline.
2. Frame skipping: a synthetic 30 fps camera feeds streamlit-webrtc's own `AsyncVideoProcessTrack` (the track
   the page's worker uses) for S seconds, as the browser's video would, with the attention refresh on. Ours
   is the page's callback, `LiveSession.on_frames` (av frames in and out, processing on the session's own
   thread, frames that come meanwhile skipped); the baseline processes every frame it is handed, in order,
   before it returns, which is a queue. The two alternate, `--rounds` runs each. Reported: the frames each
   call was handed (at most), and the age of each annotated frame when it came back (how long ago the
   camera made it).

It prints a table and, last, one JSON line. Timings are reported, never asserted.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections.abc import Awaitable, Callable
from fractions import Fraction

import av
import numpy as np
from aiortc import MediaStreamTrack
from streamlit_webrtc.models import CallbackAttachableProcessor
from streamlit_webrtc.process import AsyncVideoProcessTrack

from bench.bench_faces import small_photo, time_cases
from core.live import LiveSession
from core.predict import bundled_predictor

CAMERA_FPS = 30
VIDEO_CLOCK = 90_000  # RTP's video clock, as WebRTC frames carry it

FramesCallback = Callable[[list[av.VideoFrame]], Awaitable[list[av.VideoFrame]]]


class CameraTrack(MediaStreamTrack):
    """A camera that sends `rgb` at `fps`, remembering when it made each frame (by its pts)."""

    kind = "video"

    def __init__(self, rgb: np.ndarray, fps: int = CAMERA_FPS) -> None:
        super().__init__()
        self.rgb, self.fps = rgb, fps
        self.made_at: dict[int, float] = {}
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> av.VideoFrame:
        self._start = time.monotonic() if self._start is None else self._start
        await asyncio.sleep(max(0.0, self._start + self._count / self.fps - time.monotonic()))
        frame = av.VideoFrame.from_ndarray(self.rgb, format="rgb24")
        frame.pts, frame.time_base = self._count * VIDEO_CLOCK // self.fps, Fraction(1, VIDEO_CLOCK)
        self.made_at[frame.pts] = time.monotonic()
        self._count += 1
        return frame


def stream(callback: Callable[[CameraTrack], FramesCallback], rgb: np.ndarray, seconds: float,
           fps: int = CAMERA_FPS) -> dict:
    """Sends `seconds` of a camera through AsyncVideoProcessTrack with the queued-frames callback that
    `callback(camera)` makes; the frames sent, the calls, the frames each call was handed and the error that
    ended the stream, if one did."""
    camera = CameraTrack(rgb, fps)
    inner = callback(camera)
    handed: list[int] = []

    async def counted(frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        handed.append(len(frames))
        return await inner(frames)

    async def run() -> tuple[int, str | None]:
        track = AsyncVideoProcessTrack(camera, CallbackAttachableProcessor(None, counted, None), stop_timeout=15)
        sent, error = 0, None
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                await track.recv()
                sent += 1
        except Exception as failure:  # the library ends a stream whose callback took over 10 s
            error = str(failure)
        finally:
            track.stop()
        return sent, error

    sent, error = asyncio.run(run())
    return {"sent": sent, "calls": len(handed), "handed": handed, "error": error}


def newest_only(live: LiveSession, ages: list[float]) -> Callable[[CameraTrack], FramesCallback]:
    """The page's callback, `LiveSession.on_frames`; `ages` gets each annotated frame's age when it comes back."""
    def make(camera: CameraTrack) -> FramesCallback:
        async def callback(frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
            out = await live.on_frames(frames)
            ages.extend(time.monotonic() - camera.made_at[frame.pts] for frame in out)
            return out
        return callback
    return make


def every_frame(live: LiveSession, ages: list[float]) -> Callable[[CameraTrack], FramesCallback]:
    """A callback that processes every frame it is handed, in order, before it returns: a queue."""
    def make(camera: CameraTrack) -> FramesCallback:
        async def callback(frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
            out = []
            for frame in frames:
                out.append(av.VideoFrame.from_ndarray(live.process(frame.to_ndarray(format="rgb24")), format="rgb24"))
                ages.append(time.monotonic() - camera.made_at[frame.pts])
            return out
        return callback
    return make


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21, help="timed frames per case (default 21)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of camera per stream run (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="stream runs of each callback, alternated (default 2)")
    args = parser.parse_args(argv)
    rgb = small_photo()
    predictor = bundled_predictor()
    plain, explained = LiveSession(predictor, explain=False), LiveSession(predictor, explain=True)
    cases = {
        "baseline: predict_many (detector + predictor)": lambda: predictor.predict_many([rgb], search="hog"),
        "ours: LiveSession.process, no attention": lambda: plain.process(rgb),
        "ours: LiveSession.process, attention 1/s": lambda: explained.process(rgb),
    }
    print("Live camera, 640x480 with one face (the astronaut's head and shoulders, bench.bench_faces.small_photo)")
    print(f"  machine    {os.cpu_count()} CPUs ({platform.machine()}, {platform.system()}); python "
          f"{platform.python_version()}, av {av.__version__}")
    print(f"  method     1 warm-up, then {args.repeats} frames per case interleaved; median ms, fps = 1000/median")
    print()
    times = time_cases(cases, args.repeats)
    baseline = float(np.median(next(iter(times.values()))))
    result: dict = {"repeats": args.repeats, "cpu_count": os.cpu_count(), "per_frame": {}}
    print(f"  {'case':<46}{'median ms':>10}{'max ms':>9}{'fps':>7}{'vs baseline':>13}")
    for name, values in times.items():
        median = float(np.median(values))
        print(f"  {name:<46}{median:>10.1f}{max(values):>9.1f}{1000 / median:>7.1f}{baseline / median:>12.2f}x")
        result["per_frame"][name] = {"median_ms": round(median, 1), "fps": round(1000 / median, 1),
                                     "fps_vs_baseline": round(baseline / median, 3)}
    print()
    print(f"  A {CAMERA_FPS} fps camera through streamlit-webrtc's AsyncVideoProcessTrack for {args.seconds:g} s:")
    print(f"  {'callback':<41}{'sent':>6}{'processed':>11}{'skipped':>9}{'fps':>7}{'max handed':>12}"
          f"{'age p50 / max s':>18}")
    result["stream"] = {}
    callbacks = (("ours: LiveSession.on_frames", newest_only), ("baseline: every frame, in order", every_frame))
    for name, make in [(f"{name}, run {round_ + 1}", make) for round_ in range(args.rounds) for name, make in callbacks]:
        live, ages = LiveSession(predictor, explain=True), []
        run = stream(make(live, ages), rgb, args.seconds)
        state = live.state()
        ages = ages or [float("nan")]
        print(f"  {name:<41}{run['sent']:>6}{state.processed:>11}{state.skipped:>9}{state.processed / args.seconds:>7.1f}"
              f"{max(run['handed'], default=0):>12}{np.median(ages):>11.2f} / {max(ages):.2f}")
        if run["error"]:
            print(f"  {'':<41}the stream failed: {run['error']}")
        result["stream"][name] = {"sent": run["sent"], "processed": state.processed, "skipped": state.skipped,
                                  "processed_fps": round(state.processed / args.seconds, 2),
                                  "max_handed": max(run["handed"], default=0),
                                  "age_p50_s": round(float(np.median(ages)), 3), "age_max_s": round(max(ages), 3),
                                  "error": run["error"]}
    runs = list(result["stream"].values())
    ours, queue = sum(run["processed"] for run in runs[::2]), sum(run["processed"] for run in runs[1::2])
    if queue:
        print(f"  frames processed over all runs, ours against the baseline: {ours / queue:.2f}x")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
