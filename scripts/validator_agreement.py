"""On-demand harness (not CI): how often does ``$validate`` agree with the HL7 Java validator on a set of cases?

A case directory holds the JSON files and a ``cases.json``::

    [{"name": "qr-vr", "file": "qr-vr.json", "supporting": ["q-vr.json"], "errorCount": 1}, ...]

(``"profile": url`` validates against that profile too, as the manifest's ``profile`` step does.)

``errorCount`` is what the Java validator reported (errors + fatals); ``valid`` may be given instead when only
the verdict is known. Each case runs against a fresh in-process server (SQLite in a temporary directory, auth
off): the supporting resources are stored first (PUT when they carry an id, else POST; a refusal is reported),
then the file goes through ``POST [type]/$validate``. The report lists every disagreement and the two rates the
issue measures: same verdict (valid or not) and same number of errors.

    .venv/bin/python scripts/validator_agreement.py /path/to/cases [--verbose]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from fhir_server.app import create_app
from fhir_server.settings import Settings


@dataclass
class Outcome:
    name: str
    expected_errors: int | None
    expected_valid: bool
    errors: int
    refused: list[str]
    messages: list[str]

    @property
    def same_verdict(self) -> bool:
        return (self.errors == 0) == self.expected_valid

    @property
    def same_count(self) -> bool:
        return self.expected_errors is not None and self.errors == self.expected_errors


async def _store(client: httpx.AsyncClient, resource: dict[str, Any]) -> str | None:
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if rid:
        response = await client.put(f"/fhir/{rtype}/{rid}", json=resource)
    else:
        response = await client.post(f"/fhir/{rtype}", json=resource)
    if response.status_code >= 300:
        issues = response.json().get("issue", [{}]) if response.content else [{}]
        return f"{rtype}/{rid or '?'} refused ({response.status_code}): {issues[0].get('diagnostics', '')[:120]}"
    return None


async def run_case(directory: Path, case: dict[str, Any]) -> Outcome:
    resource = json.loads((directory / case["file"]).read_text())
    with tempfile.TemporaryDirectory() as data:
        app = create_app(Settings(data_dir=Path(data), auth="off"))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://harness") as client:
                refused = []
                for name in case.get("supporting", []):
                    problem = await _store(client, json.loads((directory / name).read_text()))
                    if problem:
                        refused.append(problem)
                params = {"profile": case["profile"]} if case.get("profile") else None  # the case's "profile" url
                response = await client.post(f"/fhir/{resource['resourceType']}/$validate", json=resource,
                                             params=params)
                issues = response.json().get("issue", []) if response.status_code == 200 else [
                    {"severity": "fatal", "diagnostics": f"HTTP {response.status_code}: {response.text[:200]}"}]
    bad = [i for i in issues if i.get("severity") in ("error", "fatal")]
    expected = case.get("errorCount")
    valid = case.get("valid", expected == 0 if expected is not None else True)
    return Outcome(case["name"], expected, bool(valid), len(bad), refused,
                   [f"{i.get('expression', [''])[0]}: {i.get('diagnostics', '')}" for i in bad])


async def main(directory: Path, verbose: bool) -> int:
    cases = json.loads((directory / "cases.json").read_text())
    outcomes = [await run_case(directory, case) for case in cases]
    counted = [o for o in outcomes if o.expected_errors is not None]
    for o in outcomes:
        mark = "ok " if o.same_verdict and (o.expected_errors is None or o.same_count) else "XX "
        print(f"{mark}{o.name:55} java={o.expected_errors if o.expected_errors is not None else '-':>3} "
              f"valid={str(o.expected_valid):5} ours={o.errors:>3}")
        if verbose or mark == "XX ":
            for line in o.refused + o.messages:
                print(f"      {line[:160]}")
    verdict = sum(o.same_verdict for o in outcomes) / len(outcomes)
    count = sum(o.same_count for o in counted) / len(counted) if counted else 0.0
    print(f"\n{len(outcomes)} cases: same verdict {verdict:.0%}; same error count {count:.0%} "
          f"(of {len(counted)} with a Java count)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.directory, args.verbose)))
