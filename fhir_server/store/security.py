"""What ``security/`` keeps in the store, so every worker and replica shares it (ACCESS.md §A).

- the **client registry** (one JSON document per client, see :mod:`fhir_server.security.clients`);
- **assertion ids** (``jti``) already used, each kept until its assertion could no longer be accepted
  (``exp`` + skew), so a replay is refused whichever worker it reaches;
- **failures** per client id in the last minute (the token endpoint's 429 after 10 of them);
- **server secrets** (the key that signs access tokens), created once by whichever worker comes first;
- **users** of the Care Partner web page (one JSON document per person, see :mod:`fhir_server.security.users`);
  their failed sign-ins are failures under the key ``user|<username>`` (the lockout counts them on every worker);
- **authorization codes** (single use: redeeming one marks it atomically, so two workers cannot both redeem it,
  and a second attempt is recognised — RFC 6749 §4.1.2 — until the code expires);
- **revoked access tokens** (``revoked|<jti>`` among the one-time ids, kept until the token's ``exp``).

Each store implements it in its own module (``store/sqlite/security.py``, ``store/mongo/security.py``);
:func:`security_store` picks the one for a store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from fhir_server.store.base import Store


class SecurityStore(Protocol):
    async def add_client(self, doc: dict[str, Any]) -> None:
        """Insert a new client document (``client_id`` is new: it is random)."""

    async def get_client(self, client_id: str) -> dict[str, Any] | None: ...

    async def list_clients(self) -> list[dict[str, Any]]: ...

    async def set_client_active(self, client_id: str, active: bool) -> bool:
        """False when no such client."""

    async def use_jti(self, key: str, expires_at: float) -> bool:
        """Record a one-time id until ``expires_at`` (epoch seconds); False if it was already recorded."""

    async def add_failure(self, client_id: str, at: float) -> None: ...

    async def failures_since(self, client_id: str, since: float) -> list[float]:
        """Times (epoch seconds) of this client id's failures at or after ``since``, oldest first."""

    async def secret(self, name: str, make: Callable[[], bytes]) -> bytes:
        """The secret called ``name``, created with ``make()`` by the first worker that asks."""

    async def jti_recorded(self, key: str, now: float) -> bool:
        """Is this one-time id recorded and not yet expired?"""

    async def add_user(self, doc: dict[str, Any]) -> bool:
        """Insert a new user document; False when the username is taken."""

    async def get_user(self, username: str) -> dict[str, Any] | None: ...

    async def list_users(self) -> list[dict[str, Any]]: ...

    async def replace_user(self, doc: dict[str, Any]) -> bool:
        """Replace the document of an existing user; False when no such user."""

    async def put_code(self, key: str, doc: dict[str, Any], expires_at: float) -> None:
        """Keep an authorization code (by its hash) until ``expires_at``."""

    async def redeem_code(self, key: str, now: float) -> dict[str, Any] | None:
        """Mark the code redeemed and return its document as it was before (``"redeemed": true`` in it when this
        is a second attempt); None when unknown or expired."""


def security_store(store: Store) -> SecurityStore:
    """The security store of ``store`` (one per store object: it remembers that its tables exist)."""
    found = getattr(store, "_security_store", None)
    if found is not None:
        return found  # type: ignore[no-any-return]
    made: SecurityStore
    if store.name == "mongo":
        from fhir_server.store.mongo.security import MongoSecurity

        made = MongoSecurity(store)  # type: ignore[arg-type]
    else:
        from fhir_server.store.sqlite.security import SQLiteSecurity

        made = SQLiteSecurity(store)  # type: ignore[arg-type]
    store._security_store = made  # type: ignore[attr-defined]
    return made
