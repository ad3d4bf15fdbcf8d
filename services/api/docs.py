"""``/api/docs``: Swagger UI served with its own files from this server, so it works offline.

The files come from the installed ``swagger-ui-py`` package (its bundled Swagger UI 5 dist,
Apache-2.0); nothing is fetched from a CDN.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/api/docs"
ASSETS_PATH = "/api/docs/assets"


def swagger_ui_dir() -> Path:
    """The folder of Swagger UI's dist files inside the installed package (not imported)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: /api/docs has no Swagger UI files")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def install_docs(app: FastAPI, openapi_url: str) -> None:
    """Serve the UI page at ``/api/docs`` and its files under ``/api/docs/assets``."""
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_ui_dir()), name="swagger-ui")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - docs",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
        )
