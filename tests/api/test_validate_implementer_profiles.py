"""Profiles that implementers write (issue #20): each is stored over HTTP (201) and then used by ``$validate``,
which accepts a conforming instance and reports the constraint broken by a non-conforming one, at its FHIRPath
location. None of them may answer with internal exception text."""

from __future__ import annotations

from typing import Any

import httpx

CORE = "http://hl7.org/fhir/StructureDefinition/"
EX = "http://example.org/fhir/StructureDefinition/"


def profile(name: str, base: str, elements: list[dict[str, Any]], kind: str = "resource",
            type_: str | None = None) -> dict[str, Any]:
    return {"resourceType": "StructureDefinition", "id": name, "url": EX + name, "name": name, "status": "active",
            "kind": kind, "abstract": False, "type": type_ or base, "baseDefinition": CORE + base,
            "derivation": "constraint", "differential": {"element": elements}}


async def store(client: httpx.AsyncClient, sd: dict[str, Any]) -> None:
    response = await client.post("/fhir/StructureDefinition", json=sd)
    assert response.status_code == 201, response.json()


async def errors(client: httpx.AsyncClient, resource: dict[str, Any], url: str) -> list[dict[str, Any]]:
    response = await client.post(f"/fhir/{resource['resourceType']}/$validate", params={"profile": url},
                                 json=resource)
    assert response.status_code == 200, response.text
    issues = response.json()["issue"]
    for issue in issues:
        assert "Traceback" not in issue.get("diagnostics", "") and "KeyError" not in issue.get("diagnostics", "")
    return [i for i in issues if i["severity"] in ("error", "fatal")]


OBS = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}


async def test_constraint_reached_through_a_content_reference(client: httpx.AsyncClient) -> None:
    sd = profile("ParamsPartNamed", "Parameters", [
        {"id": "Parameters.parameter.part", "path": "Parameters.parameter.part", "min": 1},
        {"id": "Parameters.parameter.part.name", "path": "Parameters.parameter.part.name",
         "fixedString": "inner"}])
    await store(client, sd)
    good = {"resourceType": "Parameters", "parameter": [{"name": "a", "part": [{"name": "inner",
                                                                                "valueString": "v"}]}]}
    assert await errors(client, good, sd["url"]) == []
    bad = {"resourceType": "Parameters", "parameter": [{"name": "a", "part": [{"name": "other",
                                                                               "valueString": "v"}]}]}
    found = await errors(client, bad, sd["url"])
    assert [i["expression"] for i in found] == [["Parameters.parameter[0].part[0].name"]]


