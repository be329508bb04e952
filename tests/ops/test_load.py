"""The mixed workload against two workers, short (the 10-minute soak is ``python -m benchmarks.mixed``), and the
same load through crashes: kill -9 of one worker, then of the whole server.

After any stop or crash: no acknowledged write is missing, no transaction is partial, every acknowledged intake
has its Consent and Provenance. Decision AuditEvents are written behind the answer (write-behind): a crash may
lose those acknowledged in the last ``AUDIT_WINDOW`` seconds before it, and no others (docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import bisect
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from benchmarks.mixed import Load, decision_audits, report, verify
from tests.conftest import STORE
from tests.ops.server import running, store_env

SECONDS = 25 if STORE == "sqlite" else 15
CLIENTS = 64 if STORE == "sqlite" else 16  # SecantusDB (the test MongoDB) is slow; it tests correctness only
AUDIT_WINDOW = 5.0  # seconds: the write-behind loss window (docs/deploy.md: max lag measured ≤ 2.5 s, overloaded)


@pytest.fixture
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    uri = request.getfixturevalue("mongo_uri") if STORE == "mongo" else None
    return {**store_env(STORE, uri, f"load_{os.getpid()}_{abs(hash(request.node.nodeid))}"),
            "FHIR_LOG_LEVEL": "warning"}


def test_mixed_load_on_two_workers_has_no_errors_and_keeps_memory_flat(tmp_path: Path, env: dict[str, str]
                                                                       ) -> None:
    with running(tmp_path / "data", tmp_path / "log", workers=2, env=env) as server:
        load = Load(server.base, CLIENTS)
        result = asyncio.run(load.run(SECONDS, server.worker_pids))
        print("\n" + report(result, SECONDS / 3))
        assert result.errors == []
        assert set(result.latencies) == {"read", "search", "transaction", "intake", "decide"}
        growth = result.rss_growth(SECONDS / 3)
        assert len(growth) == 2 and all(g < 0.10 for g in growth.values()), growth
        assert verify(server.base, result.acked) == []
        assert server.stop() == 0  # a clean stop writes every queued AuditEvent
    with running(tmp_path / "data", tmp_path / "log2", env=env) as server:
        acknowledged, found = decision_audits(server.base, result.acked)
        assert found == acknowledged > 0


def test_acknowledged_writes_survive_kill_9_of_a_worker_and_of_the_whole_server(tmp_path: Path,
                                                                                env: dict[str, str]) -> None:
    with running(tmp_path / "data", tmp_path / "log", workers=2, env=env) as server:
        load = Load(server.base, CLIENTS)
        outcome: dict[str, object] = {}
        timeout = 10 if STORE == "sqlite" else 60  # SecantusDB takes seconds per intake on a busy machine
        thread = threading.Thread(target=lambda: outcome.update(result=asyncio.run(load.run(300, timeout=timeout))))
        thread.start()
        try:
            deadline = time.monotonic() + 180
            acked = load.result.acked
            while len(acked.transactions) < 30 or len(acked.intakes) < 2 or not acked.decides:
                assert thread.is_alive() and time.monotonic() < deadline, load.result.errors[:5]
                time.sleep(0.2)
            time.sleep(3)
            worker_killed = time.monotonic()
            os.kill(server.worker_pids()[0], signal.SIGKILL)
            time.sleep(6)  # the supervisor starts a new worker; the load goes on against both
            server_killed = time.monotonic()
            server.kill()
        finally:
            load.stopping = True
            thread.join()
    acked = load.result.acked
    assert len(acked.transactions) > 30 and acked.intakes and acked.decides
    with running(tmp_path / "data", tmp_path / "log2", env=env) as server:
        assert verify(server.base, acked) == []
        acknowledged, found = decision_audits(server.base, acked)
    times = acked.decide_times
    in_window = sum(bisect.bisect_right(times, t) - bisect.bisect_left(times, t - AUDIT_WINDOW)
                    for t in (worker_killed, server_killed))
    print(f"\ndecisions acknowledged {acknowledged}, their AuditEvents found {found}, "
          f"acknowledged within {AUDIT_WINDOW} s before a kill {in_window}")
    assert found >= acknowledged - in_window


def test_mixed_load_with_smart_tokens_as_administrator_and_care_partner(tmp_path: Path, env: dict[str, str]
                                                                        ) -> None:
    from benchmarks.mixed import AUTH_KINDS
    from benchmarks.mixed_auth import CarePartner, admin_token

    env = {**env, "FHIR_AUTH": "smart"}
    data = tmp_path / "data"
    with running(data, tmp_path / "log", workers=2, env=env) as server:
        load = Load(server.base, CLIENTS // 2)
        load.headers = {"Authorization": f"Bearer {admin_token(env, data, 3600)}"}
        asyncio.run(load.prepare())
        load.partner = CarePartner(env, data, server.base, load.headers["Authorization"][7:], tmp_path).token
        load.set_mix(AUTH_KINDS)
        result = asyncio.run(load.run(SECONDS / 2, server.worker_pids, seed=False))
        print("\n" + report(result, SECONDS / 6))
        assert result.errors == []
        assert result.latencies.get("partner")  # the Care Partner was served (what it may see), without errors
        assert verify(server.base, result.acked, load.headers) == []
