"""``create_app(settings)``: the FastAPI app, built per call (no import-time globals).

The lifespan opens the index (and its model) once and starts the micro-batcher; every error
becomes JSON ``{"code", "message", "status"}`` with a 4xx status (5xx only for our own bugs,
and then without a stack trace).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from .._version import __version__
from ..config import RunConfig
from ..engine import StyleSearch
from ..errors import StyleSearchError
from . import schemas
from .batcher import MicroBatcher
from .deps import ApiError, Services
from .metrics import CONTENT_TYPE, Metrics
from .routes import routers
from .settings import Settings

log = logging.getLogger(__name__)

_REASONS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "status": status}, status_code=status, headers=headers)


def create_app(settings: Settings | None = None, engine: StyleSearch | None = None) -> FastAPI:
    """The app for ``settings``; ``engine``: an index already opened (``serve`` opens it first
    to report errors plainly), else the lifespan opens ``settings.index``."""
    settings = settings or Settings()
    opened = engine

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = opened or StyleSearch.open(
            settings.index, run=RunConfig(device=settings.device, engine=settings.engine, progress=False)
        )
        if settings.min_familiarity is not None:
            engine.min_familiarity = settings.min_familiarity
        metrics = Metrics(lambda: float(len(engine)))
        batcher = MicroBatcher(
            engine.embed_lenient,
            max_images=settings.batch_max_images,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            on_batch=metrics.observe_batch,
        )
        await batcher.start()
        app.state.services = Services(settings, engine, batcher, metrics)
        log.info("serving %s: %d items", settings.index, len(engine))
        try:
            yield
        finally:
            app.state.services = None
            await batcher.stop()
            engine.close()

    app = FastAPI(
        title="stylesearch",
        version=__version__,
        description="Same-style search, style classification and catalog updates over HTTP. "
        "Write endpoints need `Authorization: Bearer <key>` (keys from STYLESEARCH_API_KEYS).",
        lifespan=lifespan,
        docs_url=None,  # served by _add_docs from the package's own files: no CDN, works offline
        redoc_url=None,
    )
    app.state.services = None
    for router in routers:
        app.include_router(router)
    _add_error_handlers(app)
    _add_metrics(app)
    _add_pages(app)
    _add_docs(app)
    _document_settings(app, settings)
    return app


def _document_settings(app: FastAPI, settings: Settings) -> None:
    """The OpenAPI document states this server's limits: ``k`` at most ``max_k``, no form
    field beyond those named, and, with ``read_requires_key``, that reads need the key too."""
    plain = app.openapi

    def limit_k(schema: Any) -> None:
        for name, prop in (schema.get("properties") or {}).items():
            if name == "k" and prop.get("type") == "integer":
                prop["maximum"] = settings.max_k

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = plain()
            for schema in doc.get("components", {}).get("schemas", {}).values():
                limit_k(schema)
            for path, operations in doc.get("paths", {}).items():
                for operation in operations.values():
                    for parameter in operation.get("parameters", []):
                        if parameter.get("name") == "k" and parameter.get("schema", {}).get("type") == "integer":
                            parameter["schema"]["maximum"] = settings.max_k
                    form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data", {}).get("schema")
                    if form is not None:  # the routes refuse form fields they do not name
                        ref = form.get("$ref", "")
                        target = doc["components"]["schemas"][ref.rpartition("/")[2]] if ref else form
                        target["additionalProperties"] = False
                    if settings.read_requires_key and path.startswith("/v1/") and "security" not in operation:
                        operation["security"] = [{"HTTPBearer": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010 - FastAPI's documented way to replace the schema builder


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StyleSearchError)
    async def engine_error(_: Request, exc: StyleSearchError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error("index error: %s", exc)
        return _error(exc.http_status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ())) or 'request'}: {e.get('msg', 'invalid')}" for e in exc.errors()[:5]
        ]
        return _error(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _REASONS.get(exc.status_code, "http_error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # Starlette names the first matching route's methods only
            headers = {"Allow": ", ".join(_allowed_methods(request))}
        return _error(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _error(500, "internal_error", "internal error; the server log has the details")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.matches({**request.scope, "method": "GET"})[0] != Match.NONE:
            methods |= route.methods
    return sorted(methods)


def _add_metrics(app: FastAPI) -> None:
    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Response:
        settings: Settings | None = getattr(getattr(app.state, "services", None), "settings", None)
        limit = (settings.max_upload_bytes * settings.max_files + 65536) if settings else None
        length = request.headers.get("content-length")
        if limit is not None and length is not None and length.isdigit() and int(length) > limit:
            return _error(413, "payload_too_large", f"request body over {limit} bytes")
        t0 = time.perf_counter()
        response: Response = await call_next(request)
        svc: Services | None = getattr(app.state, "services", None)
        if svc is not None:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            svc.metrics.requests.labels(request.method, path, str(response.status_code)).inc()
            svc.metrics.latency.labels(request.method, path).observe(time.perf_counter() - t0)
        return response

    @app.get("/metrics", include_in_schema=True, response_class=Response, summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        svc: Services | None = getattr(request.app.state, "services", None)
        body = svc.metrics.render() if svc is not None else b""
        return Response(body, media_type=CONTENT_TYPE)

    @app.get("/healthz", response_model=schemas.Health, summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=schemas.Health,
        summary="The index is loaded and answering",
        responses={503: {"model": schemas.ErrorBody, "description": "not ready"}},
    )
    async def readyz(request: Request) -> Any:
        if getattr(request.app.state, "services", None) is None:
            return _error(503, "not_ready", "the index is still loading")
        return {"status": "ready"}


def _add_pages(app: FastAPI) -> None:
    static = resources.files("stylesearch.service") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")


def _add_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` with their scripts and styles served from the
    ``fastapi-offline`` package's copies, as FastAPI's docs show for self-hosting: they render
    with no internet (FastAPI's defaults load them from a CDN)."""
    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")
    page = {"openapi_url": app.openapi_url or "/openapi.json", "title": "stylesearch — API"}

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            **page,
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            **page,
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/docs-assets/favicon.png",
            with_google_fonts=False,
        )


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory stylesearch.service.app:app_from_env`` (``serve --workers N``)."""
    return create_app(Settings())
