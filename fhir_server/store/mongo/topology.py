"""What kind of MongoDB deployment the store connected to, from the ``hello`` reply.

Multi-document transactions need a replica set or a sharded cluster; a standalone ``mongod`` rejects them
("Transaction numbers are only allowed on a replica set member or mongos"), so the store refuses to open on one
rather than fail on the first write. Pure, so each topology is a one-line test.

>>> check_topology({"setName": "rs0", "isWritablePrimary": True}, allow_standalone=False)
'replica set rs0'
>>> check_topology({"msg": "isdbgrid"}, allow_standalone=False)
'sharded cluster (mongos)'
"""

from __future__ import annotations

from typing import Any


class StandaloneNotSupported(RuntimeError):
    """The server is a standalone mongod: no transactions, so no atomic writes."""


def check_topology(hello: dict[str, Any], allow_standalone: bool) -> str:
    """A description of the deployment; raises :class:`StandaloneNotSupported` for a standalone server."""
    if hello.get("msg") == "isdbgrid":
        return "sharded cluster (mongos)"
    if hello.get("setName"):
        return f"replica set {hello['setName']}"
    if allow_standalone:
        return "standalone (allowed by MONGODB_ALLOW_STANDALONE)"
    raise StandaloneNotSupported(
        "MongoDB at this URI is a standalone server, but the FHIR store needs multi-document transactions, "
        "which only a replica set or a sharded cluster provides. Start mongod with --replSet rs0 and run "
        "rs.initiate() once (a single-node replica set is fine), then connect with ?replicaSet=rs0. "
        "(MONGODB_ALLOW_STANDALONE=1 skips this check for test servers that support transactions anyway.)")
