"""One cause, one issue (issue #20): the R4 JSON schema pass and the StructureDefinition walk both see most
structural faults; ``$validate`` must report each fault once, at the FHIRPath location the HL7 validator uses."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.fhir.validation import Validator, check

VALIDATOR = Validator()

CASES = [
    ({"resourceType": "Patient", "id": "a_b"}, "Patient.id"),
    ({"resourceType": "Patient", "birthDate": "2020-13-01"}, "Patient.birthDate"),
    ({"resourceType": "Patient", "name": {"family": "x"}}, "Patient.name"),
    ({"resourceType": "Patient", "name": [{"given": ["a", None]}]}, "Patient.name[0].given[1]"),
    ({"resourceType": "Patient", "name": [{"given": ["a", 3]}]}, "Patient.name[0].given[1]"),
    ({"resourceType": "Patient", "identifier": [{"system": "a b", "value": "1"}]}, "Patient.identifier[0].system"),
    ({"resourceType": "Patient", "gender": "f"}, "Patient.gender"),
    ({"resourceType": "Patient", "foo": 1}, "Patient.foo"),
    ({"resourceType": "Observation", "code": {"text": "x"}}, "Observation.status"),
    ({"resourceType": "Patient", "meta": {"lastUpdated": "2020-01-01"}}, "Patient.meta.lastUpdated"),
]


@pytest.mark.parametrize(("resource", "where"), CASES)
def test_each_fault_is_reported_once_at_its_location(resource: dict[str, Any], where: str) -> None:
    errors = [i for i in check.validate(VALIDATOR, resource) if i.severity == "error"]
    assert [i.expression for i in errors] == [(where,)], errors


def test_separate_faults_are_each_reported() -> None:
    resource = {"resourceType": "Patient", "id": "a_b", "birthDate": "2020-13-01", "gender": "f"}
    errors = [i for i in check.validate(VALIDATOR, resource) if i.severity == "error"]
    assert sorted(e for i in errors for e in i.expression) == ["Patient.birthDate", "Patient.gender", "Patient.id"]
