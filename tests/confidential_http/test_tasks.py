"""One fulfil Task per Care Partner that must act, due in California calendar days; the overdue list
(ASCMI.md §6)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest

from fhir_server.ascmi.confidential.calendar import due_date, local_day
from tests.confidential_http.support import consent_ref, created, example, form, get, post_request, search

OVERDUE = "Task?code=fulfill&status=requested&period=lt{}"


@pytest.mark.parametrize(("received", "via", "due"), [
    (date(2026, 12, 4), "mail", date(2026, 12, 18)),  # a Friday in December: 14 calendar days, weekends count
    (date(2026, 12, 4), "phone", date(2026, 12, 11)),
    (date(2026, 12, 4), "electronic", date(2026, 12, 11)),
    (date(2026, 12, 28), "mail", date(2027, 1, 11)),  # across the new year
    (date(2027, 3, 7), "phone", date(2027, 3, 14)),  # across the spring DST change: still calendar days
    (date(2028, 2, 22), "electronic", date(2028, 2, 29)),  # leap day
])
def test_the_due_date_is_7_or_14_calendar_days_after_receipt(received: date, via: str, due: date) -> None:
    assert due_date(received, via) == due


def test_the_day_is_the_californian_date_not_the_utc_one() -> None:
    late_friday_evening = datetime(2026, 12, 5, 7, 59, tzinfo=UTC)  # 23:59 on Friday the 4th in Los Angeles
    assert local_day(late_friday_evening, "America/Los_Angeles") == date(2026, 12, 4)
    assert local_day(late_friday_evening, "UTC") == date(2026, 12, 5)
    assert local_day(datetime(2026, 12, 5, 8, 0, tzinfo=UTC), "America/Los_Angeles") == date(2026, 12, 5)


async def test_a_mailed_request_received_on_a_friday_in_december_is_due_two_weeks_later(
        client: httpx.AsyncClient) -> None:
    response = await post_request(client, example("mail"))
    (task_ref,) = created(response, "Task")
    task = await get(client, task_ref)
    assert task["status"] == "requested" and task["intent"] == "order"
    assert task["code"]["coding"][0] == {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill",
                                         "display": "Fulfill the focal request"}
    assert task["restriction"]["period"] == {"start": "2026-12-04", "end": "2026-12-18"}
    assert task["focus"]["reference"] == consent_ref(response)
    assert task["owner"]["display"] == "Golden Poppy Health Plan"
    assert task["for"]["reference"].startswith("Patient/")
    assert task["input"] == [{"type": {"text": "receivedVia"}, "valueCode": "mail"}]


async def test_every_health_plan_member_the_persons_forms_name_gets_a_task_too(client: httpx.AsyncClient) -> None:
    assert (await client.post("/ascmi/forms", json=form("ab133-all-share"))).status_code == 201
    response = await post_request(client, example("electronic"))
    owners = sorted([(await get(client, t))["owner"]["display"] for t in created(response, "Task")])
    assert owners == ["Golden Poppy Health Plan", "Sierra Vista Community Clinic"]
    dues = {(await get(client, t))["restriction"]["period"]["end"] for t in created(response, "Task")}
    assert dues == {"2026-12-07"}


async def test_providers_and_other_care_partners_named_on_forms_get_no_task(client: httpx.AsyncClient) -> None:
    named = form("named-include-exclude")  # an ECM provider, a clinic, community supports, a county: no plan
    assert (await client.post("/ascmi/forms", json=named)).status_code == 201
    request = example("electronic")
    request["individual"] = named["individual"]
    request["receivedBy"] = named["collector"]
    response = await post_request(client, request)
    owners = [(await get(client, t))["owner"]["display"] for t in created(response, "Task")]
    assert owners == ["Harbor Light ECM Partners"]


async def test_a_plan_whose_network_membership_ended_gets_no_task(client: httpx.AsyncClient) -> None:
    assert (await client.post("/ascmi/forms", json=form("ab133-all-share"))).status_code == 201
    (plan,) = await search(client, "Organization?name=Golden Poppy")
    memberships = f"OrganizationAffiliation?participating-organization=Organization/{plan['id']}"
    for affiliation in await search(client, memberships):
        affiliation["period"]["end"] = "2026-06-30"
        assert (await client.put(f"/fhir/OrganizationAffiliation/{affiliation['id']}", json=affiliation)
                ).status_code == 200
    response = await post_request(client, example("electronic"))
    owners = [(await get(client, t))["owner"]["display"] for t in created(response, "Task")]
    assert owners == ["Sierra Vista Community Clinic"]


async def test_the_overdue_list_is_the_search_section_6_names(client: httpx.AsyncClient) -> None:
    mail = await post_request(client, example("mail"))  # due 2026-12-18
    phone = await post_request(client, example("phone"))  # due 2026-12-08
    (mail_task,) = created(mail, "Task")
    (phone_task,) = created(phone, "Task")

    async def overdue(today: str) -> set[str]:
        return {f"Task/{t['id']}" for t in await search(client, OVERDUE.format(today))}

    assert await overdue("2026-12-08") == set()  # due today is not late
    assert await overdue("2026-12-09") == {phone_task}
    assert await overdue("2026-12-18") == {phone_task}
    assert await overdue("2026-12-19") == {phone_task, mail_task}
    done = await get(client, phone_task)
    done["status"] = "completed"
    assert (await client.put(f"/fhir/{phone_task}", json=done)).status_code == 200  # a Care Partner marks it done
    assert await overdue("2026-12-19") == {mail_task}


async def test_tasks_without_a_due_date_keep_r4_period_semantics(client: httpx.AsyncClient) -> None:
    task = {"resourceType": "Task", "status": "requested", "intent": "order",
            "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
            "executionPeriod": {"start": "2026-12-10T09:00:00Z", "end": "2026-12-12T09:00:00Z"}}
    assert (await client.post("/fhir/Task", json=task)).status_code == 201
    assert len(await search(client, "Task?period=2026-12-11")) == 0  # eq: the day must contain the period
    assert len(await search(client, "Task?period=ge2026-12-11")) == 1
    assert len(await search(client, "Task?period=lt2026-12-09")) == 0
