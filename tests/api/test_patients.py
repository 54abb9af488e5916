"""Patients: minimum necessary data (external reference, name, delivery address, phone, payer,
site), If-Match on edits, filters, idempotent creation, roles, and the PHI rule: a patient's
name, address and phone never appear in an error body or a log record."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import pytest

from inventory.care import service
from inventory.care.schemas import PatientIn
from inventory.errors import NotFound
from inventory.users.models import Role
from tests.api.care_builders import address, make_patient, make_payer, make_template, patient_body
from tests.builders import Api, Catalog, ok, problem, unique


@pytest.fixture
def coordinator(as_role) -> Api:  # type: ignore[no-untyped-def]
    return as_role(Role.COORDINATOR)


@pytest.fixture
def payer(coordinator: Api) -> dict[str, Any]:
    return make_payer(coordinator)


# --- create and read -------------------------------------------------------------------------


def test_creating_a_patient_answers_201_with_the_address_nested_and_an_etag(
    coordinator: Api, payer
):
    body = patient_body(
        payer["id"],
        name="Maria Gonzalez",
        address=address(line2="Apt 4B", postal_code="78701-1234"),
        phone="+1 (512) 555-0100",
    )
    response = coordinator.post("/patients", body)
    patient = ok(response, 201)
    assert isinstance(patient["id"], int)
    assert {k: patient[k] for k in body} == body
    assert response.headers["ETag"] == f'"patient-{patient["id"]}-v1"'
    fetched = coordinator.get(f"/patients/{patient['id']}")
    assert ok(fetched) == patient
    assert fetched.headers["ETag"] == response.headers["ETag"]


def test_line2_and_phone_are_optional(coordinator: Api, payer):
    patient = make_patient(coordinator, payer["id"])
    assert patient["address"]["line2"] is None
    assert patient["phone"] is None


def test_an_empty_line2_is_stored_as_none(coordinator: Api, payer):
    patient = make_patient(coordinator, payer["id"], address=address(line2=""))
    assert patient["address"]["line2"] is None


def test_a_duplicate_external_ref_is_a_conflict_naming_the_patient_by_id_only(
    coordinator: Api, payer
):
    first = make_patient(coordinator, payer["id"], name="Robert Lindqvist")
    body = patient_body(payer["id"], external_ref=first["external_ref"], name="Someone Else")
    result = problem(coordinator.post("/patients", body), 409)
    assert result["detail"] == f"external_ref is already used by patient {first['id']}."
    found = ok(coordinator.get("/patients", external_ref=first["external_ref"]))["items"]
    assert [p["id"] for p in found] == [first["id"]]


def test_an_unknown_payer_is_refused_on_the_payer_id_field(coordinator: Api):
    body = patient_body(2_000_000_000)
    errors = problem(coordinator.post("/patients", body), 422)["errors"]
    assert list(errors) == ["payer_id"]
    assert ok(coordinator.get("/patients", external_ref=body["external_ref"]))["items"] == []


def test_missing_required_fields_are_each_named(coordinator: Api):
    errors = problem(coordinator.post("/patients", {"address": {}}), 422)["errors"]
    assert set(errors) == {
        "external_ref",
        "name",
        "payer_id",
        "site",
        "address.line1",
        "address.city",
        "address.state",
        "address.postal_code",
    }


@pytest.mark.parametrize(
    "postal_code", ["1234", "123456", "ABCDE", "78701-12", "78701 1234", "78701-", 78701]
)
def test_a_postal_code_that_is_not_a_zip_code_is_refused(coordinator: Api, payer, postal_code):
    body = patient_body(payer["id"], address=address(postal_code=postal_code))
    errors = problem(coordinator.post("/patients", body), 422)["errors"]
    assert list(errors) == ["address.postal_code"]


@pytest.mark.parametrize("state", ["tx", "Texas", "T", "T1", ""])
def test_a_state_that_is_not_two_capital_letters_is_refused(coordinator: Api, payer, state):
    body = patient_body(payer["id"], address=address(state=state))
    errors = problem(coordinator.post("/patients", body), 422)["errors"]
    assert list(errors) == ["address.state"]


@pytest.mark.parametrize("phone", ["555", "call me maybe", "5" * 33, "512#555#0100", 5125550100])
def test_a_phone_that_is_not_a_phone_number_is_refused(coordinator: Api, payer, phone):
    errors = problem(coordinator.post("/patients", patient_body(payer["id"], phone=phone)), 422)
    assert list(errors["errors"]) == ["phone"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("external_ref", "has space"),
        ("external_ref", "x" * 65),
        ("external_ref", ""),
        ("name", ""),
        ("name", "x" * 201),
        ("name", "Nul\x00byte"),
        ("site", "NORTH SIDE"),
        ("site", "x" * 33),
        ("payer_id", "1"),
        ("payer_id", 0),
        ("payer_id", 1.5),
        ("payer_id", True),
    ],
)
def test_a_bad_field_is_refused_with_its_name(coordinator: Api, payer, field, value):
    body = {**patient_body(payer["id"]), field: value}
    errors = problem(coordinator.post("/patients", body), 422)["errors"]
    assert list(errors) == [field]


@pytest.mark.parametrize(
    ("line", "value"), [("line1", ""), ("line1", "x" * 201), ("city", "x" * 101), ("line2", 7)]
)
def test_a_bad_address_line_is_refused_with_its_path(coordinator: Api, payer, line, value):
    body = patient_body(payer["id"], address=address(**{line: value}))
    errors = problem(coordinator.post("/patients", body), 422)["errors"]
    assert list(errors) == [f"address.{line}"]


def test_unknown_fields_are_refused_at_the_top_and_in_the_address(coordinator: Api, payer):
    body = patient_body(payer["id"], dob="1970-01-01", address=address(county="Travis"))
    errors = problem(coordinator.post("/patients", body), 422)["errors"]
    assert set(errors) == {"dob", "address.county"}


def test_an_unknown_patient_is_404_to_read_and_to_edit(coordinator: Api):
    body = problem(coordinator.get("/patients/999999"), 404)
    assert body["detail"] == "No patient 999999."
    problem(coordinator.patch("/patients/999999", {"phone": None}), 404)


# --- idempotency -----------------------------------------------------------------------------


def test_replaying_a_creation_with_its_idempotency_key_creates_one_patient(coordinator: Api, payer):
    body = patient_body(payer["id"])
    headers = {"Idempotency-Key": unique("patient-key")}
    first = coordinator.post("/patients", body, headers=headers)
    again = coordinator.post("/patients", body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    assert again.headers["ETag"] == first.headers["ETag"]
    found = ok(coordinator.get("/patients", external_ref=body["external_ref"]))["items"]
    assert len(found) == 1


def test_the_same_idempotency_key_with_another_body_is_refused(coordinator: Api, payer):
    headers = {"Idempotency-Key": unique("patient-key")}
    ok(coordinator.post("/patients", patient_body(payer["id"]), headers=headers), 201)
    other = patient_body(payer["id"])
    errors = problem(coordinator.post("/patients", other, headers=headers), 422)["errors"]
    assert list(errors) == ["Idempotency-Key"]
    assert ok(coordinator.get("/patients", external_ref=other["external_ref"]))["items"] == []


# --- edit ------------------------------------------------------------------------------------


def test_an_edit_with_the_current_etag_applies_and_returns_a_new_etag(coordinator: Api, payer):
    created = coordinator.post("/patients", patient_body(payer["id"], phone="512-555-0100"))
    patient = ok(created, 201)
    response = coordinator.patch(
        f"/patients/{patient['id']}",
        {"name": "New Name", "phone": None},
        headers={"If-Match": created.headers["ETag"]},
    )
    edited = ok(response)
    assert (edited["name"], edited["phone"]) == ("New Name", None)
    assert edited["external_ref"] == patient["external_ref"]
    assert response.headers["ETag"] == f'"patient-{patient["id"]}-v2"'
    assert ok(coordinator.get(f"/patients/{patient['id']}")) == edited


def test_an_edit_replaces_the_whole_address(coordinator: Api, payer):
    patient = make_patient(coordinator, payer["id"], address=address(line2="Suite 9"))
    new_address = {"line1": "1 Elm St", "city": "Round Rock", "state": "TX", "postal_code": "78664"}
    edited = ok(coordinator.patch(f"/patients/{patient['id']}", {"address": new_address}))
    assert edited["address"] == {**new_address, "line2": None}


def test_an_edit_of_the_address_must_give_all_of_it(coordinator: Api, payer):
    patient = make_patient(coordinator, payer["id"])
    body = {"address": {"line1": "1 Elm St"}}
    errors = problem(coordinator.patch(f"/patients/{patient['id']}", body), 422)["errors"]
    assert set(errors) == {"address.city", "address.state", "address.postal_code"}
    assert ok(coordinator.get(f"/patients/{patient['id']}")) == patient


def test_an_edit_can_move_a_patient_to_another_payer(coordinator: Api, payer):
    patient = make_patient(coordinator, payer["id"])
    other = make_payer(coordinator)
    edited = ok(coordinator.patch(f"/patients/{patient['id']}", {"payer_id": other["id"]}))
    assert edited["payer_id"] == other["id"]


def test_an_edit_to_an_unknown_payer_is_refused(coordinator: Api, payer):
    patient = make_patient(coordinator, payer["id"])
    body = {"payer_id": 2_000_000_000}
    errors = problem(coordinator.patch(f"/patients/{patient['id']}", body), 422)["errors"]
    assert list(errors) == ["payer_id"]
    assert ok(coordinator.get(f"/patients/{patient['id']}"))["payer_id"] == payer["id"]


def test_an_edit_cannot_take_another_patients_external_ref(coordinator: Api, payer):
    other = make_patient(coordinator, payer["id"])
    patient = make_patient(coordinator, payer["id"])
    body = {"external_ref": other["external_ref"]}
    result = problem(coordinator.patch(f"/patients/{patient['id']}", body), 409)
    assert result["detail"] == f"external_ref is already used by patient {other['id']}."


def test_an_edit_may_repeat_the_patients_own_external_ref(coordinator: Api, payer):
    patient = make_patient(coordinator, payer["id"])
    body = {"external_ref": patient["external_ref"], "site": patient["site"]}
    assert ok(coordinator.patch(f"/patients/{patient['id']}", body)) == patient


def test_an_edit_with_a_stale_etag_is_412_and_changes_nothing(coordinator: Api, payer):
    created = coordinator.post("/patients", patient_body(payer["id"]))
    patient = ok(created, 201)
    stale = created.headers["ETag"]
    ok(coordinator.patch(f"/patients/{patient['id']}", {"name": "First"}, {"If-Match": stale}))
    problem(
        coordinator.patch(f"/patients/{patient['id']}", {"name": "Lost"}, {"If-Match": stale}),
        412,
    )
    after = coordinator.get(f"/patients/{patient['id']}")
    assert ok(after)["name"] == "First"
    assert after.headers["ETag"] == f'"patient-{patient["id"]}-v2"'


def test_the_site_can_change_before_the_patient_has_a_therapy(coordinator: Api, payer):
    patient = make_patient(coordinator, payer["id"], site="NORTH")
    assert ok(coordinator.patch(f"/patients/{patient['id']}", {"site": "SOUTH"}))["site"] == "SOUTH"


def test_the_site_cannot_change_once_the_patient_has_a_therapy(
    coordinator: Api, payer, catalog: Catalog
):
    patient = make_patient(coordinator, payer["id"], site="NORTH")
    template = make_template(coordinator, lines=[(catalog.item()["id"], 2)])
    start = date.today() + timedelta(days=3)
    ok(
        coordinator.post(
            "/therapies",
            {
                "patient_id": patient["id"],
                "template_id": template["id"],
                "hcpcs": "S9357",
                "start_date": start.isoformat(),
                "end_date": (start + timedelta(days=28)).isoformat(),
                "schedule": {"every_days": 14},
            },
        ),
        201,
    )
    result = problem(coordinator.patch(f"/patients/{patient['id']}", {"site": "SOUTH"}), 409)
    assert f"Patient {patient['id']}" in result["detail"]
    assert ok(coordinator.get(f"/patients/{patient['id']}"))["site"] == "NORTH"


# --- lists -----------------------------------------------------------------------------------


def test_the_list_filters_by_site_payer_and_external_ref(coordinator: Api, payer):
    other_payer = make_payer(coordinator)
    site_a, site_b = unique("A"), unique("B")
    a1 = make_patient(coordinator, payer["id"], site=site_a)
    a2 = make_patient(coordinator, other_payer["id"], site=site_a)
    b1 = make_patient(coordinator, payer["id"], site=site_b)

    def ids(**params: Any) -> list[int]:
        return [p["id"] for p in ok(coordinator.get("/patients", **params))["items"]]

    assert ids(site=site_a) == [a1["id"], a2["id"]]
    assert ids(site=site_b) == [b1["id"]]
    assert ids(payer_id=other_payer["id"]) == [a2["id"]]
    assert ids(site=site_a, payer_id=payer["id"]) == [a1["id"]]
    assert ids(external_ref=b1["external_ref"]) == [b1["id"]]
    assert ids(external_ref="NO-SUCH-REF") == []
    assert ok(coordinator.get("/patients", site=site_b))["items"] == [b1]


def test_pages_of_two_walk_every_patient_of_a_site_once(coordinator: Api, payer):
    site = unique("PAGED")
    created = [make_patient(coordinator, payer["id"], site=site)["id"] for _ in range(5)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, "site": site}
        if cursor:
            params["cursor"] = cursor
        page = ok(coordinator.get("/patients", **params))
        seen.extend(p["id"] for p in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "paging does not terminate"
    assert seen == created
    assert pages == 3


@pytest.mark.parametrize(
    "params", [{"payer_id": "x"}, {"payer_id": 0}, {"limit": 501}, {"name": "Maria"}]
)
def test_bad_list_parameters_are_refused(coordinator: Api, params):
    errors = problem(coordinator.get("/patients", **params), 422)["errors"]
    assert list(errors) == list(params)


# --- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.WAREHOUSE, Role.FINANCE])
def test_warehouse_and_finance_can_read_patients_but_not_write_them(
    as_role, coordinator, payer, role
):
    patient = make_patient(coordinator, payer["id"])
    reader: Api = as_role(role)
    assert ok(reader.get(f"/patients/{patient['id']}")) == patient
    assert ok(reader.get("/patients", external_ref=patient["external_ref"]))["items"] == [patient]
    problem(reader.post("/patients", patient_body(payer["id"])), 403)
    problem(reader.patch(f"/patients/{patient['id']}", {"name": "Changed"}), 403)
    assert ok(coordinator.get(f"/patients/{patient['id']}")) == patient


def test_a_driver_can_neither_read_nor_write_patients(as_role, coordinator, payer):
    patient = make_patient(coordinator, payer["id"])
    driver: Api = as_role(Role.DRIVER)
    problem(driver.get("/patients"), 403)
    problem(driver.get(f"/patients/{patient['id']}"), 403)
    problem(driver.post("/patients", patient_body(payer["id"])), 403)
    problem(driver.patch(f"/patients/{patient['id']}", {"name": "Changed"}), 403)


def test_an_admin_can_write_patients(admin: Api, payer):
    patient = make_patient(admin, payer["id"])
    assert ok(admin.patch(f"/patients/{patient['id']}", {"phone": "5125550100"}))["phone"] == (
        "5125550100"
    )


# --- PHI never in logs or error bodies -------------------------------------------------------

PHI_NAME = "Philippa Quennell-Marchbanks"
PHI_LINE1 = "9187 Wistful Heron Lane"
PHI_PHONE = "+1 (737) 555-0142"
PHI_NEW_NAME = "Philippa Q. Marchbanks-Renamed"
PHI_NEW_LINE1 = "4406 Solitary Osprey Court"
PHI_NEW_PHONE = "737.555.0199"
PHI = (PHI_NAME, PHI_LINE1, PHI_PHONE, PHI_NEW_NAME, PHI_NEW_LINE1, PHI_NEW_PHONE)


def test_a_patients_name_address_and_phone_appear_in_no_log_record_and_no_error_body(
    coordinator: Api, as_role, payer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="inventory")
    phi_address = address(line1=PHI_LINE1, line2="Unit 12")
    body = patient_body(payer["id"], name=PHI_NAME, address=phi_address, phone=PHI_PHONE)
    errors: list[dict[str, Any]] = []

    # The normal path: create, list, read, edit.
    created = coordinator.post("/patients", body, headers={"Idempotency-Key": unique("phi")})
    patient = ok(created, 201)
    assert patient["name"] == PHI_NAME  # the readers who may see it, do
    assert ok(coordinator.get("/patients", external_ref=body["external_ref"]))["items"]
    ok(coordinator.get(f"/patients/{patient['id']}"))
    edited = coordinator.patch(
        f"/patients/{patient['id']}",
        {
            "name": PHI_NEW_NAME,
            "address": address(line1=PHI_NEW_LINE1),
            "phone": PHI_NEW_PHONE,
        },
        headers={"If-Match": created.headers["ETag"]},
    )
    ok(edited)

    # The failing paths, each with the PHI in the request.
    duplicate = {**body, "name": PHI_NEW_NAME}
    errors.append(problem(coordinator.post("/patients", duplicate), 409))
    bad_zip = patient_body(
        payer["id"], name=PHI_NAME, address=address(line1=PHI_LINE1, postal_code="ABCDE")
    )
    errors.append(problem(coordinator.post("/patients", bad_zip), 422))
    bad_phone = patient_body(payer["id"], name=PHI_NAME, phone=PHI_PHONE + "#ext")
    errors.append(problem(coordinator.post("/patients", bad_phone), 422))
    unknown_payer = patient_body(2_000_000_000, name=PHI_NAME, address=phi_address)
    errors.append(problem(coordinator.post("/patients", unknown_payer), 422))
    errors.append(
        problem(
            coordinator.patch(
                f"/patients/{patient['id']}",
                {"name": PHI_NAME, "address": address(line1=PHI_LINE1), "phone": PHI_PHONE},
                headers={"If-Match": created.headers["ETag"]},
            ),
            412,
        )
    )
    errors.append(
        problem(
            coordinator.post(
                "/patients",
                {**patient_body(payer["id"], name=PHI_NAME), "notes": PHI_LINE1},
            ),
            422,
        )
    )
    driver: Api = as_role(Role.DRIVER)
    errors.append(problem(driver.get(f"/patients/{patient['id']}"), 403))
    errors.append(problem(driver.post("/patients", body), 403))
    errors.append(problem(driver.patch(f"/patients/{patient['id']}", {"name": PHI_NAME}), 403))

    # Error bodies name the patient by id only.
    assert errors[0]["detail"] == f"external_ref is already used by patient {patient['id']}."
    for error in errors:
        text = repr(error)
        for secret in PHI:
            assert secret not in text, (secret, error)

    # Log records: the message and every attribute (extra fields, args, exception text).
    records = caplog.records
    assert any(r.name == "inventory.access" for r in records), "the access log was not captured"
    for record in records:
        text = record.getMessage() + repr(vars(record))
        for secret in PHI:
            assert secret not in text, (secret, record.name, record.getMessage())
    assert not any(secret in caplog.text for secret in PHI)


# --- service functions other features call -------------------------------------------------


def test_the_service_creates_and_finds_a_patient_from_the_dict_its_schema_loads(database, payer):
    fields = PatientIn().load(patient_body(payer["id"], name=PHI_NAME))
    with database.transaction() as session:
        patient = service.create_patient(session, fields)
        assert service.get_patient(session, patient.id) is patient
        assert (patient.address_line1, patient.city) == ("100 Congress Ave", "Austin")
        assert PHI_NAME not in repr(patient)
        with pytest.raises(NotFound, match=r"^No patient 2147483647\.$"):
            service.get_patient(session, 2_147_483_647)
