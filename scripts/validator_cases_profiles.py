"""Writes a case directory for ``scripts/validator_agreement.py``: profiles, slicing, extensions, narrative,
local references and primitives (issue #20, part P).

Each case is a minimal resource written by hand with the fault an HL7 validator test case describes
(``validator/manifest.json`` of FHIR/fhir-test-cases), and the error count the Java validator recorded for it
(``"source": "manifest"``); a few more follow the same rules from the FHIR specification, with the count the
spec implies (``"source": "spec"``). No test-case file is copied.

    .venv/bin/python scripts/validator_cases_profiles.py /tmp/cases   # all cases, and /tmp/cases-manifest
    .venv/bin/python scripts/validator_agreement.py /tmp/cases-manifest
"""
# ruff: noqa: E501
import json
import pathlib
import shutil
import sys

D = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "validator-cases")
D.mkdir(parents=True, exist_ok=True)
CORE = "http://hl7.org/fhir/StructureDefinition/"
EX = "http://example.org/fhir/StructureDefinition/"
cases = []
def case(name, resource, errors, supporting=(), profile=None):
    files = []
    for i, s in enumerate(supporting):
        fn = f"{name}-sup{i}.json"
        (D / fn).write_text(json.dumps(s))
        files.append(fn)
    (D / f"{name}.json").write_text(json.dumps(resource))
    c = {"name": name, "file": f"{name}.json", "supporting": files, "errorCount": errors}
    if profile:
        c["profile"] = profile
    cases.append(c)
def div(inner, ns='xmlns="http://www.w3.org/1999/xhtml"'):
    return {"status": "generated", "div": f'<div {ns}>{inner}</div>'}
