"""The leak probe: for a person whose form says do-not-share for each category in turn, every path, as a member
partner, a non-member covered entity, an excluded partner and a partner after revocation — nothing withheld
appears (ids, counts, links, includes, chains, ``_has``, history, ``$everything``, batch, conditional, writes).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.enforcement.world import SENSITIVE, World, build, leaks, revoke

CALLERS = ("MEMBER", "OUTSIDER", "EXCLUDED")


def entry_ids(bundle: dict[str, Any], mode: str | None = None) -> list[str]:
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
            if "resource" in e and e.get("search", {}).get("mode", "match") != "outcome"
            and (mode is None or e.get("search", {}).get("mode") == mode)]


class Probe:
    def __init__(self, world: World, key: str) -> None:
        self.w = world
        self.key = key
        self.h = world.headers(key)
        self.withheld = world.withheld(key)
        self.failures: list[str] = []

    async def get(self, url: str, addressed: str | None = None) -> httpx.Response:
        r = await self.w.client.get(url, headers=self.h)
        self.check(url, r, addressed=addressed)
        return r

    async def like_missing(self, what: str, r: httpx.Response, ref: str, url: str) -> None:
        """A request addressed to a withheld resource answers exactly what it answers for a missing one (the id in
        the message is the client's own)."""
        missing = f"{ref.split('/')[0]}/no-such-id-0000"
        m = await self.w.client.request(r.request.method, url.replace(ref, missing), headers=self.h,
                                        content=r.request.content)
        self.expect(f"{what}: {r.status_code} like missing {m.status_code}", r.status_code == m.status_code)
        self.expect(f"{what}: same outcome as a missing resource",
                    r.text.replace(ref.split("/")[1], "X") == m.text.replace("no-such-id-0000", "X"))

    def check(self, what: str, r: httpx.Response, extra: tuple[str, ...] = (), addressed: str | None = None
              ) -> None:
        found = leaks(r, [ref for ref in [*self.withheld, *extra] if ref != addressed])
        if found:
            self.failures.append(f"{self.key} {what}: {found} leaked in {r.status_code} {r.text[:300]}")
        if r.status_code >= 500:
            self.failures.append(f"{self.key} {what}: {r.status_code}")

    def expect(self, what: str, ok: bool) -> None:
        if not ok:
            self.failures.append(f"{self.key} {what}")

    async def walk(self, url: str) -> list[str]:
        """Every match over every page of a search, checking each page is full and leaks nothing."""
        seen: list[str] = []
        next_url: str | None = url
        while next_url:
            r = await self.get(next_url)
            b = r.json()
            seen += entry_ids(b, "match")
            next_url = next((lk["url"] for lk in b.get("link", []) if lk["relation"] == "next"), None)
            if next_url:
                self.expect(f"{url}: a page with a next link is full", len(entry_ids(b, "match")) == 1)
                next_url = next_url.replace("http://test", "")
        return seen

    async def run_reads(self) -> None:
        w, ids = self.w, self.w.ids
        shown_obs = sorted(i for i in w.shown(self.key) if i.startswith("Observation/"))
        for ref in self.withheld:
            for url in (f"/fhir/{ref}", f"/fhir/{ref}/_history/1", f"/fhir/{ref}/_history"):
                r = await self.get(url, addressed=ref)
                self.expect(f"{url} → 404", r.status_code == 404)
                await self.like_missing(url, r, ref, url)
        for ref in w.shown(self.key):
            self.expect(f"read {ref} → 200", (await self.get(f"/fhir/{ref}")).status_code == 200)
        r = await self.get(f"/fhir/Observation?subject={w.patient}&_total=accurate")
        self.expect("search matches", sorted(entry_ids(r.json())) == shown_obs)
        self.expect("search total", r.json().get("total") == len(shown_obs))
        self.expect("Bundle.meta.security has one confidentiality code",
                    len(r.json()["meta"].get("security", [])) == 1)
        r = await self.get(f"/fhir/Observation?subject={w.patient}&_summary=count")
        self.expect("_summary=count", r.json().get("total") == len(shown_obs))
        self.expect("paging", sorted(await self.walk(f"/fhir/Observation?subject={w.patient}&_count=1"))
                    == shown_obs)
        r = await self.w.client.post("/fhir/Observation/_search", data={"subject": w.patient}, headers=self.h)
        self.check("POST _search", r)
        self.expect("POST _search", sorted(entry_ids(r.json())) == shown_obs)
        r = await self.get("/fhir?_type=Observation,Condition,DiagnosticReport&_total=accurate")
        self.expect("system search", r.json().get("total") == len(w.shown(self.key)))
        # includes never bring what only a withheld resource refers to, nor come through one
        r = await self.get(f"/fhir/Observation?subject={w.patient}&_include=Observation:performer")
        self.check("_include", r, (ids["secret_doctor"],))
        r = await self.get(f"/fhir/Practitioner?_id={ids['doctor'].split('/')[1]}&_revinclude=Observation:performer")
        self.expect("_revinclude", sorted(entry_ids(r.json(), "include")) == shown_obs)
        r = await self.get(f"/fhir/DiagnosticReport?subject={w.patient}&_include=DiagnosticReport:result"
                           "&_include:iterate=Observation:performer")
        self.check(":iterate", r, (ids["secret_doctor"],))
        r = await self.get(f"/fhir/Patient?_id={w.patient.split('/')[1]}&_revinclude=Observation:subject"
                           "&_revinclude=Condition:subject")
        patient_visible = self.key != "OUTSIDER"  # consent records: member or named
        self.expect("_revinclude on Patient",
                    sorted(entry_ids(r.json(), "include")) == (shown_obs if patient_visible else []))
        # chains and _has through a withheld resource match nothing
        for url in ("/fhir/DiagnosticReport?result.code=2222-2",
                    "/fhir/DiagnosticReport?result:Observation.code=2222-2",
                    f"/fhir/Patient?_has:Observation:subject:code=2222-2&_id={w.patient.split('/')[1]}",
                    "/fhir/Practitioner?_has:Observation:performer:code=2222-2",
                    "/fhir/Patient?_has:Condition:subject:code=2222-2&_total=accurate"):
            r = await self.get(url)
            self.expect(f"{url} matches nothing", entry_ids(r.json()) == [] and r.json().get("total", 0) == 0)
        r = await self.get("/fhir/DiagnosticReport?result.code=1111-1")
        self.expect("chain through a visible resource",
                    entry_ids(r.json()) == [i for i in w.shown(self.key) if i.startswith("DiagnosticReport")])
        for url in ("/fhir/Observation/_history", "/fhir/_history", "/fhir/Condition/_history?_count=1"):
            await self.walk(url) if "_count" in url else await self.get(url)
        r = await self.get(f"/fhir/{w.patient}/$everything?_count=1000")  # its own AuditEvents are in it too
        if r.status_code == 200:
            got = set(entry_ids(r.json()))
            self.expect("$everything shows what may be seen", set(w.shown(self.key)) <= got)
            await self.walk(f"/fhir/{w.patient}/$everything?_count=1")
        else:
            self.expect("$everything 404 when the Patient is not visible", r.status_code == 404)
        batch = {"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": ref}} for ref in [*self.withheld, *w.shown(self.key)]] + [
            {"request": {"method": "GET", "url": f"Observation?subject={w.patient}&_total=accurate"}}]}
        r = await self.w.client.post("/fhir", json=batch, headers=self.h)
        answer = r.json()
        outcomes = [e["response"].get("outcome", {}) for e in answer["entry"][: len(self.withheld)]]
        self.expect("batch 404s name only their own entry", all(
            ref.split("/")[1] in str(o) for ref, o in zip(self.withheld, outcomes, strict=True)))
        for e in answer["entry"][: len(self.withheld)]:
            e["response"].pop("outcome", None)
        r = httpx.Response(200, json=answer, request=r.request)
        self.check("batch", r)
        statuses = [e["response"]["status"][:3] for e in r.json()["entry"]]
        self.expect("batch statuses", statuses == ["404"] * len(self.withheld) + ["200"] * (len(w.shown(self.key)) + 1))
        url = f"/fhir/{ids['secret_obs']}/$validate?mode=delete"
        r = await self.w.client.post(url, json={"resourceType": "Parameters"}, headers=self.h)
        self.check("$validate", r, addressed=ids["secret_obs"])
        self.expect("$validate mode=delete of a withheld resource → 404", r.status_code == 404)
        await self.like_missing("$validate", r, ids["secret_obs"], url)

    async def run_writes(self) -> None:
        """Writes aimed at withheld resources: the 404 of a missing one, nothing changed."""
        w, c, h = self.w, self.w.client, self.h
        secret = w.ids["secret_obs"]
        body = {"resourceType": "Observation", "id": secret.split("/")[1], "status": "amended",
                "code": {"coding": [{"code": "x"}]}, "subject": {"reference": w.patient}}
        for r, what in (
            (await c.put(f"/fhir/{secret}", json=body, headers=h), "update"),
            (await c.delete(f"/fhir/{secret}", headers=h), "delete"),
            (await c.patch(f"/fhir/{secret}", content=b'[{"op":"replace","path":"/status","value":"amended"}]',
                           headers={**h, "content-type": "application/json-patch+json"}), "patch"),
        ):
            self.check(what, r, addressed=secret)
            self.expect(f"{what} of a withheld resource → 404", r.status_code == 404)
        r = await c.patch(f"/fhir/Observation?code=2222-2&subject={w.patient}",
                          content=b'[{"op":"replace","path":"/status","value":"amended"}]',
                          headers={**h, "content-type": "application/json-patch+json"})
        self.check("conditional patch", r)
        self.expect("conditional patch matches nothing", r.status_code == 404)
        r = await c.delete(f"/fhir/Observation?code=2222-2&subject={w.patient}", headers=h)
        self.check("conditional delete", r)
        cond = {k: v for k, v in body.items() if k != "id"}
        r = await c.put(f"/fhir/Observation?code=2222-2&subject={w.patient}", json=cond, headers=h)
        self.check("conditional update", r)
        self.expect("conditional update creates (never matches a withheld resource)", r.status_code == 201)
        r = await c.post("/fhir/Observation", json=cond, headers={**h, "if-none-exist": "code=2222-2"})
        self.expect("conditional create", r.status_code == 201)
        for ref in ("secret_obs", "secret_obs2"):
            stored = await c.get(f"/fhir/{w.ids[ref]}")
            self.expect(f"{ref} unchanged", stored.status_code == 200 and stored.json()["meta"]["versionId"] == "1")


@pytest.mark.parametrize("category", SENSITIVE)
async def test_nothing_withheld_appears_on_any_path(client: httpx.AsyncClient, category: str) -> None:
    w = await build(client, category)
    failures: list[str] = []
    for key in CALLERS:
        probe = Probe(w, key)
        await probe.run_reads()
        failures += probe.failures
    await revoke(w)
    probe = Probe(w, "REVOKED")
    await probe.run_reads()
    await probe.run_writes()
    failures += probe.failures
    assert not failures, "\n".join(failures)
