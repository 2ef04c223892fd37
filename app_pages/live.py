"""Live camera: the visitor's webcam through streamlit-webrtc, every face boxed and labelled on the video."""
from __future__ import annotations

import streamlit as st
from streamlit import runtime
from streamlit.runtime import Runtime
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from app_pages._shared import cached_example_photo, lang, scores_figure, show_error, tr
from core.attention import overlay
from core.checkpoint import BUNDLED_CHECKPOINT
from core.classes import display_name
from core.errors import UserError
from core.live import DEFAULT_WINDOW, EXPLAIN_EVERY_S, MAX_WINDOW, LiveSession, TrackedFace, label_font, server_slots
from core.predict import Predictor, bundled_predictor
from core.settings import settings

REFRESH_S = 1.0  # how often the chart and the counts beside the video are redrawn
# streamlit-webrtc's own button and message texts, each a `live_webrtc_<name>` string
WEBRTC_TEXTS = ("start", "stop", "select_device", "media_api_not_available", "device_ask_permission",
                "device_not_available", "device_access_denied", "turn_camera_on", "turn_camera_off", "select_camera")
CAMERA = {"video": {"width": 640, "height": 480}, "audio": False}

st.title(tr("live_title"))
st.markdown(tr("live_intro"))


@st.cache_resource(show_spinner=False)
def _models() -> Predictor:
    """The bundled network and dlib's models, loaded once and run once on the sample (Grad-CAM too), so
    that the first camera frame does not pay for their start."""
    predictor = bundled_predictor()
    LiveSession(predictor).process(cached_example_photo("astronaut"))
    return predictor


def _session(predictor: Predictor) -> LiveSession:
    """This visitor's stream state; the frame callback writes it, the fragment below reads it."""
    if "live_session" not in st.session_state:
        st.session_state["live_session"] = LiveSession(predictor, slots=server_slots())
    return st.session_state["live_session"]


def _face_text(face: TrackedFace) -> str:
    top = face.top_class
    return f"#{face.track} {display_name(top, lang())} {face.scores[top]:.0%}"


def _counts(live: LiveSession) -> None:
    state = live.state()
    if state.stopping:
        st.rerun()  # the whole page, which stops the stream and says why
    fps, camera, skipped = st.columns(3)
    fps.metric(tr("live_fps"), f"{state.fps:.1f}")
    camera.metric(tr("live_camera_fps"), f"{state.camera_fps:.1f}")
    arrived = state.processed + state.skipped
    skipped.metric(tr("live_skipped"), f"{state.skipped / arrived:.0%}" if arrived else "–")
    seconds = state.window / state.fps if state.fps else None
    st.caption(tr("live_window_now", count=state.window, seconds=seconds) if seconds
               else tr("live_window_frames", count=state.window))


def _panel(live: LiveSession) -> None:
    state = live.state()
    if not state.faces:
        st.info(tr("live_no_face"))
        return
    face = state.faces[0]
    st.plotly_chart(scores_figure(face.scores, tr("live_chart_title", track=face.track, count=face.frames), 300,
                                  horizontal=True), key="live_scores")
    st.caption(" · ".join(_face_text(face) for face in state.faces))
    if state.explanation is not None and state.explained is not None:
        crop, cam, attention = st.columns(3)
        crop.image(state.explanation.crop, caption=_face_text(state.explained))
        cam.image(overlay(state.explanation.crop, state.explanation.grad_cam), caption=tr("pred_gradcam"))
        attention.image(overlay(state.explanation.crop, state.explanation.attention), caption=tr("pred_attention"))


def _served_to_a_browser() -> bool:
    """Whether a Streamlit server runs this page; AppTest runs it on a stand-in runtime, with no browser."""
    return runtime.exists() and type(runtime.get_instance()) is Runtime


def main() -> None:
    window = st.slider(tr("live_window"), 1, MAX_WINDOW, DEFAULT_WINDOW, key="live_window",
                       help=tr("live_window_help"), persist_state="session")
    explain = st.toggle(tr("live_explain", seconds=EXPLAIN_EVERY_S), value=True, key="live_explain",
                        help=tr("live_explain_help"), persist_state="session")
    slots = server_slots()
    if slots.limit is not None:
        st.caption(tr("live_slots", used=slots.in_use(), limit=slots.limit))
    if not _served_to_a_browser():
        st.info(tr("live_needs_browser"))
        return
    try:
        with st.spinner(tr("live_loading")):
            predictor = _models()
    except UserError as error:
        show_error(error)
        if not BUNDLED_CHECKPOINT.exists():
            st.info(tr("pred_no_bundled"))
        return
    live = _session(predictor)
    live.configure(window, explain, lang())
    state = live.state()
    if state.refused:
        st.warning(tr("live_refused", count=slots.limit))
    video, panel = st.columns([3, 2])
    with video:
        context = webrtc_streamer(
            key="live_camera", mode=WebRtcMode.SENDRECV, media_stream_constraints=CAMERA,
            rtc_configuration={"iceServers": list(settings().ice_servers)},
            queued_video_frames_callback=live.on_frames, on_video_ended=live.reset,
            desired_playing_state=False if state.stopping else None,
            translations={text: tr(f"live_webrtc_{text}") for text in WEBRTC_TEXTS})
        if context.state.playing and not state.stopping:
            st.fragment(run_every=REFRESH_S)(_counts)(live)
        st.caption(tr("live_privacy"))
        if label_font(lang()) is None:
            st.caption(tr("live_labels_english"))
    with panel:
        if context.state.playing and not state.stopping:
            st.fragment(run_every=REFRESH_S)(_panel)(live)
        else:
            st.info(tr("live_press_start"))


main()
