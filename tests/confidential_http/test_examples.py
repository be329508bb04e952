"""The examples in examples/confidential-communications, replayed in the order a plan would see them."""

from __future__ import annotations

import httpx

from tests.confidential_http.support import (
    EXAMPLES,
    WITHDRAWALS,
    cin,
    consent_ref,
    contact,
    created,
    example,
    form,
    get,
    out,
    post_request,
    request_names,
    search,
)


def test_every_example_is_listed_in_the_examples_readme() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    for path in EXAMPLES.glob("*.json"):
        assert f"`{path.name}`" in readme


async def test_replaying_every_example_leaves_what_section_6_says(client: httpx.AsyncClient) -> None:
    assert set(request_names()) == {"electronic", "phone", "mail", "all-communications", "replacement"}
    assert (await client.post("/ascmi/forms", json=form("ab133-all-share"))).status_code == 201
    refs = {}
    tasks = {}
    for name in ["electronic", "phone", "mail", "all-communications", "replacement"]:
        response = await post_request(client, example(name))
        refs[name] = consent_ref(response)
        tasks[name] = created(response, "Task")
    withdrawn = await client.post(WITHDRAWALS, json=example("withdrawal"))
    assert withdrawn.status_code == 200, withdrawn.text

    status = {name: (await get(client, ref))["status"] for name, ref in refs.items()}
    assert status == {"electronic": "inactive", "phone": "inactive", "mail": "active", "all-communications": "active",
                      "replacement": "active"}
    assert [len(tasks[n]) for n in ["electronic", "phone", "mail", "all-communications", "replacement"]] == \
        [2, 1, 1, 1, 2]  # Maria's form names Golden Poppy Health Plan: it must act on her requests too
    open_tasks = await search(client, "Task?code=fulfill&status=requested&_count=50")
    assert sorted(t["focus"]["reference"] for t in open_tasks) == sorted(
        [refs["mail"], refs["all-communications"], refs["replacement"], refs["replacement"]])
    overdue = await search(client, "Task?code=fulfill&status=requested&period=lt2026-12-10")
    assert [t["focus"]["reference"] for t in overdue] == [refs["all-communications"]]  # due 2026-12-09
    maria = await contact(client, cin("91234567A"), ("about", "valueCoding", {"code": "MH"}), ("time", "valueDateTime",
                                                                                               "2026-12-07"))
    assert out(maria, "basis") == [{"valueCode": "designated"}]
    assert out(maria, "consent")[0]["valueReference"]["reference"].startswith(f"http://test/fhir/{refs['replacement']}")
