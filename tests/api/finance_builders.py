"""One month of a small pharmacy, run through the API with the clock set to each day.

March 2026 (UTC), site ``FIN-…``, two payers:

* **Acme** counts ``dose_day``; S9357 pays 400.00 from 2026-01-01 and 420.00 from 2026-03-16
  (the mid-month rate change); modifier SH pays 50 %.
* **Blue** counts ``calendar_day``; S9500 pays 60.00 from 2026-01-01.

Items: a flush at 1.2345 each, an administration set at 10.0000 each, and a pump with a daily
rate of 15.5000. A day's template is 3 flushes and 1 set; the Blue therapy's template adds one
pump for the course.

* **Patient A** (Acme, S9357): infusion days 10, 11 and 20 March. Kit A1 covers 10 and 11 March
  (delivered 9 March); kit A2 covers 20 March (delivered 19 March). On 12 March two unopened
  flushes and one opened flush come back from kit A1.
* **Patient B** (Acme, S9357-SH): 17 March, kit B1 delivered 16 March.
* **Patient C** (Blue, S9500): therapy 21 to 30 March, kit C1 for 21 March with the pump,
  delivered 21 March; the pump comes back on 31 March (10 days at home).

The expected figures, computed by hand, are in ``tests/api/test_per_diem_month.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import time_machine

from inventory.users.models import Role
from tests.builders import Api, Catalog, ok, unique

Body = dict[str, Any]


def march(day: int) -> date:
    return date(2026, 3, day)


@contextmanager
def clock(day: date, hour: int = 9) -> Iterator[datetime]:
    """Run the block with the service's clock stopped at ``hour`` UTC on ``day``."""
    moment = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    with time_machine.travel(moment, tick=False):
        yield moment


def keyed(api: Api, path: str, body: Body) -> Body:
    response = api.post(path, body, headers={"Idempotency-Key": uuid.uuid4().hex})
    return ok(response, 201)


@dataclass
class Month:
    site: str
    admin: Api
    finance: Api
    coordinator: Api
    warehouse: Api
    driver: Api
    driver_id: int
    acme: Body
    blue: Body
    items: dict[str, Body]
    patients: dict[str, Body] = field(default_factory=dict)
    therapies: dict[str, Body] = field(default_factory=dict)
    kits: dict[str, Body] = field(default_factory=dict)
    templates: dict[str, Body] = field(default_factory=dict)
    pump_serial: str = ""

    def ref(self, name: str) -> str:
        return str(self.patients[name]["external_ref"])

    def report(self, **params: Any) -> Body:
        return ok(self.finance.get("/reports/per-diem", site=self.site, **params))

    def days(self, **params: Any) -> list[Body]:
        rows: list[Body] = []
        cursor = None
        while True:
            extra = {"cursor": cursor} if cursor else {}
            page = ok(
                self.finance.get(
                    "/reports/per-diem/days", site=self.site, limit=500, **params, **extra
                )
            )
            rows.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return rows


def _scan_everything(month: Month, kit: Body) -> None:
    current = ok(month.warehouse.get(f"/kits/{kit['id']}"))
    for line in current["lines"]:
        left = line["quantity"] - line["packed_quantity"]
        if not left:
            continue
        body: Body = {"item_id": line["item_id"], "quantity": left}
        if line["serial"]:
            body["serial"] = line["serial"]
        elif line["lot"]:
            body["lot"] = line["lot"]
        ok(month.warehouse.post(f"/kits/{kit['id']}/scans", body))


def deliver(month: Month, kit: Body, on: date) -> None:
    with clock(on) as now:
        route = ok(
            month.warehouse.post(
                "/routes",
                {"driver_id": month.driver_id, "date": on.isoformat(), "kit_ids": [kit["id"]]},
            ),
            201,
        )
        ok(month.warehouse.post(f"/routes/{route['id']}/dispatch"))
        keyed(
            month.driver,
            f"/kits/{kit['id']}/delivery",
            {
                "outcome": "delivered",
                "occurred_at": now.isoformat(),
                "recipient_name": "Signed By Spouse",
                "relationship": "spouse",
                "signature": SIGNATURE,
            },
        )


def _signature() -> str:
    import base64
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (300, 100), 255).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


SIGNATURE = _signature()


def patient(month: Month, payer: Body) -> Body:
    body = {
        "external_ref": unique("MRN"),
        "name": "Month Patient",
        "address": {"line1": "1 Main St", "city": "Austin", "state": "TX", "postal_code": "78701"},
        "payer_id": payer["id"],
        "site": month.site,
    }
    return ok(month.coordinator.post("/patients", body), 201)


def therapy(month: Month, patient: Body, template: Body, **fields: Any) -> Body:
    body = {"patient_id": patient["id"], "template_id": template["id"], **fields}
    return ok(month.coordinator.post("/therapies", body), 201)


def days_of(month: Month, therapy: Body) -> dict[str, Body]:
    page = ok(month.coordinator.get(f"/therapies/{therapy['id']}/infusion-days", limit=500))
    return {row["date"]: row for row in page["items"]}


def packed_kit(month: Month, patient: Body, days: list[Body]) -> Body:
    kit = ok(
        month.warehouse.post(
            "/kits",
            {"patient_id": patient["id"], "infusion_day_ids": [day["id"] for day in days]},
        ),
        201,
    )
    _scan_everything(month, kit)
    return ok(month.warehouse.post(f"/kits/{kit['id']}/pack", {}))


