"""Swagger UI and ReDoc served by the node itself, from an installed package.

The pages FastAPI builds by default load their scripts, styles and favicon from public
CDNs, so `/docs` and `/redoc` are blank on a machine without internet. The assets ship
in the pinned `fastapi-offline` package; the node serves them under `/docs/assets/` and
its pages reference nothing but the node's own paths.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH: Final = "/docs"
REDOC_PATH: Final = "/redoc"
ASSETS_PATH: Final = "/docs/assets"
SWAGGER_UI_PARAMETERS: Final = {
    "validatorUrl": None,
    "deepLinking": True,
    "displayOperationId": True,
}
"""`validatorUrl: null`: Swagger UI would otherwise send the schema to a public validator."""


def get_assets_dir() -> Path:
    """The folder of Swagger UI's and ReDoc's scripts, styles and favicon."""
    return Path(str(files("fastapi_offline").joinpath("static")))


def install_docs(app: FastAPI) -> None:
    """Serve `/docs` (Swagger UI), `/redoc` (ReDoc) and their assets from this node."""
    app.mount(ASSETS_PATH, StaticFiles(directory=get_assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", ""))
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", ""))
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
