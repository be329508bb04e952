"""The label ValueSets are stored resources a deployment extends through the API: new writes use the new
content at once, start-up does not undo it, and ``fhir-server relabel`` applies it to what is stored."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server import cli
from fhir_server.repository import bootstrap
from fhir_server.repository import resources as repo
from fhir_server.repository.relabel import relabel
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store
from tests.labels.conftest import Labelled
from tests.labels.support import PATIENT, SCT, cc, codes_of, post, put, stored

HIV_VS = "/fhir/ValueSet/ascmi-sls-hiv"
NEW_CODE = "840498003"  # a SNOMED CT code the seed does not hold


async def extend_hiv(client: httpx.AsyncClient) -> dict[str, Any]:
    vs = (await client.get(HIV_VS)).json()
    vs["compose"]["include"].append({"system": SCT, "concept": [{"code": NEW_CODE}]})
    return await put(client, vs)


def condition(code: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": PATIENT, "code": cc(SCT, code), **fields}


async def test_the_seed_value_sets_are_stored_and_findable(client: httpx.AsyncClient) -> None:
    response = await client.get("/fhir/ValueSet", params={"url": "https://ascmi.example.org/fhir/ValueSet/"
                                                                 "ascmi-sls-mental-health"})
    assert response.json()["total"] == 1
    for category in ("substance-use", "mental-health", "hiv", "sti", "reproductive-health",
                     "gender-affirming-care", "intimate-partner-violence"):
        assert (await client.get(f"/fhir/ValueSet/ascmi-sls-{category}")).status_code == 200


async def test_an_extended_value_set_labels_the_next_write(client: httpx.AsyncClient) -> None:
    before = await post(client, condition(NEW_CODE))
    assert codes_of(before) == set()
    await extend_hiv(client)
    after = await post(client, condition(NEW_CODE))
    assert codes_of(after) == {"HIV"}


async def test_a_value_set_changed_inside_a_transaction_labels_its_later_entries(client: httpx.AsyncClient) -> None:
    vs = (await client.get(HIV_VS)).json()
    vs["compose"]["include"].append({"system": SCT, "concept": [{"code": NEW_CODE}]})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": condition(NEW_CODE, id="a"), "request": {"method": "PUT", "url": "Condition/a"}},
        {"resource": vs, "request": {"method": "PUT", "url": "ValueSet/ascmi-sls-hiv"}},
        {"resource": condition(NEW_CODE, id="b"), "request": {"method": "PUT", "url": "Condition/b"}},
    ]}
    response = await client.post("/fhir", json=bundle, headers={"Prefer": "return=representation"})
    assert response.status_code == 200, response.text
    assert [codes_of(e["resource"]) for e in response.json()["entry"]][::2] == [set(), {"HIV"}]


async def test_start_up_keeps_the_deployments_version(labelled: Labelled, settings: Settings) -> None:
    extended = await extend_hiv(labelled.client)
    await bootstrap.load(labelled.store, settings.canonical_base)
    again = (await labelled.client.get(HIV_VS)).json()
    assert again["meta"]["versionId"] == extended["meta"]["versionId"]
    assert codes_of(await post(labelled.client, condition(NEW_CODE))) == {"HIV"}


async def test_relabel_gives_a_new_version_only_where_labels_change(labelled: Labelled) -> None:
    client = labelled.client
    old = await put(client, condition(NEW_CODE, id="old"))
    plain = await put(client, condition("38341003", id="plain"))
    sent = await put(client, condition(NEW_CODE, id="sent", meta={"security": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]}))
    await extend_hiv(client)

    report = await relabel(labelled.store)
    assert report.relabelled == 1 and report.examined > 3
    now = await stored(client, old)
    assert (now["meta"]["versionId"], codes_of(now)) == ("2", {"HIV"})
    first = (await client.get("/fhir/Condition/old/_history/1")).json()
    assert codes_of(first) == set()  # what was served as version 1 stays what it was
    assert (await stored(client, plain))["meta"]["versionId"] == "1"
    assert (await stored(client, sent))["meta"]["versionId"] == "1"
    assert (await relabel(labelled.store)).relabelled == 0


def test_relabel_command_line(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """``fhir-server relabel`` on the configured store (SQLite in --data-dir, or MONGODB_URI)."""
    store = make_store(STORE, tmp_path, request)
    if STORE == "mongo":
        monkeypatch.setenv("MONGODB_URI", store.uri)  # type: ignore[attr-defined]
        monkeypatch.setenv("MONGODB_DATABASE", store.database)  # type: ignore[attr-defined]
    else:
        monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.setenv("FHIR_LOAD_CONFORMANCE", "true")

    async def seed() -> None:
        await store.open()
        try:
            await bootstrap.load(store, "https://ascmi.example.org/fhir")
            async with store.transaction() as tx:
                vs = await tx.current("ValueSet", "ascmi-sls-hiv")
                assert vs is not None and vs.body is not None
                body = json.loads(vs.body)
                await repo.create(tx, {**condition(NEW_CODE), "id": "x"}, id="x", check_refs=False)
                body["compose"]["include"].append({"system": SCT, "concept": [{"code": NEW_CODE}]})
                await repo.update(tx, "ValueSet", "ascmi-sls-hiv", body, check_refs=False)
        finally:
            await store.close()

    async def labels_now() -> set[str]:
        await store.open()
        try:
            current = await store.read("Condition", "x")
            assert current is not None and current.body is not None
            return codes_of(json.loads(current.body))
        finally:
            await store.close()

    asyncio.run(seed())
    assert asyncio.run(labels_now()) == set()
    assert cli.main(["relabel", "--data-dir", str(tmp_path)]) == 0
    assert "1 relabelled" in capsys.readouterr().err
    assert asyncio.run(labels_now()) == {"HIV"}


async def test_searching_in_a_label_value_set_is_refused_not_widened(client: httpx.AsyncClient) -> None:
    """ICD-10-CM is-a filters cannot be enumerated here: ``:in`` must not read them as "every ICD-10-CM code"."""
    await post(client, {"resourceType": "Condition", "subject": PATIENT,
                        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J06.9"}]}})
    response = await client.get("/fhir/Condition", params={
        "code:in": "https://ascmi.example.org/fhir/ValueSet/ascmi-sls-hiv"})
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["code"] == "not-supported"
