"""NDJSON output files written as store chunks: one open file per resource type, split at a size.

Lines are appended to an in-memory buffer per type; a buffer is written to the store as one chunk when it passes
:data:`CHUNK_BYTES`, so memory stays bounded by (types in flight × chunk size) whatever the export's size. A file
is closed (and a new one of the same type opened) before a line would take it past the configured file size
(a single larger resource still makes a file of its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_server.store.export_jobs import ExportJobs

CHUNK_BYTES = 1 << 20


@dataclass(slots=True)
class _Open:
    file_no: int
    buffer: bytearray = field(default_factory=bytearray)
    chunk_no: int = 0
    size: int = 0
    count: int = 0


class FileSet:
    def __init__(self, jobs: ExportJobs, job_id: str, file_bytes: int) -> None:
        self.jobs = jobs
        self.job_id = job_id
        self.file_bytes = max(1, file_bytes)
        self._open: dict[str, _Open] = {}
        self._next_file = 0
        self.output: list[dict[str, Any]] = []  # closed files: {"type", "file", "count"}
        self.errors: list[dict[str, Any]] = []
        self.resources = 0
        self._full: list[tuple[str, _Open]] = []

    def add(self, resource_type: str, line: bytes) -> None:
        """Append one resource (no trailing newline); call :meth:`flush_full` after each batch."""
        f = self._open.get(resource_type)
        if f is not None and f.count and f.size + len(line) + 1 > self.file_bytes:
            self._full.append((resource_type, f))  # written and listed at the next flush_full
            f = None
        if f is None:
            f = self._open[resource_type] = _Open(self._next_file)
            self._next_file += 1
        f.buffer += line
        f.buffer += b"\n"
        f.count += 1
        f.size += len(line) + 1
        self.resources += 1

    async def flush_full(self) -> None:
        """Close the files that reached the file size; write every buffer that passed a chunk."""
        full, self._full = self._full, []
        for rtype, f in full:
            await self._write(f)
            self.output.append({"type": rtype, "file": f.file_no, "count": f.count})
        for f in self._open.values():
            if len(f.buffer) >= CHUNK_BYTES:
                await self._write(f)

    async def _write(self, f: _Open) -> None:
        if f.buffer:
            await self.jobs.add_chunk(self.job_id, f.file_no, f.chunk_no, bytes(f.buffer))
            f.chunk_no += 1
            f.buffer.clear()

    async def _close(self, rtype: str, f: _Open) -> None:
        await self._write(f)
        del self._open[rtype]
        self.output.append({"type": rtype, "file": f.file_no, "count": f.count})

    async def add_file(self, resource_type: str, lines: list[bytes], *, error: bool) -> None:
        """A small whole file at once (the OperationOutcome notes of the ``error`` list)."""
        file_no = self._next_file
        self._next_file += 1
        await self.jobs.add_chunk(self.job_id, file_no, 0, b"".join(line + b"\n" for line in lines))
        (self.errors if error else self.output).append({"type": resource_type, "file": file_no,
                                                        "count": len(lines)})

    async def close(self) -> None:
        await self.flush_full()
        for rtype, f in sorted(self._open.items(), key=lambda item: item[1].file_no):
            await self._close(rtype, f)
        self.output.sort(key=lambda o: o["file"])