async def test_constraint_inside_a_choice_element(client: httpx.AsyncClient) -> None:
    sd = profile("ObsQuantityUnit", "Observation", [
        {"id": "Observation.value[x]", "path": "Observation.value[x]", "type": [{"code": "Quantity"}]},
        {"id": "Observation.value[x].system", "path": "Observation.value[x].system", "min": 1,
         "fixedUri": "http://unitsofmeasure.org"}])
    await store(client, sd)
    good = {**OBS, "valueQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "mg"}}
    assert await errors(client, good, sd["url"]) == []
    bad = {**OBS, "valueQuantity": {"value": 1, "system": "http://example.org/units", "code": "mg"}}
    found = await errors(client, bad, sd["url"])
    assert [i["expression"] for i in found] == [["Observation.valueQuantity.system"]]


async def test_constraint_through_a_renamed_choice_path(client: httpx.AsyncClient) -> None:
    sd = profile("ObsQuantityCode", "Observation", [
        {"id": "Observation.valueQuantity", "path": "Observation.valueQuantity"},
        {"id": "Observation.valueQuantity.code", "path": "Observation.valueQuantity.code", "min": 1}])
    await store(client, sd)
    assert await errors(client, {**OBS, "valueQuantity": {"value": 1, "code": "mg"}}, sd["url"]) == []
    found = await errors(client, {**OBS, "valueQuantity": {"value": 1}}, sd["url"])
    assert [i["expression"] for i in found] == [["Observation.valueQuantity.code"]]
    found = await errors(client, {**OBS, "valueString": "x"}, sd["url"])
    assert len(found) == 1 and found[0]["expression"] == ["Observation.valueString"]


async def test_implicit_type_slice_on_a_choice(client: httpx.AsyncClient) -> None:
    sd = profile("ObsShortString", "Observation", [
        {"id": "Observation.value[x]", "path": "Observation.value[x]",
         "slicing": {"discriminator": [{"type": "type", "path": "$this"}], "rules": "open"}},
        {"id": "Observation.value[x]:valueString", "path": "Observation.value[x]", "sliceName": "valueString",
         "type": [{"code": "string"}], "maxLength": 5}])
    await store(client, sd)
    assert await errors(client, {**OBS, "valueString": "short"}, sd["url"]) == []
    assert await errors(client, {**OBS, "valueBoolean": True}, sd["url"]) == []
    found = await errors(client, {**OBS, "valueString": "far too long"}, sd["url"])
    assert [i["expression"] for i in found] == [["Observation.valueString"]]


async def test_type_slice_on_a_choice_without_declared_slicing(client: httpx.AsyncClient) -> None:
    sd = profile("ObsShortString2", "Observation", [
        {"id": "Observation.value[x]:valueString", "path": "Observation.value[x]", "sliceName": "valueString",
         "maxLength": 5}])
    await store(client, sd)
    assert await errors(client, {**OBS, "valueString": "short"}, sd["url"]) == []
    found = await errors(client, {**OBS, "valueString": "far too long"}, sd["url"])
    assert [i["expression"] for i in found] == [["Observation.valueString"]]


async def test_constraint_inside_an_extension_slice_value(client: httpx.AsyncClient) -> None:
    ext_url = "http://example.org/fhir/StructureDefinition/shoe-size"
    sd = profile("PatientShoe", "Patient", [
        {"id": "Patient.extension", "path": "Patient.extension",
         "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}},
        {"id": "Patient.extension:shoe", "path": "Patient.extension", "sliceName": "shoe", "max": "1"},
        {"id": "Patient.extension:shoe.url", "path": "Patient.extension.url", "fixedUri": ext_url},
        {"id": "Patient.extension:shoe.value[x]", "path": "Patient.extension.value[x]", "min": 1,
         "type": [{"code": "integer"}], "maxValueInteger": 60}])
    await store(client, sd)
    good = {"resourceType": "Patient", "extension": [{"url": ext_url, "valueInteger": 42}]}
    assert await errors(client, good, sd["url"]) == []
    bad = {"resourceType": "Patient", "extension": [{"url": ext_url, "valueInteger": 99}]}
    found = await errors(client, bad, sd["url"])
    assert [i["expression"] for i in found] == [["Patient.extension[0].valueInteger"]]


async def test_primitive_extensions_on_type_profile_are_accepted(client: httpx.AsyncClient) -> None:
    sd = profile("PatientWithProfiledRef", "Patient", [
        {"id": "Patient.managingOrganization", "path": "Patient.managingOrganization",
         "type": [{"code": "Reference", "targetProfile": [CORE + "Organization"],
                   "_targetProfile": [{"extension": [{
                       "url": "http://hl7.org/fhir/StructureDefinition/elementdefinition-type-must-support",
                       "valueBoolean": True}]}]}]},
        {"id": "Patient.name", "path": "Patient.name",
         "type": [{"code": "HumanName", "profile": [CORE + "HumanName"],
                   "_profile": [{"extension": [{
                       "url": "http://hl7.org/fhir/StructureDefinition/elementdefinition-type-must-support",
                       "valueBoolean": True}]}]}]}])
    await store(client, sd)
    assert await errors(client, {"resourceType": "Patient", "name": [{"family": "Ruiz"}]}, sd["url"]) == []


async def test_a_binding_without_strength_is_a_validation_issue(client: httpx.AsyncClient) -> None:
    sd = profile("ObsNoStrength", "Observation", [
        {"id": "Observation.code", "path": "Observation.code",
         "binding": {"valueSet": "http://hl7.org/fhir/ValueSet/observation-codes"}}])
    response = await client.post("/fhir/StructureDefinition", json=sd)
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert "strength" in issue["diagnostics"] and "KeyError" not in issue["diagnostics"]
    assert issue["expression"] == ["StructureDefinition.differential.element[0].binding.strength"]
    response = await client.post("/fhir/StructureDefinition/$validate", json=sd)
    found = [i for i in response.json()["issue"] if i["severity"] == "error"]
    assert [i["expression"] for i in found] == [["StructureDefinition.differential.element[0].binding.strength"]]


UNKNOWN_EXT = {"resourceType": "Patient", "extension": [{"url": "http://unknown.org/fhir/ext", "valueString": "x"}]}


async def test_an_unknown_extension_is_an_error_in_validate_but_is_stored(client: httpx.AsyncClient) -> None:
    response = await client.post("/fhir/Patient/$validate", json=UNKNOWN_EXT)
    found = [i for i in response.json()["issue"] if i["severity"] == "error"]
    assert [(i["code"], i["expression"]) for i in found] == [("structure", ["Patient.extension[0]"])]
    assert "unknown" in found[0]["diagnostics"]
    claimed = {**UNKNOWN_EXT, "meta": {"profile": ["http://example.org/not-held"]}}
    assert (await client.post("/fhir/Patient", json=claimed)).status_code == 201


async def test_an_extension_the_profile_defines_is_not_unknown(client: httpx.AsyncClient) -> None:
    ext = {"resourceType": "StructureDefinition", "url": "http://unknown.org/fhir/ext", "name": "Ext",
           "status": "active", "kind": "complex-type", "abstract": False, "type": "Extension",
           "context": [{"type": "element", "expression": "Patient"}],
           "baseDefinition": CORE + "Extension", "derivation": "constraint", "differential": {"element": [
               {"id": "Extension.url", "path": "Extension.url", "fixedUri": "http://unknown.org/fhir/ext"},
               {"id": "Extension.value[x]", "path": "Extension.value[x]", "type": [{"code": "string"}]}]}}
    await store(client, ext)
    response = await client.post("/fhir/Patient/$validate", json=UNKNOWN_EXT)
    assert [i for i in response.json()["issue"] if i["severity"] == "error"] == []


async def test_min_and_max_values_of_a_quantity_and_a_date(client: httpx.AsyncClient) -> None:
    sd = profile("ObsLimits", "Observation", [
        {"id": "Observation.value[x]", "path": "Observation.value[x]", "type": [{"code": "Quantity"}],
         "minValueQuantity": {"value": 10, "system": "http://unitsofmeasure.org", "code": "mg"},
         "maxValueQuantity": {"value": 20, "system": "http://unitsofmeasure.org", "code": "mg"}},
        {"id": "Observation.effective[x]", "path": "Observation.effective[x]", "type": [{"code": "dateTime"}],
         "maxValueDateTime": "2030-01-01"}])
    await store(client, sd)
    mg = {"system": "http://unitsofmeasure.org", "code": "mg"}
    good = {**OBS, "valueQuantity": {"value": 15, **mg}, "effectiveDateTime": "2024-05-01"}
    assert await errors(client, good, sd["url"]) == []
    low = {**OBS, "valueQuantity": {"value": 5, **mg}, "effectiveDateTime": "2031-05-01"}
    found = await errors(client, low, sd["url"])
    assert sorted(i["expression"][0] for i in found) == ["Observation.effectiveDateTime", "Observation.valueQuantity"]
    high = {**OBS, "valueQuantity": {"value": 25, **mg}}
    assert [i["expression"] for i in await errors(client, high, sd["url"])] == [["Observation.valueQuantity"]]


async def test_an_invariant_fhirpath_cannot_evaluate_is_a_warning_not_an_error(client: httpx.AsyncClient) -> None:
    sd = profile("ObsMemberOf", "Observation", [
        {"id": "Observation", "path": "Observation", "constraint": [
            {"key": "obs-x", "severity": "error", "human": "code from the set",
             "expression": "code.memberOf('http://example.org/fhir/ValueSet/x')"}]}])
    await store(client, sd)
    response = await client.post("/fhir/Observation/$validate", params={"profile": sd["url"]}, json=OBS)
    issues = response.json()["issue"]
    assert [i for i in issues if i["severity"] == "error"] == []
    assert any(i["severity"] == "warning" and "obs-x" in i["diagnostics"] for i in issues)


async def test_complex_extension_sub_extensions(client: httpx.AsyncClient) -> None:
    url = "http://example.org/fhir/StructureDefinition/dose"
    ext = {"resourceType": "StructureDefinition", "url": url, "name": "Dose", "status": "active",
           "kind": "complex-type", "abstract": False, "type": "Extension", "baseDefinition": CORE + "Extension",
           "derivation": "constraint", "context": [{"type": "element", "expression": "Patient"}],
           "differential": {"element": [
               {"id": "Extension.extension", "path": "Extension.extension", "min": 1},
               {"id": "Extension.extension:amount", "path": "Extension.extension", "sliceName": "amount", "min": 1,
                "max": "1"},
               {"id": "Extension.extension:amount.url", "path": "Extension.extension.url", "fixedUri": "amount"},
               {"id": "Extension.extension:amount.value[x]", "path": "Extension.extension.value[x]",
                "type": [{"code": "integer"}]},
               {"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
               {"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"}]}}
    await store(client, ext)
    good = {"resourceType": "Patient", "extension": [{"url": url, "extension": [{"url": "amount", "valueInteger": 2}]}]}
    response = await client.post("/fhir/Patient/$validate", json=good)
    assert [i for i in response.json()["issue"] if i["severity"] == "error"] == []
    missing = {"resourceType": "Patient",
               "extension": [{"url": url, "extension": [{"url": "other", "valueInteger": 2}]}]}
    response = await client.post("/fhir/Patient/$validate", json=missing)
    assert sorted(i["expression"][0] for i in response.json()["issue"] if i["severity"] == "error") == [
        "Patient.extension[0].extension",  # the required sub-extension "amount"
        "Patient.extension[0].extension[0]"]  # "other" is defined nowhere
    valued = {"resourceType": "Patient", "extension": [{"url": url, "valueInteger": 2}]}
    response = await client.post("/fhir/Patient/$validate", json=valued)
    assert response.json()["issue"][0]["severity"] == "error"
