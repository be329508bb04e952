"""StructureDefinition-driven validation (FHIR R4 validation.html, profiling.html), pure: no I/O.

>>> from fhir_server.fhir.validation import DefinitionSource, Validator
>>> validator = Validator(DefinitionSource(held_profiles_valuesets_and_codesystems))  # doctest: +SKIP
>>> validator.validate(resource_dict, ["http://example.org/StructureDefinition/my-consent"])  # doctest: +SKIP
"""

from __future__ import annotations

from .definitions import DefinitionSource
from .validator import Validator

__all__ = ["DefinitionSource", "Validator"]
