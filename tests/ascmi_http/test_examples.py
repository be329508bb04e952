"""Every example in examples/forms, replayed over HTTP, stores what its .bundle.json says (by shape)."""

from __future__ import annotations

import httpx
import pytest

from tests.ascmi_http.support import (
    LOCATION,
    actual_shapes,
    consent_ref,
    example,
    example_bundle,
    expected_shapes,
    get,
    names,
    post_form,
    post_revocation,
    search,
    shape,
    stored_from_response,
)

#: The form each revocation example revokes (revoke-by-consent names the Consent by its example id).
REVOKED = {"revoke-by-consent": "named-include-exclude", "revoke-by-form-id": "ab133-all-share"}


def test_every_revocation_example_knows_its_form() -> None:
    assert set(names("revocation")) == set(REVOKED)


@pytest.mark.parametrize("name", names("form"))
async def test_form_example_stores_what_its_bundle_says(client: httpx.AsyncClient, name: str) -> None:
    response = await post_form(client, example(name))
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "transaction-response"
    assert LOCATION.match(response.headers["location"]), response.headers["location"]
    bundle = example_bundle(name)
    assert len(body["entry"]) == len(bundle["entry"])
    assert all(e["response"]["status"].startswith("201") for e in body["entry"])
    stored = await stored_from_response(client, response)
    assert {"Patient", "Organization", "Consent", "Provenance"} <= set(expected_shapes(bundle))
    assert actual_shapes(stored) == expected_shapes(bundle)
    consent_entry = next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Consent")
    location = body["entry"][consent_entry]["response"]["location"]
    assert response.headers["location"] == f"http://test/fhir/{location}"


@pytest.mark.parametrize("name", names("revocation"))
async def test_revocation_example_stores_what_its_bundle_says(client: httpx.AsyncClient, name: str) -> None:
    form = await post_form(client, example(REVOKED[name]))
    revocation = example(name)
    if "consent" in revocation["revokes"]:
        revocation["revokes"]["consent"] = consent_ref(form)
    response = await post_revocation(client, revocation)
    assert response.json()["type"] == "transaction-response"
    assert LOCATION.match(response.headers["location"])
    expected = expected_shapes(example_bundle(name))
    actual = actual_shapes(await stored_from_response(client, response))
    # The receiving Care Partner is already on file (it is named on the form), so the service binds to its
    # Organization instead of asking for a conditional create; its membership keeps the earlier start (§5).
    for rtype in ("Organization", "OrganizationAffiliation"):
        for org in (e["resource"] for e in example_bundle(name)["entry"] if e["resource"]["resourceType"] == rtype
                    and rtype == "Organization"):
            ident = org["identifier"][0]
            found = await search(client, f"Organization?identifier={ident['system']}|{ident['value']}")
            assert [shape(f) for f in found] == [shape(org)]
        expected.pop(rtype, None)
        actual.pop(rtype, None)
    assert actual == expected
    # The revoked form's new version is the one the example bundle PUTs.
    revoked = await get(client, consent_ref(form))
    assert revoked["meta"]["versionId"] == "2" and revoked["status"] == "inactive"
