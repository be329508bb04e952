"""What a worker's memory can grow into is bounded (issue #18: RSS flat after warm-up under the mixed soak).

The soak itself (``python -m benchmarks.mixed``; a short one in ``test_load.py``) measures the growth; these
check the bounds it relies on: SQLite's page cache per connection follows ``FHIR_SQLITE_CACHE_MIB``, and no
function-level cache in the server is unbounded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib
import inspect
import pkgutil
import sqlite3
from pathlib import Path

import pytest

import fhir_server
from fhir_server.app import make_store
from fhir_server.settings import Settings
from fhir_server.store.sqlite import SQLiteStore


async def test_sqlite_page_cache_per_connection_follows_the_setting(tmp_path: Path) -> None:
    for env, kib in (({}, 8 * 1024), ({"FHIR_SQLITE_CACHE_MIB": "3"}, 3 * 1024)):
        settings = Settings.from_env({"FHIR_DATA_DIR": str(tmp_path / str(kib)), **env})
        store = make_store(settings)
        assert isinstance(store, SQLiteStore)
        await store.open()
        try:
            async with store.transaction() as tx:
                writer = tx.connection.execute("PRAGMA cache_size").fetchone()[0]
            reader = store.reader.execute("PRAGMA cache_size").fetchone()[0]
        finally:
            await store.close()
        assert (writer, reader) == (-kib, -kib)  # negative: KiB, so the bound does not depend on the page size


def _sqlite_memory_used() -> ctypes._CFuncPtr:
    """SQLite's own count of the bytes it holds (``sqlite3_memory_used``), from the library ``sqlite3`` uses."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        pytest.skip("no shared libsqlite3 to read sqlite3_memory_used from")
    used = ctypes.CDLL(name).sqlite3_memory_used
    used.restype = ctypes.c_int64
    return used  # type: ignore[no-any-return]


async def test_prepared_statements_a_connection_keeps_are_bounded(tmp_path: Path) -> None:
    """Searches produce hundreds of distinct SQL texts (filters, IN lists of every length); the statements a
    connection keeps prepared grew a worker by ~30 MB over the soak. Budget: 80 of the largest statement."""
    used = _sqlite_memory_used()
    largest = 400

    def shape(conn: sqlite3.Connection, k: int) -> None:
        conn.execute(f"SELECT rid, body FROM resource WHERE rtype = 'Patient' AND id IN ({','.join('?' * k)})"
                     " ORDER BY id", [str(i) for i in range(k)]).fetchall()

    probe = sqlite3.connect(tmp_path / "probe.sqlite3")
    probe.execute("CREATE TABLE resource (rid INTEGER PRIMARY KEY, rtype TEXT, id TEXT, body BLOB)")
    before = used()
    shape(probe, largest)
    one = used() - before  # the largest statement, kept prepared by the probe's cache
    probe.close()
    if one <= 0:
        pytest.skip("sqlite3 is not linked against the shared libsqlite3 (its memory is not visible here)")

    store = SQLiteStore(tmp_path / "fhir.sqlite3")
    await store.open()
    try:
        shape(store.reader, 1)
        before = used()
        for k in range(1, largest + 1):
            shape(store.reader, k)
        kept = used() - before
    finally:
        await store.close()
    assert kept <= 80 * one, f"{kept / 1e6:.1f} MB kept for {largest} distinct statements ({one / 1e3:.0f} kB each)"


# Unbounded caches of functions with arguments whose keys come from a closed vocabulary (the FHIR definitions
# the server ships, checked before the call), so they are full after the first requests of each kind. Anything
# keyed by request data (values, ids, instants, a client's list) must have a maxsize instead.
CLOSED_VOCABULARY = {
    "fhir_server.api.search.capability_search_params",  # resource type (routes refuse unknown types first)
    "fhir_server.fhir.search.extract._plans",  # resource type of a stored resource
    "fhir_server.fhir.search.fhirpath.compile_path",  # a search parameter's expression
    "fhir_server.fhir.search.fhirpath.top_fields",  # a search parameter's expression
    "fhir_server.fhir.search.definitions.params_for",  # resource type (parse checks it against resource_types)
    "fhir_server.fhir.search.definitions.reference_params",  # resource type
    "fhir_server.fhir.search.definitions.search_includes",  # resource type
    "fhir_server.fhir.validation.resource_rules.rules",  # resource type
    "fhir_server.fhir.registry._model",  # resource type
    "fhir_server.fhir.registry._explaining_validator",  # resource type
    "fhir_server.consent.compartment._evaluator",  # (resource type, compartment parameter)
}


def test_every_function_cache_keyed_by_request_data_has_a_size_bound() -> None:
    """``functools.cache`` / ``lru_cache(maxsize=None)`` grow with every distinct argument for the life of a
    worker; keyed by what requests carry (values, ids, instants, a ``_type`` list) that is a leak."""
    unbounded = []
    for info in pkgutil.walk_packages(fhir_server.__path__, "fhir_server."):
        if info.name.endswith("__main__") or ".store.mongo" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, functools._lru_cache_wrapper) and value.__module__ == info.name:
                maxsize = value.cache_parameters()["maxsize"]
                qualified = f"{info.name}.{name}"
                if not inspect.signature(value.__wrapped__).parameters:  # type: ignore[attr-defined]
                    continue  # one entry
                if (maxsize is None and qualified not in CLOSED_VOCABULARY) or (maxsize or 0) > 16_384:
                    unbounded.append(f"{qualified} (maxsize={maxsize})")
    assert unbounded == []


