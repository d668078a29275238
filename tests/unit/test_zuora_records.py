"""Reading Zuora's responses: both casings, every date format, pagination, error shapes, export tasks."""

from datetime import datetime

import pytest

from resources.zuora.records import RecordError, error_message, export_tasks, parse_listing, parse_page, parse_when

SAMPLE_ITEM = {  # Zuora's own GET /workflows sample (camelCase, ISO times, the misspelled key included)
    "id": 48, "name": "New test workflow", "description": "", "status": "Active",
    "active_version": {"id": 49, "version": "0.0.1", "status": "Active", "type": "Workflow::Setup"},
    "latest_inactive_verisons": [{"id": 50, "version": "0.0.2", "status": "Inactive"}],
    "calloutTrigger": True, "ondemandTrigger": True, "scheduledTrigger": False, "interval": None,
    "createdAt": "2019-05-31T14:52:38.171Z", "updatedAt": "2019-06-03T21:02:26.694Z",
}


def test_a_sample_list_item_maps_onto_the_seed_columns() -> None:
    listing = parse_listing(SAMPLE_ITEM)
    assert listing.columns() == {
        "zuora_id": "48", "name": "New test workflow", "description": "", "state": "Active",
        "created_on": datetime(2019, 5, 31, 14, 52, 38, 171000), "updated_on": datetime(2019, 6, 3, 21, 2, 26, 694000),
        "active_version_id": "49", "active_version_number": "0.0.1",
    }


def test_the_sdk_spelling_is_read_the_same() -> None:
    item = {"id": "48", "name": "n", "status": "Inactive", "created_at": "2019-05-31 14:52:38",
            "updated_at": "2019-06-03 21:02:26", "active_version": {"id": "49", "version": "0.0.2"}}
    listing = parse_listing(item)
    assert (listing.status, listing.created_on, listing.updated_on, listing.active_version_number) == (
        "Inactive", datetime(2019, 5, 31, 14, 52, 38), datetime(2019, 6, 3, 21, 2, 26), "0.0.2")


@pytest.mark.parametrize(("value", "expected"), [
    ("2019-06-03T21:02:26.694Z", datetime(2019, 6, 3, 21, 2, 26, 694000)),
    ("2019-06-03T23:02:26+02:00", datetime(2019, 6, 3, 21, 2, 26)),
    ("2019-06-03 21:02:26", datetime(2019, 6, 3, 21, 2, 26)),
    ("2019-09-10 19:32:21 UTC", datetime(2019, 9, 10, 19, 32, 21)),
    ("2019-06-03", datetime(2019, 6, 3)),
    ("not a date", None), ("", None), (None, None), (1559595746, None), ({"at": 1}, None),
])
def test_times_in_every_format_become_naive_utc(value: object, expected: datetime | None) -> None:
    assert parse_when(value) == expected


def test_missing_fields_are_none_and_wrong_types_never_raise() -> None:
    listing = parse_listing({"id": 7, "active_version": "weird", "name": None, "status": {"x": 1}})
    assert (listing.name, listing.status, listing.active_version_id, listing.updated_on) == ("", None, None, None)


@pytest.mark.parametrize("item", [{"name": "no id"}, {"id": None}, {"id": ""}, ["a list"], "text"])
def test_an_item_without_id_is_refused(item: object) -> None:
    with pytest.raises(RecordError):
        parse_listing(item)


def test_pages_follow_next_page_until_it_is_gone() -> None:
    page = parse_page({"data": [SAMPLE_ITEM], "pagination": {
        "next_page": "https://rest.zuora.com/workflows?page=2&page_length=50", "page": 1, "page_length": 50}})
    assert page.next_page == "https://rest.zuora.com/workflows?page=2&page_length=50" and len(page.items) == 1
    assert parse_page({"data": [SAMPLE_ITEM], "pagination": {"page": 2, "page_length": 50}}).next_page is None
    assert parse_page({"data": [], "pagination": {"next_page": None}}).next_page is None
    assert parse_page({}).items == []


@pytest.mark.parametrize("body", [[], "text", {"data": {"id": 1}}])
def test_a_list_that_is_not_a_page_is_refused(body: object) -> None:
    with pytest.raises(RecordError):
        parse_page(body)


@pytest.mark.parametrize(("body", "message"), [
    (b'{"errors":[{"code":"invalid","status":400,"title":"page_length must be at most 50"}]}',
     "page_length must be at most 50"),
    (b'{"success":false,"reasons":[{"code":90000011,"message":"this resource is protected"}]}',
     "this resource is protected"),
    (b'{"message":"Authentication error"}', "Authentication error"),
    (b'{"error":"invalid_client","error_description":"Bad client credentials"}', "Bad client credentials"),
    (b"<html>\n<body>502 Bad Gateway</body></html>", "<html> <body>502 Bad Gateway</body></html>"),
    (b"", "(empty body)"),
])
def test_error_messages_of_every_shape(body: bytes, message: str) -> None:
    assert error_message(body) == message


def test_export_tasks_keep_the_seed_columns_and_the_original_json() -> None:
    task = {"id": 4901, "name": "Query accounts", "action_type": "Query", "call_type": "REST", "object": "Account",
            "object_id": "{{Data.Account.Id}}", "parameters": {"where": "Status = 'Active'"}, "tags": [""],
            "concurrent_limit": 9999999}
    (record,) = export_tasks({"workflow": {"id": 49}, "tasks": [task, {"name": "no id"}], "linkages": []})
    assert record.columns() == {
        "zuora_id": "4901", "name": "Query accounts", "task_type": "Account", "object_id": "{{Data.Account.Id}}",
        "action_type": "Query", "call_type": "REST", "data": {"where": "Status = 'Active'"},
        "workflow_task_json": task,
    }


def test_an_export_without_a_task_list_is_refused_and_an_empty_one_is_not() -> None:
    assert export_tasks({"workflow": {}, "tasks": [], "linkages": []}) == []
    for broken in ({"workflow": {}}, {"tasks": "none"}, None, []):
        with pytest.raises(RecordError):
            export_tasks(broken)
