"""A server with ``FHIR_AUTH=smart`` on the store chosen by STORE, real keys (``cryptography``) and real tokens."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_server.app import create_app
from fhir_server.security.clients import Client, new_client
from fhir_server.security.service import Security
from fhir_server.settings import Settings
from tests.conftest import STORE, make_store

BASE = "http://test/fhir"
TOKEN_URL = f"{BASE}/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PURPOSES = frozenset({"TREAT", "COC", "CAREMGT", "HPAYMT", "HOPERAT", "social-services"})


@dataclass
class Key:
    """A client key pair: ``alg`` RS384 or ES384, with the public half as a JWK."""

    alg: str
    private: Any
    kid: str

    @classmethod
    def make(cls, alg: str = "RS384", bits: int = 2048) -> Key:
        private = (rsa.generate_private_key(public_exponent=65537, key_size=bits) if alg.startswith("RS")
                   else ec.generate_private_key(ec.SECP384R1()))
        return cls(alg, private, uuid.uuid4().hex[:12])

    def jwk(self) -> dict[str, Any]:
        algo = jwt.algorithms.RSAAlgorithm if self.alg.startswith("RS") else jwt.algorithms.ECAlgorithm
        jwk = algo.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}

    def sign(self, claims: dict[str, Any], *, alg: str | None = None, kid: str | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm=alg or self.alg, headers={"kid": kid or self.kid})


def claims(client_id: str, aud: str = TOKEN_URL, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    out: dict[str, Any] = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + 240, "iat": now,
                           "jti": uuid.uuid4().hex}
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def form(assertion: str, scope: str = "system/*.cruds", **extra: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion, "scope": scope, **extra}


@dataclass
class Secure:
    """The app under test, its HTTP client and a way to register clients and get tokens."""

    client: httpx.AsyncClient
    security: Security
    app: Any

    async def register(self, key: Key | None = None, *, organization: str | None = None,
                       scopes: tuple[str, ...] = (), purposes: tuple[str, ...] = ()) -> tuple[Client, Key]:
        key = key or Key.make()
        client = new_client(key.jwks(), organization=organization, scope_list=scopes, purposes=purposes,
                            known_purposes=PURPOSES)
        await self.security.add_client(client)
        return client, key

    async def token_response(self, client: Client, key: Key, scope: str = "system/*.cruds",
                             **claim_changes: Any) -> httpx.Response:
        assertion = key.sign(claims(client.client_id, **claim_changes))
        return await self.client.post("/fhir/auth/token", data=form(assertion, scope))

    async def token(self, client: Client, key: Key, scope: str = "system/*.cruds", **claim_changes: Any) -> str:
        r = await self.token_response(client, key, scope, **claim_changes)
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    async def admin_token(self) -> str:
        client, key = await self.register()
        return await self.token(client, key)

    async def partner(self, scopes: tuple[str, ...] = ("system/*.cruds",), purposes: tuple[str, ...] = ("TREAT",),
                      organization: str = "Organization/cp1") -> tuple[Client, str]:
        client, key = await self.register(organization=organization, scopes=scopes, purposes=purposes)
        return client, await self.token(client, key, " ".join(scopes))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def secure_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, load_conformance=False, auth="smart")


@pytest.fixture
async def secure(secure_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
                 ) -> AsyncIterator[Secure]:
    store = make_store(STORE, tmp_path, request)
    app = create_app(secure_settings, store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield Secure(c, app.state.security, app)
