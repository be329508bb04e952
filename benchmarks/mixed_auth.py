"""SMART tokens for the mixed load (``python -m benchmarks.mixed --auth``): an administrator and a Care Partner.

Everything goes through the server's own commands, as an operator would do it: ``fhir-server token --admin``
for the administrator, ``fhir-server clients add`` with a fresh ES384 key for a Care Partner client acting for
the load's collector Organization (``system/*.rs``, purpose TREAT), and ``fhir-server token --client-id`` for its
five-minute tokens (renewed by the load while it runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from benchmarks.mixed import COLLECTOR, NPI


def _cli(env: dict[str, str], *args: str) -> str:
    command = Path(sys.executable).with_name("fhir-server")
    done = subprocess.run([str(command), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})
    if done.returncode != 0:
        raise RuntimeError(f"fhir-server {args[0]} failed: {done.stderr[-1000:]}")
    return done.stdout.strip()


def admin_token(env: dict[str, str], data_dir: Path, lifetime: int) -> str:
    return _cli(env, "token", "--admin", "--data-dir", str(data_dir), "--lifetime", str(lifetime)).splitlines()[-1]


class CarePartner:
    """A registered Care Partner client for the collector Organization; ``token()`` asks the server for one."""

    def __init__(self, env: dict[str, str], data_dir: Path, base: str, admin: str, work: Path) -> None:
        self.env, self.base = env, base
        found = httpx.get(f"{base}/Organization?identifier={NPI}|{COLLECTOR['identifiers'][0]['value']}",  # type: ignore[index]
                          headers={"Authorization": f"Bearer {admin}"}, timeout=30).json()
        organization = f"Organization/{found['entry'][0]['resource']['id']}"
        key = ec.generate_private_key(ec.SECP384R1())
        self.private = work / "care-partner.pem"
        self.private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        public = work / "care-partner.pub.pem"
        public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
        added = _cli(env, "clients", "add", "--organization", organization, "--jwks", str(public),
                     "--scope", "system/*.rs", "--purpose", "TREAT", "--data-dir", str(data_dir))
        self.client_id = json.loads(added)["client_id"]

    def token(self) -> str:
        return _cli(self.env, "token", "--client-id", self.client_id, "--key", str(self.private), "--url", self.base,
                    "--purpose", "TREAT", "--scope", "system/*.rs").splitlines()[-1]
