"""The FHIR NPM package ``ascmi.fhir.consent``: read back with an independent reader (tarfile and the
fhir.resources R4B models), its ``.index.json`` checked against its files, served by the server and moved with
the canonical base."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_server.conformance import package
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store

ROOT = Path(__file__).resolve().parents[2]
BASE = "https://ascmi.example.org/fhir"


def _read(data: bytes) -> dict[str, Any]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: json.loads(tar.extractfile(m).read()) for m in tar.getmembers()  # type: ignore[union-attr]
                if m.isfile()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``make package``'s command, run as a process, as a newcomer would."""
    out = tmp_path_factory.mktemp("pkg") / "ascmi.tgz"
    subprocess.run([sys.executable, "-m", "fhir_server.conformance.package", "-o", str(out)], check=True,
                   cwd=ROOT, capture_output=True)
    return _read(out.read_bytes())


def test_package_json_names_the_package_fhir_version_and_core_dependency(built: dict[str, Any]) -> None:
    manifest = built["package/package.json"]
    assert manifest["name"] == "ascmi.fhir.consent"
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    assert manifest["canonical"] == BASE and manifest["version"]


def test_every_file_is_a_valid_r4_resource_for_an_independent_reader(built: dict[str, Any]) -> None:
    resources = {name: r for name, r in built.items() if not name.endswith(("package.json", ".index.json"))}
    assert len(resources) > 40
    for name, resource in resources.items():
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)  # raises when invalid
        assert Path(name).name == f"{resource['resourceType']}-{resource['id']}.json"


def test_index_lists_exactly_the_files_of_its_folder(built: dict[str, Any]) -> None:
    for folder in ("package", "package/example"):
        index = built[f"{folder}/.index.json"]
        assert index["index-version"] == 1
        files = {n.rsplit("/", 1)[1]: r for n, r in built.items()
                 if n.rsplit("/", 1)[0] == folder and not n.endswith(("package.json", ".index.json"))}
        assert sorted(e["filename"] for e in index["files"]) == sorted(files)
        for entry in index["files"]:
            resource = files[entry["filename"]]
            assert (entry["resourceType"], entry["id"]) == (resource["resourceType"], resource["id"])
            assert entry.get("url") == resource.get("url")
            assert entry.get("version") == resource.get("version")


def test_package_holds_all_conformance_content_with_snapshots_and_examples(built: dict[str, Any]) -> None:
    names = set(built)
    for folder, prefix in (("profiles", ""), ("mappings", "")):
        for path in (ROOT / folder).glob(f"{prefix}*.json"):
            data = json.loads(path.read_text())
            if data.get("resourceType") in package.PACKAGED_TYPES:
                assert f"package/{data['resourceType']}-{data['id']}.json" in names, path.name
    kinds = {r["resourceType"] for r in built.values() if "resourceType" in r}
    assert {"StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap", "SearchParameter",
            "OperationDefinition", "ImplementationGuide"} <= kinds
    for name, r in built.items():
        if r.get("resourceType") == "StructureDefinition":
            assert r["snapshot"]["element"], name
    examples = [n for n in names if n.startswith("package/example/") and not n.endswith(".index.json")]
    assert len(examples) >= 5
    guide = built["package/ImplementationGuide-ascmi.fhir.consent.json"]
    assert guide["packageId"] == "ascmi.fhir.consent" and guide["fhirVersion"] == ["4.0.1"]
    listed = {e["reference"]["reference"] for e in guide["definition"]["resource"]}
    assert "StructureDefinition/ASCMIConsent" in listed and "Bundle/ab133-all-share" in listed


def test_the_build_is_reproducible() -> None:
    assert package.build(BASE) == package.build(BASE)


async def _client_on(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    from fhir_server.app import create_app

    store = make_store(STORE, tmp_path, request)
    return create_app(settings, store)


@pytest.mark.parametrize("canonical", [BASE, "https://consent.example.net/r4"])
async def test_server_serves_the_guide_and_its_package_under_the_canonical_base(
        canonical: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    settings = Settings(data_dir=tmp_path, auth="off", canonical_base=canonical)
    app = await _client_on(settings, tmp_path, request)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            guide = await client.get("/fhir/ImplementationGuide/ascmi.fhir.consent")
            assert guide.status_code == 200, guide.text
            assert guide.json()["url"] == f"{canonical}/ImplementationGuide/ascmi.fhir.consent"
            found = (await client.get(f"/fhir/ImplementationGuide?url={canonical}/ImplementationGuide/"
                                      "ascmi.fhir.consent")).json()
            assert found["entry"][0]["resource"]["id"] == "ascmi.fhir.consent"
            response = await client.get("/fhir/ImplementationGuide/ascmi.fhir.consent/package.tgz")
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/gzip"
            assert "ascmi.fhir.consent-" in response.headers["content-disposition"]
            files = _read(response.content)
            assert files["package/package.json"]["canonical"] == canonical
            consent = files["package/StructureDefinition-ASCMIConsent.json"]
            assert consent["url"] == f"{canonical}/StructureDefinition/ASCMIConsent"
            served = {k: v for k, v in guide.json().items() if k != "meta"}
            assert files["package/ImplementationGuide-ascmi.fhir.consent.json"] == served
            other = await client.get("/fhir/ImplementationGuide/other/package.tgz")
            assert other.status_code == 404 and other.json()["resourceType"] == "OperationOutcome"
