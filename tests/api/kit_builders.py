"""A small pharmacy for kit tests: bins, a staging and a quarantine area, three items (a
lot-tracked flush, untracked gloves, a serialized pump), a patient on a template and a
therapy whose days are planned, ready to build kits from.

    pharmacy = Pharmacy.open(catalog, coordinator, database)
    therapy, days = pharmacy.therapy(1, 2)          # infusion days in 1 and 2 days
    pharmacy.plan()
    kit = pharmacy.build(days)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from inventory.db import Database
from tests.api.ledger_helpers import all_pages
from tests.api.planning_builders import make_patient, make_payer, make_template, today
from tests.builders import Api, Catalog, ok, unique

FLUSH_PER_DAY = 4
GLOVES_PER_DAY = 2


def in_days(n: int) -> date:
    return today() + timedelta(days=n)


def gs1(
    item: dict[str, Any],
    lot: str | None = None,
    expiry: date | None = None,
    serial: str | None = None,
) -> str:
    """The barcode a packer scans: GS1-128 text with the item's GTIN, lot, expiry, serial."""
    text = f"(01){item['gtin']}"
    if expiry is not None:
        text += f"(17){expiry:%y%m%d}"
    if lot is not None:
        text += f"(10){lot}"
    if serial is not None:
        text += f"(21){serial}"
    return text


@dataclass
class Pharmacy:
    catalog: Catalog
    coordinator: Api
    warehouse: Api
    database: Database
    shelf: dict[str, Any]
    shelf_b: dict[str, Any]
    staging: dict[str, Any]
    quarantine: dict[str, Any]
    flush: dict[str, Any]
    gloves: dict[str, Any]
    pump: dict[str, Any]
    patient_id: int
    template_id: int
    lots: dict[str, str] = field(default_factory=dict)
    serials: list[str] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        catalog: Catalog,
        coordinator: Api,
        database: Database,
        *,
        pumps: int = 2,
        equipment: bool = True,
    ) -> Pharmacy:
        shelf = catalog.location(kind="storage", code=unique("A-01"))
        shelf_b = catalog.location(kind="storage", code=unique("B-01"))
        staging = catalog.location(kind="staging")
        quarantine = catalog.location(kind="quarantine")
        flush = catalog.item(tracking="lot", category="flush")
        gloves = catalog.item(tracking="none", category="ppe")
        pump = catalog.item(tracking="serial", category="pump")
        payer_id = make_payer(database)
        patient_id = make_patient(database, payer_id, site="SITE1")
        template_id = make_template(
            database,
            lines=[(flush["id"], FLUSH_PER_DAY), (gloves["id"], GLOVES_PER_DAY)],
            equipment=[(pump["id"], 1)] if equipment else [],
        )
        pharmacy = cls(
            catalog,
            coordinator,
            catalog.api,
            database,
            shelf,
            shelf_b,
            staging,
            quarantine,
            flush,
            gloves,
            pump,
            patient_id,
            template_id,
        )
        pharmacy.receive_flush("A", 40, expiry_in=200, shelf=shelf)
        catalog.receive(gloves, shelf_b, 50, unit_cost="0.2500")
        if pumps:
            pharmacy.serials = [unique("PUMP") for _ in range(pumps)]
            catalog.receive(pump, shelf, pumps, unit_cost="900.0000", serials=pharmacy.serials)
        return pharmacy

    def receive_flush(
        self,
        name: str,
        quantity: int,
        *,
        expiry_in: int,
        shelf: dict[str, Any] | None = None,
        unit_cost: str = "0.5000",
    ) -> str:
        """Receive a lot of flushes; ``name`` is how the test refers to it."""
        lot = self.lots.get(name) or unique(f"L{name}")
        self.lots[name] = lot
        self.catalog.receive(
            self.flush,
            shelf or self.shelf,
            quantity,
            unit_cost=unit_cost,
            lot=lot,
            expiry=in_days(expiry_in),
        )
        return lot

    def therapy(
        self, *offsets: int, patient_id: int | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        body = {
            "patient_id": patient_id or self.patient_id,
            "template_id": self.template_id,
            "hcpcs": "S9357",
            "start_date": today().isoformat(),
            "schedule": {"dates": [in_days(n).isoformat() for n in offsets]},
        }
        therapy = ok(self.coordinator.post("/therapies", body), 201)
        days = all_pages(self.coordinator, f"/therapies/{therapy['id']}/infusion-days")
        return therapy, days

    def plan(self, horizon_days: int = 14) -> dict[str, Any]:
        return ok(self.coordinator.post("/planning/run", {"horizon_days": horizon_days}))

    def build(self, days: list[dict[str, Any]], patient_id: int | None = None) -> dict[str, Any]:
        body = {
            "patient_id": patient_id or self.patient_id,
            "infusion_day_ids": [d["id"] for d in days],
        }
        return ok(self.warehouse.post("/kits", body), 201)

    def scan(self, kit: dict[str, Any], status: int = 200, **body: Any) -> Any:
        response = self.warehouse.post(f"/kits/{kit['id']}/scans", body)
        assert response.status_code == status, response.get_json()
        return response.get_json()

    def scan_all(self, kit: dict[str, Any]) -> dict[str, Any]:
        """Scan every line of the kit as it is, by barcode; returns the kit afterwards."""
        current = ok(self.warehouse.get(f"/kits/{kit['id']}"))
        items = {
            self.flush["id"]: self.flush,
            self.gloves["id"]: self.gloves,
            self.pump["id"]: self.pump,
        }
        for line in current["lines"]:
            item = items[line["item_id"]]
            left = line["quantity"] - line["packed_quantity"]
            if left == 0:
                continue
            if line["serial"]:
                current = self.scan(current, barcode=gs1(item, serial=line["serial"]))["kit"]
            else:
                expiry = date.fromisoformat(line["expiry"]) if line["expiry"] else None
                current = self.scan(
                    current, barcode=gs1(item, lot=line["lot"], expiry=expiry), quantity=left
                )["kit"]
        return current

    def pack(self, kit: dict[str, Any], status: int = 200) -> dict[str, Any]:
        response = self.warehouse.post(f"/kits/{kit['id']}/pack", {})
        assert response.status_code == status, response.get_json()
        return response.get_json()
