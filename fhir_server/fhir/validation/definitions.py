"""Where the validator finds StructureDefinitions, ValueSets and CodeSystems, by canonical url.

Two layers: the base FHIR R4 definitions (``fhir_server/data/validation-definitions.json.gz``, derived by
``scripts/derive_validation_data.py``, loaded once per process) and the conformance resources the server
holds, which the caller passes in as plain dicts. Held resources win over base ones with the same url, so a
server can ship a corrected ValueSet. Nothing here does I/O except reading the package data file on first use.

>>> source = DefinitionSource([{"resourceType": "ValueSet", "url": "urn:vs", "compose": {"include": [
...     {"system": "urn:cs", "concept": [{"code": "a"}]}]}}])
>>> source.expansion("urn:vs|1.0").contains("urn:cs", "a")
True
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from .terminology import Expansion, expand, strip_version

DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "validation-definitions.json.gz"
CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"


class BaseDefinitions:
    """The R4 core StructureDefinitions (compact snapshots) and pre-expanded bound ValueSets."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.structure_definitions: dict[str, dict[str, Any]] = {
            sd["url"]: sd for sd in data.get("structureDefinitions", ())
        }
        self.expansions: dict[str, Expansion] = {
            url: Expansion.from_json(exp) for url, exp in data.get("valueSets", {}).items()
        }
        self.code_systems: dict[str, frozenset[str]] = {
            url: frozenset(codes) for url, codes in data.get("codeSystems", {}).items()
        }
        self.resource_types = frozenset(
            sd["type"]
            for sd in self.structure_definitions.values()
            if sd.get("kind") == "resource" and sd.get("derivation") == "specialization"
        )


@lru_cache(maxsize=1)
def base_definitions() -> BaseDefinitions:
    return BaseDefinitions(json.loads(gzip.decompress(DATA_FILE.read_bytes())))


class DefinitionSource:
    """Canonical url → conformance resource: the server's held resources first, then the R4 base.

    ``held`` are FHIR JSON dicts (StructureDefinition, ValueSet, CodeSystem; others are ignored). Urls may
    carry ``|version``; versions are ignored (the newest held resource for a url wins, by list order).
    Treat an instance as immutable: build a new one (and a new Validator) when the held set changes.
    """

    def __init__(
        self, held: Iterable[Mapping[str, Any]] = (), *, base: BaseDefinitions | None = None
    ) -> None:
        self.base = base if base is not None else base_definitions()
        self._held: dict[str, dict[str, Mapping[str, Any]]] = {
            "StructureDefinition": {},
            "ValueSet": {},
            "CodeSystem": {},
        }
        for resource in held:
            kind = resource.get("resourceType")
            url = resource.get("url")
            if kind in self._held and isinstance(url, str):
                self._held[kind][strip_version(url)] = resource
        self._expansions: dict[str, Expansion | None] = {}
        self._complete: dict[str, frozenset[str] | None] = {}

    def structure_definition(self, url: str) -> Mapping[str, Any] | None:
        url = strip_version(url)
        return self._held["StructureDefinition"].get(url) or self.base.structure_definitions.get(url)

    def held_structure_definitions(self) -> list[Mapping[str, Any]]:
        return list(self._held["StructureDefinition"].values())

    def value_set(self, url: str) -> Mapping[str, Any] | None:
        return self._held["ValueSet"].get(strip_version(url))

    def code_system(self, url: str) -> Mapping[str, Any] | None:
        return self._held["CodeSystem"].get(strip_version(url))

    def complete_codes(self, system: str) -> frozenset[str] | None:
        """Every code of ``system`` when we hold it completely (``content = complete``), else None.

        A code outside such a code system does not exist, whatever the binding says (validation.html).
        """
        if system in self._complete:
            return self._complete[system]
        held = self._held["CodeSystem"].get(system)
        codes: frozenset[str] | None
        if held is not None:
            codes = frozenset(_all_codes(held.get("concept"))) if held.get("content") == "complete" else None
        else:
            codes = self.base.code_systems.get(system)
        self._complete[system] = codes
        return codes

    def is_resource_type(self, name: str) -> bool:
        return name in self.base.resource_types

    def expansion(self, url: str) -> Expansion | None:
        """The codes of a ValueSet (held ones expanded on first use, then cached); None when unknown."""
        url = strip_version(url)
        if url in self._expansions:
            return self._expansions[url]
        vs = self.value_set(url)
        result = (
            expand(vs, self.value_set, self.code_system) if vs is not None else self.base.expansions.get(url)
        )
        self._expansions[url] = result
        return result


def _all_codes(concepts: Any) -> list[str]:
    out: list[str] = []
    for concept in concepts if isinstance(concepts, list) else ():
        if isinstance(concept, dict):
            if isinstance(concept.get("code"), str):
                out.append(concept["code"])
            out += _all_codes(concept.get("concept"))
    return out