def run_march(as_role: Callable[..., Api], app: Any) -> Month:
    """Build and run the month; the clock is back to real time afterwards."""
    site = unique("FIN")[:32]
    with clock(march(1)):
        admin = as_role(Role.ADMIN)
        warehouse = as_role(Role.WAREHOUSE)
        coordinator = as_role(Role.COORDINATOR)
        finance = as_role(Role.FINANCE)
        driver = as_role(Role.DRIVER, site=site)
        catalog = Catalog(warehouse, app)
        shelf = catalog.location(kind="storage", site=site)
        catalog.location(kind="staging", site=site)
        catalog.location(kind="quarantine", site=site)
        catalog.location(kind="cleaning", site=site)
        flush = catalog.item(tracking="lot", category="flush")
        admin_set = catalog.item(tracking="lot", category="administration_set")
        pump = catalog.item(tracking="serial", category="pump", daily_rate="15.5000")
        catalog.receive(flush, shelf, 100, unit_cost="1.2345", expiry=date(2027, 12, 31))
        catalog.receive(admin_set, shelf, 20, unit_cost="10.0000", expiry=date(2027, 12, 31))
        serial = unique("PUMP")[:20]
        catalog.receive(pump, shelf, 1, unit_cost="2000.0000", serials=[serial])
        acme = ok(
            coordinator.post(
                "/payers",
                {
                    "name": unique("Acme"),
                    "modifier_multipliers": {"SH": "0.5000", "SJ": "0.0000"},
                    "rates": [
                        {
                            "hcpcs": "S9357",
                            "rate": "400.0000",
                            "counting": "dose_day",
                            "effective_from": "2026-01-01",
                        },
                        {
                            "hcpcs": "S9357",
                            "rate": "420.0000",
                            "counting": "dose_day",
                            "effective_from": "2026-03-16",
                        },
                    ],
                },
            ),
            201,
        )
        blue = ok(
            coordinator.post(
                "/payers",
                {
                    "name": unique("Blue"),
                    "rates": [
                        {
                            "hcpcs": "S9500",
                            "rate": "60.0000",
                            "counting": "calendar_day",
                            "effective_from": "2026-01-01",
                        }
                    ],
                },
            ),
            201,
        )
        me = ok(driver.get("/me"))
        month = Month(
            site,
            admin,
            finance,
            coordinator,
            warehouse,
            driver,
            me["id"],
            acme,
            blue,
            {"flush": flush, "set": admin_set, "pump": pump},
            pump_serial=serial,
        )
        day_lines = [
            {"item_id": flush["id"], "quantity_per_day": 3},
            {"item_id": admin_set["id"], "quantity_per_day": 1},
        ]
        ert = ok(
            coordinator.post(
                "/kit-templates",
                {"name": unique("ERT day"), "hcpcs": "S9357", "lines": day_lines, "equipment": []},
            ),
            201,
        )
        infusion = ok(
            coordinator.post(
                "/kit-templates",
                {
                    "name": unique("Anti-infective"),
                    "hcpcs": "S9500",
                    "lines": day_lines,
                    "equipment": [{"item_id": pump["id"], "quantity": 1}],
                },
            ),
            201,
        )
        month.templates = {"ert": ert, "infusion": infusion}
        for name, payer in (("A", acme), ("B", acme), ("C", blue)):
            month.patients[name] = patient(month, payer)
        month.therapies["A"] = therapy(
            month,
            month.patients["A"],
            ert,
            hcpcs="S9357",
            start_date="2026-03-01",
            schedule={"dates": ["2026-03-10", "2026-03-11", "2026-03-20"]},
        )
        month.therapies["B"] = therapy(
            month,
            month.patients["B"],
            ert,
            hcpcs="S9357",
            modifier="SH",
            start_date="2026-03-01",
            schedule={"dates": ["2026-03-17"]},
        )
        month.therapies["C"] = therapy(
            month,
            month.patients["C"],
            infusion,
            hcpcs="S9500",
            start_date="2026-03-21",
            end_date="2026-03-30",
            schedule={"dates": ["2026-03-21"]},
        )
        ok(coordinator.post("/planning/run", {"horizon_days": 31, "site": site}))
        a_days = days_of(month, month.therapies["A"])
        month.kits["A1"] = packed_kit(
            month, month.patients["A"], [a_days["2026-03-10"], a_days["2026-03-11"]]
        )
        month.kits["A2"] = packed_kit(month, month.patients["A"], [a_days["2026-03-20"]])
        b_days = days_of(month, month.therapies["B"])
        month.kits["B1"] = packed_kit(month, month.patients["B"], [b_days["2026-03-17"]])
        c_days = days_of(month, month.therapies["C"])
        month.kits["C1"] = packed_kit(month, month.patients["C"], [c_days["2026-03-21"]])

    deliver(month, month.kits["A1"], march(9))
    with clock(march(12)) as now:
        keyed(
            admin,
            f"/kits/{month.kits['A1']['id']}/returns",
            {
                "occurred_at": now.isoformat(),
                "lines": [
                    {
                        "item_id": flush["id"],
                        "lot": _lot(month, "A1", flush),
                        "quantity": 2,
                        "condition": "unopened",
                    },
                    {
                        "item_id": flush["id"],
                        "lot": _lot(month, "A1", flush),
                        "quantity": 1,
                        "condition": "opened",
                    },
                ],
            },
        )
    deliver(month, month.kits["B1"], march(16))
    deliver(month, month.kits["A2"], march(19))
    deliver(month, month.kits["C1"], march(21))
    with clock(march(31)) as now:
        keyed(
            admin,
            f"/kits/{month.kits['C1']['id']}/returns",
            {
                "occurred_at": now.isoformat(),
                "lines": [
                    {"item_id": pump["id"], "serial": serial, "quantity": 1, "condition": "opened"}
                ],
            },
        )
    return month


def _lot(month: Month, kit: str, item: Body) -> str:
    [lot] = {line["lot"] for line in month.kits[kit]["lines"] if line["item_id"] == item["id"]}
    return str(lot)
