"""The profiles as a FHIR NPM package, ``ascmi.fhir.consent`` (https://confluence.hl7.org/display/FHIR/NPM+Package+Specification),
and the ImplementationGuide resource that describes it.

One builder serves ``make package`` (``python -m fhir_server.conformance.package``), ``fhir-server package``
and the server (``GET /fhir/ImplementationGuide/ascmi.fhir.consent`` and ``…/package.tgz``). It reads the same
files the server loads at start-up (``profiles/``, ``mappings/``) under the configured canonical base, so the
package, the stored conformance resources and ``$validate`` agree. The archive is reproducible: sorted entries,
no timestamps, the same bytes for the same content.

Layout::

    package/package.json          name, version, canonical, fhirVersions ["4.0.1"], dependencies
    package/.index.json           one entry per resource file (filename, resourceType, id, url, version, kind, type)
    package/ImplementationGuide-ascmi.fhir.consent.json
    package/StructureDefinition-*.json (with snapshots), ValueSet-, CodeSystem-, ConceptMap-, SearchParameter-,
    OperationDefinition-*.json
    package/example/.index.json, package/example/Bundle-*.json   the ASCMI example forms as FHIR transactions
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tarfile
from pathlib import Path
from typing import Any

from fhir_server.fhir import jsonio

PACKAGE_ID = "ascmi.fhir.consent"
FHIR_VERSION = "4.0.1"
DEPENDENCIES = {"hl7.fhir.r4.core": "4.0.1"}
PACKAGED_TYPES = ("StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap", "SearchParameter",
                  "OperationDefinition")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "forms"
DEFAULT_VERSION = "0.1.0"
INDEX_KEYS = ("url", "version", "kind", "type", "supplements")


def _version(resources: list[dict[str, Any]]) -> str:
    """The package version: the version the profiles carry (they are released together)."""
    versions = {str(r["version"]) for r in resources
                if r["resourceType"] == "StructureDefinition" and isinstance(r.get("version"), str)}
    return max(versions) if versions else DEFAULT_VERSION


def conformance(canonical_base: str) -> list[dict[str, Any]]:
    """The packaged conformance resources, as the server loads them (canonical base applied)."""
    from fhir_server.repository.bootstrap import conformance_resources

    return [r for r in conformance_resources(canonical_base) if r["resourceType"] in PACKAGED_TYPES]


def examples(canonical_base: str, folder: Path = EXAMPLES) -> list[dict[str, Any]]:
    """The example forms' transaction Bundles, each with its file name as id."""
    from fhir_server.ascmi.canonical import DEFAULT_BASE, rebase

    found = []
    for path in sorted(folder.glob("*.bundle.json")) if folder.is_dir() else []:
        bundle = rebase(jsonio.loads(path.read_text(encoding="utf-8")), canonical_base, default=DEFAULT_BASE)
        found.append({"resourceType": "Bundle", "id": path.name.removesuffix(".bundle.json"),
                      **{k: v for k, v in bundle.items() if k not in ("resourceType", "id")}})
    return found


def implementation_guide(canonical_base: str, resources: list[dict[str, Any]] | None = None,
                         example_ids: list[str] | None = None) -> dict[str, Any]:
    """The ImplementationGuide resource of the package (stored at start-up; ``package/ImplementationGuide-…``)."""
    resources = conformance(canonical_base) if resources is None else resources
    example_ids = [e["id"] for e in examples(canonical_base)] if example_ids is None else example_ids
    listed = [{"reference": {"reference": f"{r['resourceType']}/{r['id']}"},
               "name": str(r.get("title") or r.get("name") or r["id"]),
               "exampleBoolean": False} for r in resources]
    listed += [{"reference": {"reference": f"Bundle/{i}"}, "name": f"Example: {i}", "exampleBoolean": True}
               for i in example_ids]
    return {
        "resourceType": "ImplementationGuide",
        "id": PACKAGE_ID,
        "url": f"{canonical_base}/ImplementationGuide/{PACKAGE_ID}",
        "version": _version(resources),
        "name": "ASCMIConsent",
        "title": "ASCMI consent (California Authorization to Share Confidential Member Information)",
        "status": "draft",
        "publisher": "ASCMI FHIR server project",
        "description": "Profiles, terminology, mappings, search parameters and operations for recording and "
                       "enforcing California ASCMI consent forms in FHIR R4. Not legal advice.",
        "packageId": PACKAGE_ID,
        "license": "Apache-2.0",
        "fhirVersion": [FHIR_VERSION],
        "dependsOn": [{"uri": "http://hl7.org/fhir/ImplementationGuide/hl7.fhir.r4.core",
                       "packageId": "hl7.fhir.r4.core", "version": "4.0.1"}],
        "definition": {"resource": listed},
    }


def _index_entry(filename: str, resource: dict[str, Any]) -> dict[str, Any]:
    entry = {"filename": filename, "resourceType": resource["resourceType"], "id": resource["id"]}
    entry.update({k: resource[k] for k in INDEX_KEYS if isinstance(resource.get(k), str)})
    return entry


def _index(files: dict[str, dict[str, Any]]) -> bytes:
    entries = [_index_entry(name, r) for name, r in sorted(files.items())]
    return jsonio.dumps({"index-version": 1, "files": entries}, pretty=True)


def package_files(canonical_base: str) -> dict[str, bytes]:
    """Archive path → bytes, for every file of the package."""
    resources = conformance(canonical_base)
    bundles = examples(canonical_base)
    guide = implementation_guide(canonical_base, resources, [b["id"] for b in bundles])
    main = {f"{r['resourceType']}-{r['id']}.json": r for r in [guide, *resources]}
    extra = {f"{b['resourceType']}-{b['id']}.json": b for b in bundles}
    manifest = {
        "name": PACKAGE_ID,
        "version": guide["version"],
        "canonical": canonical_base,
        "url": guide["url"],
        "title": guide["title"],
        "description": guide["description"],
        "fhirVersions": [FHIR_VERSION],
        "dependencies": DEPENDENCIES,
        "type": "IG",
        "license": guide["license"],
        "author": guide["publisher"],
        "jurisdiction": "urn:iso:std:iso:3166#US",
    }
    out = {"package/package.json": jsonio.dumps(manifest, pretty=True), "package/.index.json": _index(main),
           "package/example/.index.json": _index(extra)}
    out.update({f"package/{name}": jsonio.dumps(r, pretty=True) for name, r in main.items()})
    out.update({f"package/example/{name}": jsonio.dumps(r, pretty=True) for name, r in extra.items()})
    return out


def build(canonical_base: str) -> bytes:
    """The package as a reproducible ``.tgz``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(package_files(canonical_base).items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def file_name(canonical_base: str) -> str:
    return f"{PACKAGE_ID}-{_version(conformance(canonical_base))}.tgz"


def main(argv: list[str] | None = None) -> int:
    """``python -m fhir_server.conformance.package [-o FILE]``: write the package (``make package``)."""
    from fhir_server.settings import Settings

    parser = argparse.ArgumentParser(prog="fhir-server package", description="build the FHIR NPM package")
    parser.add_argument("-o", "--output", default=None, help="file to write (default build/package/<name>.tgz)")
    args = parser.parse_args(argv)
    base = Settings.from_env().canonical_base
    out = Path(args.output or Path("build") / "package" / file_name(base))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(build(base))
    print(f"wrote {out} ({out.stat().st_size} bytes, canonical base {base})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
