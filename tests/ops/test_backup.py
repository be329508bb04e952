"""``fhir-server backup`` under write load, ``fhir-server restore``, and the restored store is one consistent
snapshot: whole transactions, history matching the current versions, index matching the resources.

SQLite only: a MongoDB deployment backs up with ``mongodump --oplog`` / a managed snapshot (docs/deploy.md).
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from benchmarks.mixed import TXN, transaction_bundle
from tests.conftest import STORE
from tests.ops.server import running

pytestmark = pytest.mark.skipif(STORE == "mongo", reason="MongoDB backups use mongodump/snapshots (docs/deploy.md)")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("fhir-server")
    return subprocess.run([str(command), *args], capture_output=True, text=True, timeout=300)


def count(http: httpx.Client, url: str) -> int:
    r = http.get(url + ("&" if "?" in url else "?") + "_summary=count")
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def test_backup_taken_under_write_load_restores_to_a_consistent_snapshot(tmp_path: Path) -> None:
    data, copy, restored = tmp_path / "data", tmp_path / "backup.sqlite3", tmp_path / "restored"
    acked: list[str] = []
    stop = threading.Event()

    def write(base: str, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                marker = uuid.uuid4().hex
                r = http.post(base, json=transaction_bundle(marker, rng))
                assert r.status_code == 200, r.text
                acked.append(marker)
                patient = r.json()["entry"][0]["response"]["location"].split("/_history")[0]
                for _ in range(2):  # versions: history must match the current version after restore
                    current = http.get(f"{base}/{patient}").json()
                    current["gender"] = rng.choice(["male", "female"])
                    assert http.put(f"{base}/{patient}", json=current).status_code == 200

    with running(data, tmp_path / "log", workers=2) as server:
        writers = [threading.Thread(target=write, args=(server.base, i)) for i in range(4)]
        for t in writers:
            t.start()
        try:
            while len(acked) < 40:
                time.sleep(0.1)
            before = set(acked)
            result = cli("backup", "--data-dir", str(data), str(copy))
            assert result.returncode == 0, result.stderr
            while len(acked) < len(before) + 40:  # writes went on during and after the copy
                time.sleep(0.1)
        finally:
            stop.set()
            for t in writers:
                t.join()
    assert cli("restore", "--data-dir", str(restored), str(copy)).returncode == 0
    assert cli("restore", "--data-dir", str(restored), str(copy)).returncode == 1  # refuses to overwrite
    db = sqlite3.connect(restored / "fhir.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    # history and current versions agree: every resource has versions 1..vid and nothing beyond
    mismatched = db.execute(
        "SELECT count(*) FROM resource r WHERE r.vid != (SELECT count(*) FROM history h WHERE h.rtype = r.rtype"
        " AND h.id = r.id) OR r.vid != (SELECT max(vid) FROM history h WHERE h.rtype = r.rtype AND h.id = r.id)"
    ).fetchone()[0]
    assert mismatched == 0
    patients = db.execute("SELECT count(*) FROM resource WHERE rtype = 'Patient' AND deleted = 0").fetchone()[0]
    observations = db.execute("SELECT count(*) FROM resource WHERE rtype = 'Observation'").fetchone()[0]
    db.close()
    assert patients >= len(before) and observations == 3 * patients
    with running(restored, tmp_path / "log2") as server, httpx.Client(base_url=server.base, timeout=60) as http:
        # the index agrees with the resources, and every transaction is whole
        assert count(http, f"/Patient?identifier={TXN}|") == patients
        assert count(http, f"/Observation?identifier={TXN}|") == observations
        markers = set()
        url: str | None = f"/Patient?identifier={TXN}|&_count=500&_elements=identifier"
        while url:
            page = http.get(url).json()
            markers |= {i["value"] for e in page.get("entry", []) for i in e["resource"]["identifier"]
                        if i["system"] == TXN}
            url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
        assert before <= markers  # every write acknowledged before the backup began is in it
        assert markers < set(acked)  # and the writes after it are not (a snapshot, not a later state)
        for marker in random.Random(3).sample(sorted(markers), 30):
            assert count(http, f"/Observation?identifier={TXN}|{marker}") == 3
            assert count(http, f"/Observation?subject:Patient.identifier={TXN}|{marker}") == 3


def test_restore_refuses_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    result = cli("restore", "--data-dir", str(tmp_path / "d"), str(junk))
    assert result.returncode == 1 and "restore failed" in result.stderr
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    result = cli("restore", "--data-dir", str(tmp_path / "d"), str(other))
    assert result.returncode == 1 and "not a FHIR store" in result.stderr
    assert not (tmp_path / "d" / "fhir.sqlite3").exists()
