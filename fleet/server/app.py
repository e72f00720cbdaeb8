"""The fleet server's aiohttp application: composition root and lifetimes.

Everything the handlers use lives in typed app keys (fleet/server/context.py) and is opened
and closed in one cleanup context, in dependency order: database (tables created if missing),
CA, device key cache, heartbeat writer, alert evaluator. Every error leaves as a wire
`ApiError`; an unexpected exception is logged and answered 500 without its details.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web

from fleet.server.context import (
    CA,
    CLOCK,
    DB,
    EVALUATOR,
    INGEST,
    KEYS,
    REVOKED_CREDENTIALS,
    SETTINGS,
)
from fleet.server.credentials import RevokedCredentials
from fleet.server.db import open_database
from fleet.server.device_auth import DeviceKeys
from fleet.server.errors import ApiProblem
from fleet.server.evaluator import AlertEvaluator
from fleet.server.ingest import HeartbeatIngest, Ingest
from fleet.server.migrate import migrate
from fleet.server.routes import add_routes, error_response
from fleet.server.settings import ServerSettings
from fleet.server.writer_link import RemoteIngest
from fleet.wire import MAX_COMMAND_RESULT_BYTES
from provisioning.ca import FleetCA

logger = logging.getLogger("fleet.server")

_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large",
                 400: "bad_request"}


@web.middleware
async def api_errors(request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiProblem as exc:
        response = error_response(exc.status, exc.code, exc.detail)
        response.headers.update(exc.headers)
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or not _is_api(request):
            raise  # redirects, and the dashboard's own pages (HTML errors)
        resp = error_response(exc.status, _STATUS_CODES.get(exc.status, "http_error"),
                              exc.reason)
        if exc.status == 405 and "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except Exception:
        if not _is_api(request):
            raise
        logger.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal", "the server failed; the error is logged")


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/metrics")


def _default_extensions() -> tuple[Callable[[web.Application], None], ...]:
    """The dashboard (fleet/server/dashboard, `setup(app)`), when it is installed."""
    if importlib.util.find_spec("fleet.server.dashboard") is None:
        return ()
    module = importlib.import_module("fleet.server.dashboard")
    setup = getattr(module, "setup", None)
    return (setup,) if callable(setup) else ()


def create_app(settings: ServerSettings, *, clock: Callable[[], float] = time.time,
               ca: FleetCA | None = None,
               extensions: Sequence[Callable[[web.Application], None]] | None = None
               ) -> web.Application:
    """The server. `extensions` (default: the dashboard, if present) are called with the
    application after the API routes are added, before it starts: they add their own routes
    and may read the same app keys (fleet/server/context.py)."""
    app = web.Application(middlewares=[api_errors],
                          client_max_size=MAX_COMMAND_RESULT_BYTES + 64 * 1024)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    add_routes(app)
    for extend in (_default_extensions() if extensions is None else extensions):
        extend(app)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        db = open_database(settings.database_url)
        try:
            await migrate(db)
            app[DB] = db
            app[CA] = ca or FleetCA.load(settings.ca_dir)
            app[KEYS] = DeviceKeys.for_settings(db, settings, clock=clock)
            app[REVOKED_CREDENTIALS] = RevokedCredentials(db)
            ingest: Ingest = (RemoteIngest(settings.ingest_socket, settings, clock)
                              if settings.ingest_socket else
                              HeartbeatIngest(db, settings, clock))
            evaluator = AlertEvaluator(db, settings, clock)
            app[INGEST] = ingest
            app[EVALUATOR] = evaluator
            await ingest.start()
            if settings.run_evaluator:
                await evaluator.start()
            try:
                yield
            finally:
                await evaluator.stop()
                await ingest.stop()
        finally:
            await db.dispose()

    app.cleanup_ctx.append(resources)
    return app