LIST = {"resourceType": "List", "status": "current", "mode": "working"}
# --- contained / dom-3 / ref-1
case("list-contained-bad", {**LIST, "contained": [{"resourceType": "Patient", "id": "pat2"}], "subject": {"reference": "#pat"}}, 3)
case("list-contained", {**LIST, "contained": [{"resourceType": "Patient", "id": "pat"}], "subject": {"reference": "#pat"}}, 0)
case("dom3-ref-from-contained", {**LIST, "contained": [{"resourceType": "Patient", "id": "pat", "managingOrganization": {"reference": "#org"}}, {"resourceType": "Organization", "id": "org", "name": "o"}], "subject": {"reference": "#pat"}}, 0)
case("dom3-refers-to-container", {**LIST, "id": "l1", "contained": [{"resourceType": "Provenance", "id": "prov", "target": [{"reference": "#"}], "recorded": "2020-01-01T00:00:00Z", "agent": [{"who": {"display": "x"}}]}]}, 0)
case("dom3-unreferenced", {**LIST, "contained": [{"resourceType": "Patient", "id": "p1"}]}, 1)
# --- xhtml
case("list-xhtml-correct1", {**LIST, "text": div("<p>Hello <b>world</b></p>")}, 0)
case("list-xhtml-correct2", {**LIST, "text": div('<table><tr><td style="color: red">x</td></tr></table><a href="http://example.org">l</a>')}, 0)
case("list-xhtml-attribute", {**LIST, "text": div('<p onClick="alert(1)">x</p>')}, 2)
case("list-xhtml-element", {**LIST, "text": div('<object value="x">x</object>')}, 3)
case("list-xhtml-script", {**LIST, "text": div('<p>x</p><script>alert(1)</script>')}, 2)
case("list-xhtml-syntax", {**LIST, "text": div('<p>x</pa>')}, 3)
case("list-xhtml-wrongns1", {**LIST, "text": div("<p>x</p>", 'xmlns="http://www.w3.org/1999/xhtmlx"')}, 1)
case("list-xhtml-wrongns2", {**LIST, "text": div("<p>x</p>", "")}, 1)
case("list-xhtml-xxe", {**LIST, "text": {"status": "generated", "div": '<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><div xmlns="http://www.w3.org/1999/xhtml">&xxe;</div>'}}, 2)
# --- structure
case("list-unknown-prop", {**LIST, "other": 1}, 1)
case("list-empty1", {**LIST, "entry": [{}]}, 2)
case("list-empty2", {**LIST, "entry": []}, 1)
case("list-wrong-code", {**LIST, "status": "current1"}, 1)
case("list-minimal", LIST, 0)
case("group-choice-good", {"resourceType": "Group", "type": "person", "actual": True, "characteristic": [{"code": {"text": "c"}, "valueBoolean": True, "exclude": False}]}, 0)
case("group-choice-bad2", {"resourceType": "Group", "type": "person", "actual": True, "characteristic": [{"code": {"text": "c"}, "valueInteger": 1, "exclude": False}]}, 2)
case("primitive-bad-empty", {"resourceType": "Parameters", "parameter": [{"name": "a", "valueString": ""}]}, 2)
case("primitive-bad-uri", {"resourceType": "Parameters", "parameter": [{"name": "a", "valueUri": "not a valid uri"}]}, 1)
case("primitive-bad-code", {"resourceType": "Parameters", "parameter": [{"name": "a", "valueCode": " asdasd"}]}, 1)
case("primitive-bad-id", {"resourceType": "Parameters", "parameter": [{"name": "a", "valueId": "12123/23"}]}, 1)
case("primitive-bad-positive", {"resourceType": "Parameters", "parameter": [{"name": "a", "valuePositiveInt": 0}]}, 1)
case("primitive-bad-date", {"resourceType": "Parameters", "parameter": [{"name": "a", "valueDate": "2013-04-31"}]}, 1)
# --- invariants with resolve()
CT = {"resourceType": "CareTeam"}
case("fhirpath-good", {**CT, "contained": [{"resourceType": "Practitioner", "id": "pr"}], "participant": [{"member": {"reference": "#pr"}, "onBehalfOf": {"display": "org"}}]}, 0)
case("fhirpath-bad", {**CT, "contained": [{"resourceType": "Patient", "id": "pa"}], "participant": [{"member": {"reference": "#pa"}, "onBehalfOf": {"display": "org"}}]}, 1)
# --- extensions
case("ext-unknown", {"resourceType": "Patient", "extension": [{"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-X", "valueString": "x"}]}, 1)
case("ext-unknown-modifier", {"resourceType": "Patient", "modifierExtension": [{"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-X", "valueString": "x"}]}, 1)
case("ext-example-domain", {"resourceType": "Patient", "extension": [{"url": "http://example.org/fhir/StructureDefinition/x", "valueString": "x"}]}, 0)
case("ext-core-wrong-type", {"resourceType": "Patient", "extension": [{"url": CORE + "patient-birthPlace", "valueString": "x"}]}, 1)
case("ext-core-good", {"resourceType": "Patient", "extension": [{"url": CORE + "patient-birthPlace", "valueAddress": {"city": "x"}}]}, 0)
case("ext-wrong-context", {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "extension": [{"url": CORE + "patient-birthPlace", "valueAddress": {"city": "x"}}]}, 1)
case("ext-complex-value-and-children", {"resourceType": "Patient", "extension": [{"url": CORE + "patient-nationality", "valueString": "x", "extension": [{"url": "code", "valueCodeableConcept": {"text": "x"}}]}]}, 2)
case("ext-complex-good", {"resourceType": "Patient", "extension": [{"url": CORE + "patient-nationality", "extension": [{"url": "code", "valueCodeableConcept": {"text": "x"}}]}]}, 0)
# --- profiles: pattern / slices / min/max / maxLength
def sd(name, base, elements):
    return {"resourceType": "StructureDefinition", "id": name, "url": EX + name, "name": name, "status": "active", "kind": "resource", "abstract": False, "type": base, "baseDefinition": CORE + base, "derivation": "constraint", "differential": {"element": elements}}
