"""``fhir-server validate FILE... [--profile URL]``: the ``$validate`` engine on files, with no server running.

The validator is built exactly as the server builds it — the R4 base definitions plus the StructureDefinitions,
ValueSets and CodeSystems of ``profiles/`` and ``mappings/`` under the configured canonical base — and each
resource goes through :func:`fhir_server.fhir.validation.check.validate`, the function ``$validate`` calls.

A file holds one resource (JSON), a Bundle (each ``entry.resource`` is validated on its own and named by its
entry), or NDJSON (``.ndjson`` files, one resource a line).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from fhir_server.fhir import jsonio
from fhir_server.fhir.outcome import Issue
from fhir_server.fhir.validation import DefinitionSource, Validator, check
from fhir_server.repository.bootstrap import conformance_resources

SHOWN = ("fatal", "error", "warning")


@dataclass(frozen=True, slots=True)
class Item:
    """One resource to validate, or a file that could not be read (``error``)."""

    where: str  # file, file:line or file#entry[i]
    resource: Any = None
    error: str = ""


def validator(canonical_base: str) -> Validator:
    held = [r for r in conformance_resources(canonical_base)
            if r["resourceType"] in ("StructureDefinition", "ValueSet", "CodeSystem")]
    return Validator(DefinitionSource(held))


def items(path: Path) -> Iterator[Item]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield Item(str(path), error=f"cannot read: {exc}")
        return
    if path.suffix.lower() == ".ndjson":
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield _parsed(f"{path}:{number}", line)
        return
    item = _parsed(str(path), text)
    resource = item.resource
    if isinstance(resource, dict) and resource.get("resourceType") == "Bundle" and not item.error:
        for i, entry in enumerate(resource.get("entry") or []):
            inner = entry.get("resource") if isinstance(entry, dict) else None
            if inner is not None:
                yield Item(f"{path}#entry[{i}]", inner)
        return
    yield item


def _parsed(where: str, text: str) -> Item:
    try:
        return Item(where, jsonio.loads(text))
    except ValueError as exc:
        return Item(where, error=f"not JSON: {exc}")


def _label(item: Item) -> str:
    r = item.resource
    if isinstance(r, dict):
        name = f"{r.get('resourceType', '?')}/{r['id']}" if isinstance(r.get("id"), str) else r.get("resourceType")
        return f"{item.where} ({name})"
    return item.where


def validate_files(paths: list[Path], profiles: list[str], canonical_base: str, out: TextIO) -> int:
    """Print each resource's issues; the exit code: 0 when no resource has an error, 1 otherwise."""
    engine = validator(canonical_base)
    checked = failed = 0
    for path in paths:
        for item in items(path):
            checked += 1
            issues: list[Issue]
            if item.error:
                issues = [Issue("error", "structure", item.error)]
            elif not isinstance(item.resource, dict):
                issues = [Issue("error", "structure", "not a FHIR resource (a JSON object with resourceType)")]
            else:
                issues = check.validate(engine, item.resource, profiles)
            shown = [i for i in issues if i.severity in SHOWN]
            errors = sum(i.severity in ("fatal", "error") for i in shown)
            failed += errors > 0
            verdict = f"{errors} error(s), {len(shown) - errors} warning(s)" if shown else "valid"
            print(f"{_label(item)}: {verdict}", file=out)
            for issue in shown:
                where = f" {', '.join(issue.expression)}" if issue.expression else ""
                print(f"  {issue.severity} [{issue.code}]{where}: {issue.diagnostics}", file=out)
    print(f"{checked} resource(s) checked, {failed} with errors", file=out)
    return 1 if failed else 0
