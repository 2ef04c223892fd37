"""Logic shared by the pages and the command line; no Streamlit here."""
