"""StructureDefinition url → compiled :class:`ElementTree`, built once and cached per Validator.

This is where a held StructureDefinition that lacks a snapshot gets one (:mod:`.snapshot`), and where a broken
one (unknown base, a path the base does not have, a ``baseDefinition`` loop, a snapshot that is not a tree)
turns into issues instead of exceptions. Those issues are reported whenever the profile is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..outcome import Issue
from .definitions import CORE_PREFIX, DefinitionSource
from .snapshot import SnapshotError, generate_snapshot
from .terminology import strip_version
from .tree import ElementTree, TreeError, build_tree


@dataclass(frozen=True, slots=True)
class Compiled:
    tree: ElementTree | None
    issues: tuple[Issue, ...]


def type_url(code: str) -> str:
    """``Reference`` → ``http://hl7.org/fhir/StructureDefinition/Reference``; urls stay as they are."""
    return code if ":" in code else CORE_PREFIX + code


class ProfileCache:
    def __init__(self, source: DefinitionSource) -> None:
        self.source = source
        self._compiled: dict[str, Compiled] = {}

    def get(self, url: str) -> Compiled:
        url = strip_version(url)
        found = self._compiled.get(url)
        if found is None:
            found = self._compile(url)
            self._compiled[url] = found
        return found

    def tree(self, url: str) -> ElementTree | None:
        return self.get(url).tree

    def type_tree(self, code: str) -> ElementTree | None:
        return self.get(type_url(code)).tree

    def snapshot_elements(self, url: str) -> list[Mapping[str, Any]] | None:
        """The snapshot elements of a StructureDefinition, generating them when absent (used for bases)."""
        sd = self.source.structure_definition(url)
        if sd is None:
            return None
        snapshot = (sd.get("snapshot") or {}).get("element")
        if snapshot:
            return list(snapshot)
        try:
            return list(generate_snapshot(sd, self.source, ()))
        except SnapshotError:
            return None

    def _compile(self, url: str) -> Compiled:
        sd = self.source.structure_definition(url)
        if sd is None:
            return Compiled(
                None,
                (Issue("error", "not-found", f"The StructureDefinition {url} is not known to this server"),),
            )
        name = sd.get("name") or sd.get("id") or url
        elements = (sd.get("snapshot") or {}).get("element")
        try:
            if not elements:
                elements = generate_snapshot(sd, self.source, ())
            return Compiled(build_tree(sd, elements), ())
        except (SnapshotError, TreeError) as exc:
            return Compiled(
                None,
                (
                    Issue(
                        "error", "processing", f"The StructureDefinition {name} ({url}) cannot be used: {exc}"
                    ),
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            # never the exception's text: it names our internals, not what the author should fix
            return Compiled(
                None,
                (
                    Issue(
                        "error",
                        "processing",
                        f"The StructureDefinition {name} ({url}) is malformed: an element lacks a required "
                        "property or has one of the wrong JSON type; $validate the StructureDefinition for details",
                    ),
                ),
            )
