"""Who is calling: the one value every path that decides access receives (ACCESS.md §A, §B).

``security/`` builds a :class:`Caller` from a verified token (or :data:`ADMINISTRATOR` when ``FHIR_AUTH=off``);
everything downstream (scope checks, the consent gate, audit, subscriptions, export) reads only this value and
never looks at tokens or headers again. It knows nothing of consent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

INTERACTION_LETTERS = "cruds"  # SMART v2: create, read, update, delete, search


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified caller.

    ``organization`` is the Care Partner Organization the client acts for (``"Organization/<id>"``), ``None``
    for an administrator. ``scopes`` maps a resource type (or ``"*"``) to the SMART v2 letters granted
    (``{"Patient": "rs", "*": "r"}``). ``purpose`` is an ascmi-purpose code (``"TREAT"``), ``None`` for an
    administrator that stated none. ``user`` is the username of a person signed in through the Care Partner
    web page (authorization code + PKCE, :mod:`fhir_server.security.signin`): ``client_id`` is then the page's
    public client and ``organization`` the person's Organization; audit names both.
    """

    client_id: str
    organization: str | None = None
    scopes: dict[str, str] = field(default_factory=dict)
    purpose: str | None = None
    user: str | None = None

    @property
    def is_administrator(self) -> bool:
        return self.organization is None

    def allows(self, resource_type: str, letter: str) -> bool:
        """Does a granted scope cover ``letter`` (one of ``cruds``) on ``resource_type``?

        >>> Caller("c", scopes={"Patient": "rs"}).allows("Patient", "r")
        True
        >>> Caller("c", scopes={"Patient": "rs"}).allows("Observation", "r")
        False
        """
        return letter in self.scopes.get(resource_type, "") or letter in self.scopes.get("*", "")


ADMINISTRATOR = Caller(client_id="local-administrator", scopes={"*": INTERACTION_LETTERS})
"""The caller of every request when ``FHIR_AUTH=off``, and of the server's own work (start-up content)."""
