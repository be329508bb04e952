"""Start-up content: the conformance resources in ``profiles/`` and ``mappings/`` and the Care Partner network.

They are ordinary stored resources (``GET /fhir/StructureDefinition?url=…`` finds them), written at start-up
with their file ids; a file that did not change since the last start writes nothing. When the deployment moves
the ASCMI canonical base, every occurrence of the default base in those files moves with it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path
from typing import Any

from fhir_server.fhir import jsonio, registry
from fhir_server.fhir.outcome import PreconditionFailed
from fhir_server.repository import resources as repo
from fhir_server.store.base import Store, Transaction

log = logging.getLogger("fhir_server")

DEFAULT_CANONICAL_BASE = "https://ascmi.example.org/fhir"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTENT_DIRS = (PROJECT_ROOT / "profiles", PROJECT_ROOT / "mappings")
NETWORK_ID = "ascmi-care-partner-network"
STARTUP_RACE_SECONDS = 120.0


def network_organization(canonical_base: str) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": NETWORK_ID,
        "identifier": [{"system": f"{canonical_base}/sid/care-partner-network", "value": "ascmi"}],
        "active": True,
        "name": "ASCMI Care Partner network",
    }


def conformance_resources(canonical_base: str, dirs: tuple[Path, ...] = CONTENT_DIRS) -> list[dict[str, Any]]:
    """Every FHIR resource file under ``dirs`` (JSON Schemas and other JSON are skipped)."""
    found = []
    for folder in dirs:
        for path in sorted(folder.glob("**/*.json")) if folder.is_dir() else []:
            text = path.read_text(encoding="utf-8")
            if canonical_base != DEFAULT_CANONICAL_BASE:
                text = text.replace(DEFAULT_CANONICAL_BASE, canonical_base)
            data = jsonio.loads(text)
            if isinstance(data, dict) and registry.is_resource_type(str(data.get("resourceType"))) \
                    and registry.is_valid_id(data.get("id")):
                found.append(data)
    return found


# Seeds a deployment extends through the API (the ascmi-sls-* label ValueSets, ACCESS.md §C): written when
# absent, never overwritten at start-up — the deployment's version is the one in force.
SEEDED_ID_PREFIXES = ("ascmi-sls-",)


async def _ensure(tx: Transaction, resource: dict[str, Any]) -> bool:
    current = await tx.current(resource["resourceType"], resource["id"])
    if current is not None and not current.deleted and str(resource["id"]).startswith(SEEDED_ID_PREFIXES):
        return False
    if current is not None and not current.deleted and current.body is not None:
        stored = jsonio.loads(current.body)
        stored.pop("meta", None)
        if stored == {k: v for k, v in resource.items() if k != "meta"}:
            return False
    await repo.update(tx, resource["resourceType"], resource["id"], resource, check_refs=False)
    return True


async def load(store: Store, canonical_base: str, conformance: bool = True,
               dirs: tuple[Path, ...] = CONTENT_DIRS) -> int:
    """Write what changed; returns how many resources were written. ``conformance=False`` (setting
    ``FHIR_LOAD_CONFORMANCE``) skips the ASCMI content altogether: a plain FHIR server, and the generic tests."""
    if not conformance:
        return 0
    from fhir_server.conformance.package import PACKAGED_TYPES, implementation_guide

    content = conformance_resources(canonical_base, dirs)
    guide = implementation_guide(canonical_base, [r for r in content if r["resourceType"] in PACKAGED_TYPES])
    resources = [network_organization(canonical_base), *content, guide]
    valid = []
    for resource in resources:
        issues = registry.validate(resource)
        if issues:
            log.error("skipping %s/%s: %s", resource["resourceType"], resource["id"], issues[0].diagnostics)
            continue
        valid.append(resource)

    async def ensure_all(tx: Transaction) -> int:
        return sum([await _ensure(tx, resource) for resource in valid])

    # Several workers start at once and write the same content. On SQLite the file lock queues them; on MongoDB
    # the loser's transaction aborts (a 412 conflict) while the winner is still writing, so it waits and tries
    # again until it finds everything written.
    deadline = time.monotonic() + STARTUP_RACE_SECONDS
    while True:
        try:
            written = await store.run_transaction(ensure_all)
            break
        except PreconditionFailed:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(random.uniform(0.2, 0.6))
    log.info("start-up content: %d resources, %d written", len(resources), written)
    return written
