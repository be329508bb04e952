"""``/metrics``, ``/health/ready`` and request ids over HTTP, on the store the suite runs on."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fhir_server import metrics
from fhir_server.app import create_app
from fhir_server.settings import Settings
from tests.api.support import assert_outcome, create
from tests.conftest import STORE, make_store


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[:line.rfind("} ")])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_requests_by_route_template_not_by_path(client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    before = (await client.get("/metrics")).text
    for _ in range(3):
        assert (await client.get(f"/fhir/Patient/{rid}")).status_code == 200
    assert (await client.get("/fhir/Patient/does-not-exist")).status_code == 404
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = "/fhir/{rtype}/{id}"
    name = "fhir_http_requests_total"
    assert sample(text, name, method="GET", route=route, status="200") - \
        sample(before, name, method="GET", route=route, status="200") == 3
    assert sample(text, name, method="GET", route=route, status="404") - \
        sample(before, name, method="GET", route=route, status="404") == 1
    assert rid not in text and "does-not-exist" not in text
    assert sample(text, "fhir_http_request_duration_seconds_count", method="GET", route=route) >= 4


async def test_unrouted_paths_share_one_label(client: httpx.AsyncClient) -> None:
    assert (await client.get("/no/such/place/123")).status_code == 404
    text = (await client.get("/metrics")).text
    assert sample(text, "fhir_http_requests_total", route="unmatched", status="404") >= 1
    assert "/no/such/place" not in text


async def test_store_transactions_and_write_behind_are_measured(client: httpx.AsyncClient) -> None:
    before = (await client.get("/metrics")).text
    await create(client)
    text = (await client.get("/metrics")).text
    name = "fhir_store_transaction_duration_seconds_count"
    assert sample(text, name, store=STORE, outcome="commit") > sample(before, name, store=STORE, outcome="commit")
    assert "fhir_write_behind_queue_depth" in text
    assert "fhir_write_behind_lag_seconds_bucket" in text


async def test_hooks_for_the_decision_cache_and_subscriptions_reach_metrics(client: httpx.AsyncClient) -> None:
    before = (await client.get("/metrics")).text
    metrics.decision_cache(hit=True)
    metrics.decision_cache(hit=True)
    metrics.decision_cache(hit=False)
    metrics.set_subscription_delivery_lag(1.5)
    text = (await client.get("/metrics")).text
    name = "fhir_decision_cache_lookups_total"
    assert sample(text, name, result="hit") - sample(before, name, result="hit") == 2
    assert sample(text, name, result="miss") - sample(before, name, result="miss") == 1
    assert sample(text, "fhir_subscription_delivery_lag_seconds") == 1.5


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/fhir/metadata", headers={"X-Request-ID": "trace-42.a"})
    assert given.headers["x-request-id"] == "trace-42.a"
    fresh = await client.get("/fhir/metadata")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    error = await client.get("/fhir/Patient/nope")
    assert error.status_code == 404 and re.fullmatch(r"[0-9a-f]{32}", error.headers["x-request-id"])
    odd = await client.get("/fhir/metadata", headers={"X-Request-ID": "has spaces and \"quotes\""})
    assert odd.headers["x-request-id"] != "has spaces and \"quotes\""
    assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["x-request-id"])


async def test_liveness_and_readiness_answer_when_the_store_does(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 200
    ready = await client.get("/health/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


@pytest.fixture
async def closable(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
                   ) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    store = make_store(STORE, tmp_path, request)
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c, store


async def test_readiness_fails_with_503_when_the_store_is_gone_but_liveness_holds(
        closable: tuple[httpx.AsyncClient, object]) -> None:
    client, store = closable
    await store.close()  # type: ignore[attr-defined]
    response = await client.get("/health/ready")
    assert_outcome(response, 503, "transient")
    assert response.headers["retry-after"]
    assert (await client.get("/health")).status_code == 200
    await store.open()  # type: ignore[attr-defined]  # the lifespan closes it again
    assert (await client.get("/health/ready")).status_code == 200


@pytest.fixture
def settings_with_metrics_token(settings: Settings) -> Settings:
    return settings.with_(metrics_token="scrape-secret")


async def test_metrics_token_when_configured(settings_with_metrics_token: Settings, tmp_path: Path,
                                             request: pytest.FixtureRequest) -> None:
    app = create_app(settings_with_metrics_token, make_store(STORE, tmp_path, request))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            assert_outcome(await c.get("/metrics"), 401, "login")
            assert_outcome(await c.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401, "login")
            ok = await c.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
            assert ok.status_code == 200 and "fhir_http_requests_total" in ok.text
            assert (await c.get("/health/ready")).status_code == 200  # probes never need the token


async def test_probes_and_metrics_need_no_token_when_auth_is_on(settings: Settings, tmp_path: Path,
                                                                request: pytest.FixtureRequest) -> None:
    """Load balancers and Prometheus call these without SMART tokens, whatever the auth edge does."""
    app = create_app(settings.with_(auth="smart"), make_store(STORE, tmp_path, request))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            for path in ("/health", "/health/ready", "/metrics"):
                response = await c.get(path)
                assert response.status_code == 200, (path, response.text)
                assert response.headers["x-request-id"]
