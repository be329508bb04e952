"""The command line of the client registry (ACCESS.md §A):

``fhir-server clients add [--admin | --organization Organization/<id>] --jwks FILE [--scope S]... [--purpose CODE]...``
prints the client as JSON with its ``client_id``; ``fhir-server clients list``; ``fhir-server clients disable ID``;
``fhir-server token --admin`` prints an administrator access token for this server (for a newcomer's first calls).
All act on the store ``serve`` would use (``--data-dir`` / ``MONGODB_URI``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from fhir_server.security.clients import Client, ClientError, new_client
from fhir_server.security.service import Security
from fhir_server.settings import Settings
from fhir_server.store.base import Store

LOCAL_ADMINISTRATOR = "local-administrator"


def _security(store: Store, settings: Settings) -> Security:
    from fhir_server.ascmi.terminology import load_terminology

    return Security(store, token_lifetime=settings.token_lifetime,
                    purposes=frozenset(load_terminology(settings.canonical_base).purposes))


async def clients_command(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    sec = _security(store, settings)
    if args.clients_command == "list":
        for doc in await sec.registry.list_clients():
            print(json.dumps(doc))
        return 0
    if args.clients_command == "disable":
        if not await sec.set_active(args.client_id, False):
            print(f"no client {args.client_id!r}", file=sys.stderr)
            return 1
        print(json.dumps(await sec.registry.get_client(args.client_id), indent=2))
        return 0
    try:
        jwks = _read_keys(args.jwks)
    except (OSError, ValueError, TypeError) as exc:
        print(f"{args.jwks}: cannot read a JWKS, a JWK or a PEM public key: {exc}", file=sys.stderr)
        return 1
    if isinstance(jwks, dict) and "keys" not in jwks and "kty" in jwks:
        jwks = {"keys": [jwks]}  # a single JWK is accepted too
    try:
        client = new_client(jwks, organization=None if args.admin else args.organization, scope_list=args.scope,
                            purposes=args.purpose, known_purposes=sec.purposes)
    except ClientError as exc:
        print(f"cannot register the client: {exc}", file=sys.stderr)
        return 1
    await sec.add_client(client)
    print(json.dumps(client.to_json(), indent=2))
    return 0


def _read_keys(path: str) -> Any:
    """A JWKS, one JWK, or a PEM public key (as ``openssl pkey -pubout`` writes it; ``kid`` = its thumbprint)."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data.lstrip().startswith(b"-----BEGIN"):
        from fhir_server.security.keys import public_jwk

        return {"keys": [public_jwk(data)]}
    return json.loads(data)


def request_token(args: argparse.Namespace) -> int:
    """``fhir-server token --client-id ID --key PRIVATE.pem --url BASE``: ask a running server for a token."""
    import httpx

    from fhir_server.security.keys import ASSERTION_TYPE, client_assertion

    if not args.key:
        print("--client-id needs --key PRIVATE_KEY.pem", file=sys.stderr)
        return 2
    token_url = args.url.rstrip("/") + "/auth/token"
    try:
        with open(args.key, "rb") as fh:
            assertion = client_assertion(fh.read(), args.client_id, token_url, args.purpose)
    except (OSError, ValueError, TypeError) as exc:
        print(f"{args.key}: cannot sign with this key: {exc}", file=sys.stderr)
        return 1
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion, "scope": " ".join(args.scope) or "system/*.rs"}
    try:
        r = httpx.post(token_url, data=form, timeout=30)
    except httpx.HTTPError as exc:
        print(f"cannot reach {token_url}: {exc}", file=sys.stderr)
        return 1
    if r.status_code != 200:
        print(f"{r.status_code} {r.text}", file=sys.stderr)
        return 1
    print(r.json()["access_token"])
    return 0


async def token_command(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    """Register (once) the key-less client ``local-administrator`` and print a token for it."""
    sec = _security(store, settings)
    if await sec.registry.get_client(LOCAL_ADMINISTRATOR) is None:
        client = new_client({"keys": []}, organization=None, keys_required=False)
        await sec.add_client(Client.from_json({**client.to_json(), "client_id": LOCAL_ADMINISTRATOR}))
    found = await sec.client(LOCAL_ADMINISTRATOR)
    if found is None or not found.active:
        print(f"the client {LOCAL_ADMINISTRATOR} is disabled", file=sys.stderr)
        return 1
    print(await sec.mint(LOCAL_ADMINISTRATOR, dict(found.allowed), None, args.lifetime))
    return 0


def add_parsers(sub: Any, clients: Callable[[argparse.Namespace], int],
                token: Callable[[argparse.Namespace], int]) -> None:
    cl = sub.add_parser("clients", help="register, list and disable SMART Backend Services clients")
    cl_sub = cl.add_subparsers(dest="clients_command", required=True)
    add = cl_sub.add_parser("add", help="register a client (prints it as JSON with its client_id)")
    who = add.add_mutually_exclusive_group(required=True)
    who.add_argument("--admin", action="store_true", help="an administrator client (no Organization)")
    who.add_argument("--organization", help="the Care Partner Organization it acts for: Organization/<id>")
    add.add_argument("--jwks", required=True, help="file with the client's public keys (JWKS or one JWK)")
    add.add_argument("--scope", action="append", default=[], help="allowed scope, repeatable (system/Patient.rs)")
    add.add_argument("--purpose", action="append", default=[], help="allowed purpose of use, repeatable (TREAT)")
    lst = cl_sub.add_parser("list", help="every registered client, one JSON per line")
    dis = cl_sub.add_parser("disable", help="disable a client: its tokens stop working at once")
    dis.add_argument("client_id")
    for p in (add, lst, dis):
        p.add_argument("--data-dir", default=None)
        p.set_defaults(func=clients)

    tok = sub.add_parser("token", help="print an access token: --admin (local administrator, needs the store) "
                                       "or --client-id/--key (asks a running server, as a client would)")
    how = tok.add_mutually_exclusive_group(required=True)
    how.add_argument("--admin", action="store_true", help="a local administrator token, signed with the store's key")
    how.add_argument("--client-id", help="a registered client's id (with --key)")
    tok.add_argument("--lifetime", type=int, default=3600, help="--admin: seconds the token lives (default 3600)")
    tok.add_argument("--data-dir", default=None)
    tok.add_argument("--key", help="the client's private key (PEM)")
    tok.add_argument("--url", default="http://127.0.0.1:8080/fhir", help="the server's FHIR base")
    tok.add_argument("--scope", action="append", default=[], help="scope to ask for, repeatable (default "
                                                                   "system/*.rs)")
    tok.add_argument("--purpose", default=None, help="purpose of use (HL7 B2B), e.g. TREAT")
    tok.set_defaults(func=lambda args: token(args) if args.admin else request_token(args))
