"""The web console at `/console/`: the static build of `console/` (TypeScript, Vite).

`make setup` builds it into `build/console/` (an incremental target: it rebuilds only when
the console's sources or lockfile change). The build is served as it is, with no
server-side rendering and nothing loaded from elsewhere: the console's only back end is
the `/v1` API, with the same keys and roles as every other client. When the build is
missing (a checkout where `make setup` has not run), `/console/` answers a short page
saying how to build it, instead of a bare 404.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from oracles.audit.jobs import AuditJobs

CONSOLE_PATH: Final = "/console"
CONSOLE_BUILD_DIR: Final = Path(__file__).resolve().parents[2] / "build" / "console"
"""Where `make setup` (`vite build` in `console/`) writes the console."""

MISSING_BUILD_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CreditNet console: not built</title></head>
<body>
<main>
<h1>The CreditNet console is not built</h1>
<p>This node serves the console from <code>build/console/</code>, which is missing.
Build it from the repository with <code>make setup</code> (it runs <code>npm ci</code> and
<code>vite build</code> in <code>console/</code>), then reload this page.</p>
<p>The API itself works: see <a href="/docs">/docs</a>.</p>
</main>
</body></html>
"""


def install_console(app: FastAPI, build_dir: Path = CONSOLE_BUILD_DIR) -> None:
    """Serve the console's build at `/console/` (or the missing-build page), send `/`
    there (the node's root has nothing else to show a browser), and keep the audits the
    auditor's console runs (`oracles.audit.jobs`)."""

    app.state.audit_jobs = AuditJobs()

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{CONSOLE_PATH}/", status_code=307)

    if (build_dir / "index.html").is_file():
        app.mount(CONSOLE_PATH, StaticFiles(directory=build_dir, html=True), name="console")
        return

    @app.get(CONSOLE_PATH + "/{rest:path}", include_in_schema=False)
    async def missing_build(rest: str) -> HTMLResponse:
        return HTMLResponse(MISSING_BUILD_PAGE, status_code=503)