PID = sd("patient-patternidentifier", "Patient", [{"id": "Patient.identifier", "path": "Patient.identifier", "patternIdentifier": {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}, "system": "urn:oid:2.16.756.5.30.999999.1"}}])
MR = {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}, "system": "urn:oid:2.16.756.5.30.999999.1", "value": "1"}
case("patient-patternidentifier-good", {"resourceType": "Patient", "identifier": [MR]}, 0, [PID], PID["url"])
case("patient-patternidentifier-bad", {"resourceType": "Patient", "identifier": [{"system": "urn:oid:2.16.756.5.30.999999.1.2", "value": "1"}]}, 2, [PID], PID["url"])
case("patient-patternidentifier-badmultiple", {"resourceType": "Patient", "identifier": [MR, {"system": "urn:oid:2.16.756.5.30.999999.1.2", "value": "1"}]}, 2, [PID], PID["url"])
PSL = sd("patient-patternidentifierslice", "Patient", [
    {"id": "Patient.identifier", "path": "Patient.identifier", "slicing": {"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "open"}},
    {"id": "Patient.identifier:MR", "path": "Patient.identifier", "sliceName": "MR", "min": 1, "max": "1", "patternIdentifier": {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}, "system": "urn:oid:2.16.756.5.30.999999.1"}}])
case("patient-patternidentifierslice-good", {"resourceType": "Patient", "identifier": [MR]}, 0, [PSL], PSL["url"])
case("patient-patternidentifierslice-goodmultiple", {"resourceType": "Patient", "identifier": [MR, {"system": "urn:x", "value": "2"}]}, 0, [PSL], PSL["url"])
case("patient-patternidentifierslice-bad", {"resourceType": "Patient", "identifier": [{"system": "urn:x", "value": "2"}]}, 1, [PSL], PSL["url"])
DOC = sd("document-structure", "Composition", [
    {"id": "Composition.section", "path": "Composition.section", "slicing": {"discriminator": [{"type": "pattern", "path": "code"}], "rules": "open"}},
    {"id": "Composition.section:code-A", "path": "Composition.section", "sliceName": "code-A", "min": 1, "max": "1"},
    {"id": "Composition.section:code-A.code", "path": "Composition.section.code", "min": 1, "patternCodeableConcept": {"coding": [{"system": "http://example.org/codes", "code": "A"}]}},
    {"id": "Composition.section:code-B", "path": "Composition.section", "sliceName": "code-B", "min": 1, "max": "1"},
    {"id": "Composition.section:code-B.code", "path": "Composition.section.code", "min": 1, "patternCodeableConcept": {"coding": [{"system": "http://example.org/codes", "code": "B"}]}}])
COMP = {"resourceType": "Composition", "status": "final", "type": {"text": "t"}, "date": "2020-01-01", "author": [{"display": "a"}], "title": "t"}
def SEC(c):
    return {"title": c, "code": {"coding": [{"system": "http://example.org/codes", "code": c}]}, "text": div("<p>x</p>")}
case("document-bad-no-sections", COMP, 2, [DOC], DOC["url"])
case("document-good", {**COMP, "section": [SEC("A"), SEC("B")]}, 0, [DOC], DOC["url"])
TYPESL = sd("obs-type-slice", "Observation", [
    {"id": "Observation.value[x]", "path": "Observation.value[x]", "slicing": {"discriminator": [{"type": "type", "path": "$this"}], "rules": "closed"}},
    {"id": "Observation.value[x]:valueString", "path": "Observation.value[x]", "sliceName": "valueString", "type": [{"code": "string"}]},
    {"id": "Observation.value[x]:valueQuantity", "path": "Observation.value[x]", "sliceName": "valueQuantity", "type": [{"code": "Quantity"}]}])
OBS = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
case("slicing-types-by-string", {**OBS, "valueString": "x"}, 0, [TYPESL], TYPESL["url"])
case("slicing-types-quantity", {**OBS, "valueQuantity": {"value": 1}}, 0, [TYPESL], TYPESL["url"])
MINV = sd("obs-minvalue", "Observation", [
    {"id": "Observation.value[x]", "path": "Observation.value[x]", "type": [{"code": "integer"}], "minValueInteger": 1, "maxValueInteger": 10}])
case("minvalue-good", {**OBS, "valueInteger": 5}, 0, [MINV], MINV["url"])
case("minvalue-bad", {**OBS, "valueInteger": 0}, 1, [MINV], MINV["url"])
case("maxvalue-bad", {**OBS, "valueInteger": 11}, 1, [MINV], MINV["url"])
MAXL = sd("params-maxlength", "Parameters", [
    {"id": "Parameters.parameter.value[x]", "path": "Parameters.parameter.value[x]", "type": [{"code": "string"}], "maxLength": 2}])
case("string-constraints-bad", {"resourceType": "Parameters", "parameter": [{"name": "a", "valueString": "ccc"}]}, 1, [MAXL], MAXL["url"])
case("string-constraints-good", {"resourceType": "Parameters", "parameter": [{"name": "a", "valueString": "cc"}]}, 0, [MAXL], MAXL["url"])
FIXQ = sd("obs-fixed-nested", "Observation", [
    {"id": "Observation.code.coding", "path": "Observation.code.coding", "slicing": {"discriminator": [{"type": "value", "path": "code"}], "rules": "open"}},
    {"id": "Observation.code.coding:loinc", "path": "Observation.code.coding", "sliceName": "loinc", "min": 1, "max": "1"},
    {"id": "Observation.code.coding:loinc.system", "path": "Observation.code.coding.system", "min": 1, "fixedUri": "http://loinc.org"},
    {"id": "Observation.code.coding:loinc.code", "path": "Observation.code.coding.code", "min": 1, "fixedCode": "1234-5"}])
case("fixed-in-slice-good", {**OBS, "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]}}, 0, [FIXQ], FIXQ["url"])
case("fixed-in-slice-bad", {**OBS, "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1234-5"}]}}, 1, [FIXQ], FIXQ["url"])
# --- slicing by type on a component value, by resolve(), by profile, exists
COMPSL = sd("obs-component-type", "Observation", [
    {"id": "Observation.component", "path": "Observation.component", "slicing": {"discriminator": [{"type": "type", "path": "value"}], "rules": "closed"}},
    {"id": "Observation.component:q", "path": "Observation.component", "sliceName": "q", "min": 1, "max": "1"},
    {"id": "Observation.component:q.value[x]", "path": "Observation.component.value[x]", "type": [{"code": "Quantity"}]},
    {"id": "Observation.component:s", "path": "Observation.component", "sliceName": "s", "min": 1, "max": "1"},
    {"id": "Observation.component:s.value[x]", "path": "Observation.component.value[x]", "type": [{"code": "string"}]}])
