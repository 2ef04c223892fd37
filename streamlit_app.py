"""Entry point: navigation, language switch and the compute device in the sidebar."""
import streamlit as st

from app_pages._shared import tr
from core.device import describe_device
from core.i18n import LANGUAGES, translate

st.set_page_config(page_title=translate("app_title", st.session_state.get("lang", "en")), page_icon="🙂", layout="wide")

if "lang" not in st.session_state:
    st.session_state["lang"] = "en"

pages = [
    st.Page("app_pages/augmentation.py", title=tr("nav_augmentation"), icon="🎛️", url_path="augmentation", default=True),
    st.Page("app_pages/attention.py", title=tr("nav_attention"), icon="👁️", url_path="attention"),
    st.Page("app_pages/finetuning.py", title=tr("nav_finetuning"), icon="📈", url_path="finetuning"),
    st.Page("app_pages/prediction.py", title=tr("nav_prediction"), icon="😀", url_path="prediction"),
    st.Page("app_pages/live.py", title=tr("nav_live"), icon="🎥", url_path="live"),
]
navigation = st.navigation(pages)


@st.cache_resource
def _device():
    return describe_device()


with st.sidebar:
    st.radio(tr("language"), list(LANGUAGES), format_func=LANGUAGES.get, key="lang", horizontal=True)
    device = _device()
    if device.kind == "cuda":
        st.caption(tr("device_cuda", name=device.name, memory_gb=device.memory_bytes / 2**30))
    elif device.kind == "mps":
        st.caption(tr("device_mps"))
    else:
        st.caption(tr("device_cpu", threads=device.threads))
    st.caption(tr("privacy_line"))

navigation.run()
