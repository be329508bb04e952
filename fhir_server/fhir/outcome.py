"""The one error family and the OperationOutcome it becomes.

Every client-caused failure is raised as a :class:`FHIRError` (or a subclass that fixes the HTTP status) and
turned into an OperationOutcome at the HTTP edge. Code below the API never builds HTTP responses itself.

>>> NotFound("Patient/1 is not known").outcome()["issue"][0]["code"]
'not-found'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue; ``expression`` is FHIRPath (or JSONPath for ASCMI form intake)."""

    severity: str  # fatal | error | warning | information
    code: str  # IssueType: invalid, structure, required, value, not-found, conflict, ...
    diagnostics: str
    expression: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


def operation_outcome(issues: list[Issue] | tuple[Issue, ...]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


def information(diagnostics: str) -> dict[str, Any]:
    """An all-is-well OperationOutcome (``Prefer: return=OperationOutcome``, delete responses)."""
    return operation_outcome([Issue("information", "informational", diagnostics)])


@dataclass
class FHIRError(Exception):
    """A client-visible failure: HTTP status plus the issues that explain it."""

    status: int
    code: str
    diagnostics: str
    expression: tuple[str, ...] | list[str] = ()
    extra_issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.diagnostics)

    @property
    def issues(self) -> list[Issue]:
        first = Issue("error", self.code, self.diagnostics, tuple(self.expression))
        return [first, *self.extra_issues]

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)

    @classmethod
    def from_issues(cls, status: int, issues: list[Issue]) -> FHIRError:
        """Several issues at once (validation); the first one names the error."""
        head, *rest = issues
        return cls(status, head.code, head.diagnostics, head.expression, rest)


def _fixed(status: int, default_code: str) -> type[FHIRError]:
    def __init__(self: FHIRError, diagnostics: str, expression: tuple[str, ...] | list[str] = (),
                 code: str = default_code) -> None:
        FHIRError.__init__(self, status, code, diagnostics, tuple(expression))

    return __init__  # type: ignore[return-value]


class BadRequest(FHIRError):
    __init__ = _fixed(400, "invalid")  # type: ignore[assignment]


class NotFound(FHIRError):
    __init__ = _fixed(404, "not-found")  # type: ignore[assignment]


class Gone(FHIRError):
    __init__ = _fixed(410, "deleted")  # type: ignore[assignment]


class Conflict(FHIRError):
    __init__ = _fixed(409, "conflict")  # type: ignore[assignment]


class PreconditionFailed(FHIRError):
    __init__ = _fixed(412, "conflict")  # type: ignore[assignment]


class Unprocessable(FHIRError):
    __init__ = _fixed(422, "processing")  # type: ignore[assignment]


class NotAcceptable(FHIRError):
    __init__ = _fixed(406, "not-supported")  # type: ignore[assignment]


class UnsupportedMediaType(FHIRError):
    __init__ = _fixed(415, "not-supported")  # type: ignore[assignment]


class PayloadTooLarge(FHIRError):
    __init__ = _fixed(413, "too-costly")  # type: ignore[assignment]


class MethodNotAllowed(FHIRError):
    __init__ = _fixed(405, "not-supported")  # type: ignore[assignment]


class InvalidSearchParameter(BadRequest):
    """A search parameter the server cannot honour (unknown, wrong modifier, bad value)."""