case("slice-by-type-component-good", {**OBS, "component": [{"code": {"text": "a"}, "valueString": "x"}, {"code": {"text": "b"}, "valueQuantity": {"value": 1}}]}, 0, [COMPSL], COMPSL["url"])
case("slice-by-type-component-bad", {**OBS, "component": [{"code": {"text": "a"}, "valueString": "x"}, {"code": {"text": "b"}, "valueString": "y"}]}, 2, [COMPSL], COMPSL["url"])
RESOLVE = sd("obs-performer-resolve", "Observation", [
    {"id": "Observation.performer", "path": "Observation.performer", "slicing": {"discriminator": [{"type": "type", "path": "resolve()"}], "rules": "open"}},
    {"id": "Observation.performer:pract", "path": "Observation.performer", "sliceName": "pract", "min": 1, "max": "1", "type": [{"code": "Reference", "targetProfile": [CORE + "Practitioner"]}]},
    {"id": "Observation.performer:org", "path": "Observation.performer", "sliceName": "org", "min": 0, "max": "1", "type": [{"code": "Reference", "targetProfile": [CORE + "Organization"]}]}])
case("slice-by-resolve-good", {**OBS, "contained": [{"resourceType": "Practitioner", "id": "p"}], "performer": [{"reference": "#p"}, {"reference": "Organization/1"}]}, 0, [RESOLVE], RESOLVE["url"])
case("slice-by-resolve-missing", {**OBS, "performer": [{"reference": "Organization/1"}]}, 1, [RESOLVE], RESOLVE["url"])
EXISTS = sd("obs-exists-slice", "Observation", [
    {"id": "Observation.identifier", "path": "Observation.identifier", "slicing": {"discriminator": [{"type": "exists", "path": "period"}], "rules": "open"}},
    {"id": "Observation.identifier:dated", "path": "Observation.identifier", "sliceName": "dated", "min": 1, "max": "1"},
    {"id": "Observation.identifier:dated.period", "path": "Observation.identifier.period", "min": 1},
    {"id": "Observation.identifier:dated.system", "path": "Observation.identifier.system", "min": 1}])
case("slice-by-exists-good", {**OBS, "identifier": [{"value": "a"}, {"system": "urn:x", "value": "b", "period": {"start": "2020"}}]}, 0, [EXISTS], EXISTS["url"])
case("slice-by-exists-bad", {**OBS, "identifier": [{"value": "b", "period": {"start": "2020"}}]}, 1, [EXISTS], EXISTS["url"])
MANIFEST = {"list-contained-bad", "list-contained", "list-xhtml-correct1", "list-xhtml-correct2", "list-xhtml-attribute",
 "list-xhtml-element", "list-xhtml-syntax", "list-xhtml-wrongns1", "list-xhtml-wrongns2", "list-xhtml-xxe",
 "list-unknown-prop", "list-empty1", "list-empty2", "list-wrong-code", "list-minimal", "group-choice-good",
 "group-choice-bad2", "primitive-bad-empty", "primitive-bad-uri", "primitive-bad-code", "primitive-bad-id",
 "primitive-bad-positive", "primitive-bad-date", "fhirpath-good", "fhirpath-bad", "ext-unknown", "ext-wrong-context",
 "patient-patternidentifier-good", "patient-patternidentifier-bad", "patient-patternidentifier-badmultiple",
 "patient-patternidentifierslice-good", "patient-patternidentifierslice-goodmultiple", "patient-patternidentifierslice-bad",
 "document-bad-no-sections", "document-good", "slicing-types-by-string"}
for c in cases:
    c["source"] = "manifest" if c["name"] in MANIFEST else "spec"
(D / "cases.json").write_text(json.dumps(cases, indent=1))
M = D.with_name(D.name + "-manifest")
shutil.rmtree(M, ignore_errors=True)
shutil.copytree(D, M)
(M / "cases.json").write_text(json.dumps([c for c in cases if c["source"] == "manifest"], indent=1))
print(len(cases), "cases in", D, ";", sum(c["source"] == "manifest" for c in cases), "with Java's count in", M)
