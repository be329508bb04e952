"""``GET /fhir/openapi.json`` (generated from the CapabilityStatement) and the offline API page: the document is
valid OpenAPI 3, describes what is routed, and a schemathesis run over it against a real server finds no 500
and no answer outside the document."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from fhir_server.fhir import registry
from tests.api.support import fhir_server_process

STORE = os.environ.get("STORE", "sqlite")
# The fuzz run covers the system endpoints, the intake and CDS Hooks, and three types in full (every type is
# routed by the same handlers): about 60 operations, a few examples each, so it stays well under a minute.
FUZZED_TAGS = ["System", "Patient", "Consent", "Observation", "ASCMI intake", "CDS Hooks", "Bulk Data",
               "Operations", "SMART"]
EXAMPLES_PER_OPERATION = 6


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/fhir/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()  # type: ignore[no-any-return]


async def test_openapi_document_is_valid_openapi_3(client: httpx.AsyncClient) -> None:
    document = await _document(client)
    assert document["openapi"].startswith("3.0")
    validate(document)  # raises on any violation of the OpenAPI 3.0 schema


async def test_openapi_describes_every_type_interaction_search_parameter_and_operation(
        client: httpx.AsyncClient) -> None:
    document = await _document(client)
    paths = document["paths"]
    statement = (await client.get("/fhir/metadata")).json()["rest"][0]
    for entry in statement["resource"]:
        rtype = entry["type"]
        assert {"get", "post"} <= set(paths[f"/fhir/{rtype}"]), rtype
        assert {"get", "put", "patch", "delete"} <= set(paths[f"/fhir/{rtype}/{{id}}"]), rtype
        assert "get" in paths[f"/fhir/{rtype}/{{id}}/_history/{{vid}}"]
    consent_search = paths["/fhir/Consent"]["get"]["parameters"]
    shared = document["components"]["parameters"]
    names = {shared[p["$ref"].rsplit("/", 1)[1]]["name"]: shared[p["$ref"].rsplit("/", 1)[1]]
             for p in consent_search}
    assert names["patient"]["description"].startswith("reference")
    assert names["status"]["description"].startswith("token")
    assert {"provision-actor", "_include", "_count"} <= set(names)
    assert "post" in paths["/fhir/Consent/$decide"]
    assert "post" in paths["/fhir/{type}/$validate"]
    assert {"/ascmi/forms", "/ascmi/revocations", "/cds-services", "/cds-services/patient-consent-consult"} \
        <= set(paths)
    assert document["security"] and document["components"]["securitySchemes"]
    assert paths["/fhir/metadata"]["get"]["security"] == []  # public, like the CapabilityStatement
    assert len(registry.RESOURCE_TYPES) == len([t for t in document["tags"] if t["name"] in registry.RESOURCE_TYPES])


async def test_api_page_is_served_with_its_assets_and_needs_no_network(client: httpx.AsyncClient) -> None:
    page = await client.get("/fhir/swagger-ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text  # no CDN: everything from this server
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "swagger-ui-bundle.js" in assets
    for asset in assets:
        response = await client.get(f"/fhir/swagger-ui/{asset}")
        assert response.status_code == 200, asset
        assert len(response.content) > 0
    assert "../openapi.json" in page.text
    redirect = await client.get("/docs")
    assert redirect.status_code == 307 and redirect.headers["location"].endswith("/fhir/swagger-ui/")
    missing = await client.get("/fhir/swagger-ui/index.html")
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    env = {}
    if STORE == "mongo":
        env = {"MONGODB_URI": request.getfixturevalue("mongo_uri"), "MONGODB_DATABASE": f"openapi_{os.getpid()}"}
    with fhir_server_process(tmp_path, env=env) as base:
        yield base.removesuffix("/fhir")


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(server: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server}/fhir/openapi.json").include(tag=FUZZED_TAGS)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    session = requests.Session()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    failures: list[str] = []
    for operation in operations:

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server, session=session, checks=checks)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(exc)[:600]}")
    assert failures == []


async def test_with_auth_on_the_documents_need_no_token_and_describe_smart_backend_services(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from fhir_server.app import create_app
    from fhir_server.settings import Settings
    from tests.conftest import make_store

    app = create_app(Settings(data_dir=tmp_path, auth="smart"), make_store(STORE, tmp_path, request))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            for path in ("/fhir/openapi.json", "/fhir/swagger-ui/", "/fhir/swagger-ui/swagger-ui.css",
                         "/fhir/ImplementationGuide/ascmi.fhir.consent/package.tgz"):
                assert (await client.get(path)).status_code == 200, path
            assert (await client.get("/docs")).status_code == 307
            assert (await client.get("/fhir/Patient")).status_code == 401  # the rest still needs a token
            document = (await client.get("/fhir/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["smart"]
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["clientCredentials"]["tokenUrl"] == "http://test/fhir/auth/token"
    assert document["security"] == [{"smart": []}]
    assert document["paths"]["/fhir/auth/token"]["post"]["security"] == []
    assert document["paths"]["/fhir/.well-known/smart-configuration"]["get"]["security"] == []
