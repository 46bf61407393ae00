"""The web UI: plain ES modules and CSS under ``static/``, served by the agent at
``ui_config.content_path`` through ``serve.py``. No build step and nothing fetched from
elsewhere, so the files in the package are exactly what a browser runs."""
