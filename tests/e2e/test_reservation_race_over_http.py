"""The reservation race over HTTP against gunicorn with 4 worker processes: 50 concurrent
requests for different infusion days, 10 units left. Exactly 10 are reserved."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from inventory.config import Settings
from inventory.db import Database
from inventory.ledger.audit import ledger_discrepancies
from inventory.ledger.models import Balance
from inventory.therapies.models import InfusionDay, InfusionDayStatus
from inventory.users.models import Role
from tests.conftest import create_scratch_database
from tests.e2e.server import gunicorn
from tests.integration.stockyard import Stockyard


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_fifty_requests_over_four_gunicorn_workers_reserve_exactly_the_last_ten_units(
    backend: str, tmp_path: Path
):
    url, drop = create_scratch_database(backend, tmp_path)
    database = Database(Settings(database_url=url))
    try:
        yard = Stockyard(database)
        yard.receive(quantity=10)
        day_ids = yard.daily_therapy(days=50)
        token = yard.token(Role.COORDINATOR)
        statuses: list[int] = [0] * 50
        with gunicorn(url, workers=4) as base:
            barrier = threading.Barrier(50)

            def reserve(index: int) -> None:
                request = urllib.request.Request(
                    f"{base}/api/v1/infusion-days/{day_ids[index]}/reserve",
                    method="POST",
                    headers={"Authorization": f"Bearer {token}"},
                )
                barrier.wait()
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        statuses[index] = response.status
                        json.loads(response.read())
                except urllib.error.HTTPError as error:
                    statuses[index] = error.code

            threads = [threading.Thread(target=reserve, args=(i,)) for i in range(50)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        # SQLite may ask a client to retry (503 + Retry-After) under contention; never a 500.
        assert set(statuses) <= {200, 503}, Counter(statuses)
        with database.transaction() as session:
            days = Counter(
                session.scalars(select(InfusionDay.status).where(InfusionDay.id.in_(day_ids))).all()
            )
            balance = session.scalars(
                select(Balance).where(Balance.location_id == yard.shelf)
            ).one()
            assert (balance.on_hand, balance.reserved) == (10, 10)
            assert days[InfusionDayStatus.RESERVED] == 10
            assert ledger_discrepancies(session) == []
    finally:
        database.dispose()
        drop()
