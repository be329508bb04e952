"""Local reference checking inside transactions (``Settings.check_references``, on by default)."""

from __future__ import annotations

import httpx
import pytest

from fhir_server.settings import Settings
from tests.api.bundle_support import assert_entry_error, entry, observation, post_bundle, transaction
from tests.api.support import create, patient


async def test_a_reference_to_a_missing_resource_fails_the_transaction(client: httpx.AsyncClient) -> None:
    bundle = transaction(entry("POST", "Patient", patient()), entry("POST", "Observation", observation("Patient/x")))
    issue = assert_entry_error(await post_bundle(client, bundle), 400, 1)
    assert issue["code"] == "not-found" and "Patient/x" in issue["diagnostics"]


async def test_a_reference_to_a_resource_put_later_in_processing_order_is_accepted(
        client: httpx.AsyncClient) -> None:
    """The POST runs before the PUT that creates its target: references are checked once all is written."""
    bundle = transaction(entry("POST", "Observation", observation("Patient/later")),
                         entry("PUT", "Patient/later", patient(id="later")))
    response = await post_bundle(client, bundle)
    assert response.status_code == 200, response.text
    assert response.json()["entry"][0]["resource"]["subject"]["reference"] == "Patient/later"


async def test_absolute_references_on_this_server_are_checked_too(client: httpx.AsyncClient) -> None:
    bundle = transaction(entry("POST", "Observation", observation("http://test/fhir/Patient/none")))
    assert_entry_error(await post_bundle(client, bundle), 400, 0)


async def test_references_to_other_servers_and_contained_resources_are_not_checked(
        client: httpx.AsyncClient) -> None:
    obs = observation("https://elsewhere.org/fhir/Patient/1",
                      contained=[{"resourceType": "Practitioner", "id": "p1"}], performer=[{"reference": "#p1"}])
    response = await post_bundle(client, transaction(entry("POST", "Observation", obs)))
    assert response.status_code == 200, response.text


async def test_a_reference_to_a_resource_deleted_in_the_same_transaction_is_refused(
        client: httpx.AsyncClient) -> None:
    target = await create(client)
    bundle = transaction(entry("POST", "Observation", observation(f"Patient/{target['id']}")),
                         entry("DELETE", f"Patient/{target['id']}"))
    issue = assert_entry_error(await post_bundle(client, bundle), 409, 0)
    assert issue["code"] == "not-found"
    assert (await client.get(f"/fhir/Patient/{target['id']}")).status_code == 200


async def test_a_versioned_reference_is_checked_against_the_resource(client: httpx.AsyncClient) -> None:
    target = await create(client)
    ok = transaction(entry("POST", "Observation", observation(f"Patient/{target['id']}/_history/1")))
    assert (await post_bundle(client, ok)).status_code == 200
    missing = transaction(entry("POST", "Observation", observation("Patient/nobody/_history/1")))
    assert_entry_error(await post_bundle(client, missing), 400, 0)


class TestWithReferenceCheckingOff:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_(check_references=False)

    async def test_references_to_missing_resources_are_stored_as_given(self, client: httpx.AsyncClient) -> None:
        bundle = transaction(entry("POST", "Observation", observation("Patient/not-yet")))
        response = await post_bundle(client, bundle)
        assert response.status_code == 200, response.text
        assert response.json()["entry"][0]["resource"]["subject"]["reference"] == "Patient/not-yet"

    async def test_temporary_ids_are_still_rewritten(self, client: httpx.AsyncClient) -> None:
        uuid = "urn:uuid:5e7c8a90-1b2c-4d3e-8f40-a1b2c3d4e5f6"
        bundle = transaction(entry("POST", "Patient", patient(), uuid), entry("POST", "Observation", observation(uuid)))
        response = await post_bundle(client, bundle)
        assert response.status_code == 200, response.text
        created_patient, created_obs = response.json()["entry"]
        assert created_obs["resource"]["subject"]["reference"] == f"Patient/{created_patient['resource']['id']}"
