"""Launcher: the app and its REST route (`api.py`) on one port.

    streamlit run app.py      or      python app.py      or      uvicorn app:app --port 8501
"""
import logging

import streamlit as st

import api
from core.jobs import server_runner
from core.settings import settings

# The server log: failed jobs' and REST errors' tracebacks go here, never to a visitor.
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
settings()  # a bad [facelab] table in .streamlit/secrets.toml stops the server here, with its message
server_runner()  # removes the job folders that servers which no longer run left behind

app = st.App("streamlit_app.py", routes=api.routes())

if __name__ == "__main__":
    app.run()
