"""The web application of ``streamrec serve``: the read API (``/api``, OpenAPI at ``/docs``)
and the operator dashboard (``/dashboard``) in one FastAPI app over one ``ApiContext``.

>>> from streamrec.config import Settings
>>> from streamrec.storage.memory import create_memory_database
>>> app = create_app(ApiContext.create(Settings(), create_memory_database()))
>>> [path for path in app.openapi()["paths"] if path.startswith("/api/models")]
['/api/models', '/api/models/{version}']
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

import streamrec
from streamrec.api import dashboard, read_api
from streamrec.api.context import ApiContext

# The dashboard loads nothing from elsewhere and may not be framed (its buttons act).
DASHBOARD_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def create_app(context: ApiContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        context.close()

    app = FastAPI(
        title="streamrec",
        version=streamrec.__version__,
        summary="Read API over the stored recommender state, and the operator dashboard.",
        description="Explained recommendations, items, clusters, the model registry and the "
        "pipeline's status. The scale of each number: docs/api.md.",
        lifespan=lifespan,
    )
    app.state.context = context
    app.include_router(read_api.router)
    app.include_router(dashboard.router)
    app.mount(
        "/dashboard/static",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="static",
    )

    @app.exception_handler(dashboard.SignInRequired)
    async def sign_in(request: Request, error: dashboard.SignInRequired) -> Response:
        return RedirectResponse(f"/dashboard/login?next={quote(error.next_path)}", status_code=303)

    @app.middleware("http")
    async def dashboard_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if request.url.path.startswith("/dashboard"):
            response.headers.update(DASHBOARD_HEADERS)
        return response

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard", status_code=307)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process answers (no database query)."""
        return {"status": "ok"}

    return app
