"""``create_app(settings)``: wires settings, the store and the routes. Nothing else builds the app object."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from fhir_server import memprobe
from fhir_server.api import ascmi, confidential, consent, errors, export, observability, routes, smart, webapp
from fhir_server.api import docs as api_docs
from fhir_server.api import package as api_package
from fhir_server.api import subscriptions as subscription_api
from fhir_server.api.context import Server
from fhir_server.api.writer import WriterContext
from fhir_server.repository import bootstrap
from fhir_server.repository.writebehind import WriteBehind
from fhir_server.security.service import Security
from fhir_server.settings import Settings
from fhir_server.store.base import Store
from fhir_server.subscriptions.service import SubscriptionService
from fhir_server.trim import Trimmer

log = logging.getLogger("fhir_server")


def make_store(settings: Settings) -> Store:
    """MongoDB when ``MONGODB_URI`` is set, else the embedded SQLite file in the data directory."""
    if settings.mongodb_uri:
        from fhir_server.store.mongo import MongoStore

        return MongoStore(settings.mongodb_uri, settings.mongodb_database)
    from fhir_server.store.sqlite import SQLiteStore

    return SQLiteStore(settings.sqlite_path, settings.sqlite_cache_mib)


def cache_sizes(server: Server, security: Security) -> dict[str, int]:
    """Entries in each per-worker cache and queue (the memory probe's view; docs/deploy.md, *Memory per worker*)."""
    from fhir_server.consent import compiled

    gate = server.gate
    return {"gate.decisions": len(gate._decisions), "gate.facts": len(gate._facts),
            "gate.obligations": len(gate._obligations), "gate.disclosures": len(gate._disclosures),
            "compiled": len(compiled._CACHE), "compiled.bytes": len(compiled._BYTES_CACHE),
            "compiled.shared": len(compiled._SHARED), "tokens": len(security._tokens),
            "clients": len(security._clients), "users": len(security._users),
            "revocation_checked": len(security._revocation_checked),
            "write_behind": server.audit._queue.qsize() if server.audit is not None else 0,
            **memprobe.function_caches()}


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    store = store or make_store(settings)
    server = Server(settings, store, WriteBehind(store))
    subscriptions = SubscriptionService(settings, store, server.gate)
    trimmer = Trimmer(settings.malloc_trim_seconds)
    probe = memprobe.from_env(lambda: cache_sizes(server, security))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        log.info("store %s open", store.name)
        await security.open()
        await bootstrap.load(store, settings.canonical_base, settings.load_conformance)
        assert server.audit is not None
        server.audit.start()
        bulk.start()
        await subscriptions.start()
        trimmer.start()
        if probe is not None:
            probe.start()
        try:
            yield
        finally:
            if probe is not None:
                await probe.stop()
            await trimmer.stop()
            await subscriptions.stop()
            await bulk.stop()
            await server.audit.stop()
            await store.close()
            observability.shutdown()

    app = FastAPI(title="ASCMI FHIR server", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.server = server
    app.state.subscriptions = subscriptions
    security = smart.install(app, settings, store)  # before errors.install: the error guard stays outermost
    errors.install(app)
    bulk = export.install(app, server)
    app.add_middleware(WriterContext)  # the writing caller, for labels at ingest (repository.labels)
    app.include_router(subscription_api.router())  # ahead of the generic routes: POST/PUT Subscription
    app.include_router(api_docs.router())  # before the FHIR routes: /fhir/openapi.json is not a resource type
    app.include_router(api_package.router())
    app.include_router(routes.router())
    app.include_router(ascmi.router())
    app.include_router(confidential.router())
    app.include_router(consent.cds_router())
    app.include_router(webapp.router())  # the Care Partner page at /app/ (docs/app.md)

    async def health(_: Request) -> Response:
        """Liveness probe (and the round-trip baseline the benchmarks compare against)."""
        return Response(b'{"status":"ok"}', media_type="application/json")

    app.add_api_route("/health", health, methods=["GET"])
    observability.install(app)  # last: its request edge (request ids, metrics, access log) is outermost
    return app
