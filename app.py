"""Launcher: the app and its REST route (`api.py`) on one port.

    streamlit run app.py      or      python app.py      or      uvicorn app:app --port 8501
"""
import streamlit as st

import api

app = st.App("streamlit_app.py", routes=api.routes())

if __name__ == "__main__":
    app.run()