def test_worker_processes_start_with_bounded_malloc_arenas(tmp_path: Path) -> None:
    """``serve --workers N`` gives its workers glibc settings that keep RSS from holding busy moments' peaks."""
    from fhir_server.serving import MALLOC_ENV
    from tests.ops.server import running

    env = {"FHIR_LOG_LEVEL": "warning", **{name: "" for name in MALLOC_ENV}}
    with running(tmp_path / "data", tmp_path / "log", workers=2, env=env) as server:
        pids = server.worker_pids()
        environs = [Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") for pid in pids]
    assert len(environs) == 2
    for environ in environs:
        for name, value in MALLOC_ENV.items():
            assert f"{name}={value}".encode() in environ


def _rss_anon_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


def test_malloc_trim_is_on_by_default_every_ten_seconds() -> None:
    assert Settings.from_env({}).malloc_trim_seconds == 10
    assert Settings.from_env({"FHIR_MALLOC_TRIM_SECONDS": "0"}).malloc_trim_seconds == 0


async def test_a_worker_gives_freed_heap_back_to_the_system(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Freed C-heap memory held between live blocks (SQLite's page cache churn, request buffers) leaves the
    process within one trim period: the soak's RSS follows what a worker holds, not its high-water mark."""
    import asyncio
    import random

    from fhir_server.app import create_app
    from fhir_server.trim import malloc_trim
    from tests.conftest import STORE
    from tests.conftest import make_store as test_store

    if malloc_trim() is None:
        pytest.skip("not glibc: no malloc_trim")
    settings = Settings(data_dir=tmp_path, load_conformance=False, auth="off", malloc_trim_seconds=0.2)
    app = create_app(settings, test_store(STORE, tmp_path, request))
    async with app.router.lifespan_context(app):
        rng = random.Random(18)
        blocks = [bytes(rng.randrange(1024, 8192)) for _ in range(12_000)]  # ~55 MB of malloc'd (not pymalloc)
        kept = blocks[::4]  # a live block between freed ones: glibc cannot shrink its heap from the top
        del blocks
        freed = _rss_anon_kb()
        await asyncio.sleep(1.0)  # a few trim periods
        after = _rss_anon_kb()
        assert kept
    assert freed - after > 20_000, f"RSS {freed} → {after} kB: freed heap was not given back"


async def test_the_memory_probe_is_off_unless_asked_and_writes_only_to_its_file(
        tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The diagnostic that attributed the soak's growth (docs/deploy.md, *Memory per worker*): nothing by
    default; with ``FHIR_MEMORY_PROBE=DIR`` one JSON line per period with the parts of RSS and the caches."""
    import asyncio
    import json

    import httpx

    from fhir_server import memprobe
    from fhir_server.app import create_app
    from tests.conftest import STORE
    from tests.conftest import make_store as test_store

    assert memprobe.from_env(dict, {}) is None
    folder = tmp_path / "probe"
    monkeypatch.setenv("FHIR_MEMORY_PROBE", str(folder))
    monkeypatch.setenv("FHIR_MEMORY_PROBE_SECONDS", "0.1")
    settings = Settings(data_dir=tmp_path, load_conformance=False, auth="off")
    app = create_app(settings, test_store(STORE, tmp_path, request))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            assert (await http.get("/fhir/Patient")).status_code == 200
            for _ in range(300):  # a sample of a large test process takes a while on a busy machine
                await asyncio.sleep(0.1)
                files = list(folder.glob("memory-*.jsonl"))
                if files and len(files[0].read_text().splitlines()) >= 2:
                    break
    rows = [json.loads(line) for line in next(folder.glob("memory-*.jsonl")).read_text().splitlines()]
    assert len(rows) >= 2
    row = rows[-1]
    assert row["VmRSS"] > 0 and row["RssAnon"] > 0
    assert {"gate.decisions", "gate.facts", "compiled.bytes", "tokens", "write_behind"} <= set(row["sizes"])
    if row["malloc"]:  # glibc
        assert row["malloc"]["in_use"] > 0


def test_search_value_caches_are_full_within_the_warm_up() -> None:
    """``fold`` and ``date_bounds`` see every written string and instant; at 8,192 entries the mixed soak filled
    them only after 5-8 minutes, growing each worker after warm-up. 2,048 each (≤ ~0.8 MB)."""
    from fhir_server.fhir.search import normalize

    for fn in (normalize.fold, normalize.date_bounds):
        assert fn.cache_parameters()["maxsize"] == 2048
        fn.cache_clear()
    for i in range(5000):
        normalize.fold(f"Family{i}")
        normalize.date_bounds(f"2026-01-01T00:00:{i % 60:02d}.{i:04d}Z")
    assert normalize.fold.cache_info().currsize == normalize.date_bounds.cache_info().currsize == 2048
