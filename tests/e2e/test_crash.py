"""Crash test (issue 7): reservations and delivery confirmations keep flowing over HTTP while
gunicorn's workers are killed with SIGKILL and PostgreSQL itself is stopped in immediate mode
(no checkpoint: crash recovery on the next start) and started again.

The test runs its own PostgreSQL cluster (``tests/e2e/private_postgres.py``) so restarting it
disturbs nobody. It seeds a small pharmacy in process (dispatched kits for two drivers, and
infusion days left unreserved against a scarce item), then serves it with gunicorn (3 workers)
while client threads send every operation once with its own ``Idempotency-Key`` and record
what came back: an answer, or nothing (the connection died with its worker, or the client
gave up: every eighth client hangs up after 50 ms, like a phone losing signal, so some work
commits without its answer reaching anyone). Afterwards every
operation is retried with the same key until it gets a definitive answer, then retried once
more, and the database is checked:

* an operation acknowledged with a 2xx answers its retry with the same status and body,
  marked ``Idempotent-Replayed``; one that failed or got no answer now has a 2xx answer, and
  its second retry is a replay of that one;
* every operation took effect exactly once, as its answer says: one delivery per kit with its
  signature, document and ledger movements (or, for a failed stop, none), the day's
  reservation lines as the answer counts them; no orphan signature, no claimed but unfinished
  idempotency record;
* the ledger holds: ``ledger_discrepancies`` is empty and on hand >= reserved >= 0 everywhere.

The private server runs with ``fsync = off`` (see private_postgres.py): commits still reach
the kernel before they are acknowledged, which is all a killed or stopped server needs.
Run with ``-s`` to see the numbers of a run.
"""

from __future__ import annotations

import base64
import io
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from sqlalchemy import func, select

from inventory import create_app
from inventory.config import Settings
from inventory.db import Database
from inventory.deliveries.models import Delivery, Outcome, RouteStop, Signature, StopStatus
from inventory.idempotency import IdempotencyRecord
from inventory.kits.models import Kit, KitStatus
from inventory.ledger.audit import ledger_discrepancies
from inventory.ledger.models import (
    Balance,
    DocumentType,
    Movement,
    MovementType,
    Party,
    Reservation,
    ReservationStatus,
    StockDocument,
)
from inventory.schema_version import upgrade
from inventory.therapies.models import InfusionDay, InfusionDayStatus
from inventory.users.models import Role
from tests.api.ledger_helpers import all_pages
from tests.api.planning_builders import make_patient, make_payer, make_template
from tests.builders import Api, Catalog, ok, token_for
from tests.e2e.private_postgres import PrivatePostgres, private_postgres
from tests.e2e.server import BIN, ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

SITE = "CRASH1"
WORKERS = 3
CLIENT_THREADS = 6
PER_DAY = 2  # units of the template's one supply per infusion day
DELIVERY_PATIENTS, DELIVERY_DAYS = 4, 4  # one kit per day: 16 kits on the road
RESERVE_PATIENTS, RESERVE_DAYS = 6, 10  # 60 days left unreserved
SCARCE_STOCK = 80  # covers 40 of those 60 days: the rest end short
PACE = 0.15  # seconds each client waits between its operations
REQUEST_TIMEOUT = 10.0
IMPATIENCE = 0.05  # a phone losing signal: the request goes through, the answer is lost
Body = dict[str, Any]


# --- the record of what clients saw -------------------------------------------------------------


@dataclass
class Answer:
    status: int | None  # None: no answer at all (connection refused, reset, timed out)
    body: Any = None
    replayed: bool = False
    error: str | None = None
    at: float = 0.0  # time.monotonic() when it came back

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def definitive(self) -> bool:
        """An answer a client stops retrying on: success, or a refusal that is not 'later'."""
        return self.status is not None and self.status < 500 and self.status not in (408, 429)

    def brief(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        return f"{self.status}{' replayed' if self.replayed else ''}"


@dataclass
class Operation:
    kind: str  # "reserve" or "deliver"
    path: str
    token: str
    body: Body | None
    key: str = field(default_factory=lambda: f"crash-{uuid.uuid4().hex}")
    subject: int = 0  # the infusion day or kit it acts on
    impatient: bool = False  # gives up on its first answer after IMPATIENCE seconds
    first: Answer | None = None
    sent_at: float = 0.0
    retries: list[Answer] = field(default_factory=list)


def send(base: str, op: Operation, timeout: float = REQUEST_TIMEOUT) -> Answer:
    headers = {"Authorization": f"Bearer {op.token}", "Idempotency-Key": op.key}
    try:
        response = requests.post(
            f"{base}/api/v1{op.path}", json=op.body or {}, headers=headers, timeout=timeout
        )
    except requests.RequestException as error:
        return Answer(None, error=type(error).__name__, at=time.monotonic())
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return Answer(
        response.status_code,
        body,
        response.headers.get("Idempotent-Replayed") == "true",
        at=time.monotonic(),
    )


# --- gunicorn with its master's pid, so its workers can be killed -------------------------------


# The project's gunicorn.conf.py, unchanged, plus one hook: a booted worker (the app imported,
# about to accept) leaves a file named after its pid, so the test knows which workers serve.
CONFIG = """\
import os
exec(compile(open({conf!r}).read(), {conf!r}, "exec"))


def post_worker_init(worker):
    open(os.path.join({booted!r}, str(worker.pid)), "w").close()
"""


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path
    booted_dir: Path

    def workers(self) -> set[int]:
        """The master's live child processes, read from /proc."""
        children: set[int] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.process.pid and fields[0] != "Z":
                children.add(int(entry.name))
        return children

    def booted(self) -> set[int]:
        """Live workers that have imported the app and accept requests."""
        return {int(path.name) for path in self.booted_dir.iterdir()} & self.workers()

    def wait_for_booted(
        self, count: int, excluding: frozenset[int] | set[int] = frozenset(), timeout: float = 90
    ) -> set[int]:
        deadline = time.monotonic() + timeout
        while len(booted := self.booted() - excluding) < count:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{booted} of {count} workers booted; log:\n{self.tail()}")
            time.sleep(0.05)
        return booted

    def ready(self) -> None:
        """Every worker booted, and the app answers /ready (database up, schema at head)."""
        self.wait_for_booted(WORKERS)
        answer = requests.get(f"{self.base}/ready", timeout=REQUEST_TIMEOUT)
        assert answer.status_code == 200, answer.text

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def gunicorn_server(database_url: str, work: Path) -> Iterator[Server]:
    port = free_port()
    booted = work / "booted"
    booted.mkdir()
    config = work / "gunicorn.crash.conf.py"
    config.write_text(CONFIG.format(conf=str(ROOT / "gunicorn.conf.py"), booted=str(booted)))
    env = {
        **os.environ,
        "INVENTORY_DATABASE_URL": database_url,
        "WEB_CONCURRENCY": str(WORKERS),
        "BIND": f"127.0.0.1:{port}",
        "INVENTORY_LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = work / "gunicorn.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [BIN / "gunicorn", "-c", str(config), "inventory.wsgi:app"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log, booted)
    try:
        yield server  # still booting: call ready() before sending it anything
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- the pharmacy ---------------------------------------------------------------------------------


def signature() -> str:
    image = Image.new("L", (300, 100), 255)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


@dataclass
class Pharmacy:
    reserve_ops: list[Operation]
    delivery_ops: list[Operation]
    scarce_item: int
    kit_quantity: dict[int, int]  # kit id -> units in it
    vehicle_of_kit: dict[int, int]


def seed(database: Database) -> Pharmacy:
    """Through the real API, in process: two drivers' dispatched routes, and unreserved days."""
    app = create_app(database.settings, database=database, TESTING=True)
    admin = Api(app.test_client(), token_for(database, Role.ADMIN))
    catalog = Catalog(admin, app)
    today = datetime.now(UTC).date()
    shelf = catalog.location(kind="storage", site=SITE)
    catalog.location(kind="staging", site=SITE)
    catalog.location(kind="quarantine", site=SITE)
    plenty = catalog.item(tracking="lot", category="flush")
    scarce = catalog.item(tracking="lot", category="flush")
    lot = "CRASH-LOT"
    expiry = today + timedelta(days=300)
    catalog.receive(plenty, shelf, DELIVERY_PATIENTS * DELIVERY_DAYS * PER_DAY + 20, lot=lot)
    catalog.receive(scarce, shelf, SCARCE_STOCK, lot="SCARCE-LOT", expiry=expiry)
    payer = make_payer(database)

    def therapy(template: int, days: int) -> tuple[int, list[Body]]:
        patient = make_patient(database, payer, site=SITE)
        body = {
            "patient_id": patient,
            "template_id": template,
            "hcpcs": "S9357",
            "start_date": today.isoformat(),
            "schedule": {
                "dates": [(today + timedelta(days=n)).isoformat() for n in range(1, days + 1)]
            },
        }
        created = ok(admin.post("/therapies", body), 201)
        return patient, all_pages(admin, f"/therapies/{created['id']}/infusion-days")

    # Kits on the road: planned, built one per day, scanned, packed, routed and dispatched.
    delivery_template = make_template(database, lines=[(plenty["id"], PER_DAY)])
    delivery_days = [therapy(delivery_template, DELIVERY_DAYS) for _ in range(DELIVERY_PATIENTS)]
    plan = ok(admin.post("/planning/run", {"horizon_days": 14, "site": SITE}))
    assert plan["days_fully_reserved"] == DELIVERY_PATIENTS * DELIVERY_DAYS, plan
    kits: list[Body] = []
    for patient, days in delivery_days:
        for day in days:
            body = {"patient_id": patient, "infusion_day_ids": [day["id"]]}
            kit = ok(admin.post("/kits", body), 201)
            [line] = kit["lines"]
            scan = {"item_id": line["item_id"], "lot": line["lot"], "quantity": line["quantity"]}
            ok(admin.post(f"/kits/{kit['id']}/scans", scan))
            kits.append(ok(admin.post(f"/kits/{kit['id']}/pack")))
    drivers = []
    for _ in range(2):
        token = token_for(database, Role.DRIVER, site=SITE)
        drivers.append((token, ok(Api(app.test_client(), token).get("/me"))))
    delivery_ops: list[Operation] = []
    kit_quantity: dict[int, int] = {}
    vehicle_of_kit: dict[int, int] = {}
    for index, (token, me) in enumerate(drivers):
        own = kits[index::2]
        route = ok(
            admin.post(
                "/routes",
                {
                    "driver_id": me["id"],
                    "date": today.isoformat(),
                    "kit_ids": [k["id"] for k in own],
                },
            ),
            201,
        )
        ok(admin.post(f"/routes/{route['id']}/dispatch"))
        for number, kit in enumerate(own):
            occurred_at = datetime.now(UTC).isoformat()
            body: Body = (
                {"outcome": "failed", "occurred_at": occurred_at, "failure_reason": "not_home"}
                if number % 4 == 3
                else {
                    "outcome": "delivered",
                    "occurred_at": occurred_at,
                    "recipient_name": "Crash Test Recipient",
                    "relationship": "self",
                    "signature": signature(),
                }
            )
            delivery_ops.append(
                Operation("deliver", f"/kits/{kit['id']}/delivery", token, body, subject=kit["id"])
            )
            kit_quantity[kit["id"]] = sum(line["quantity"] for line in kit["lines"])
            vehicle_of_kit[kit["id"]] = me["vehicle_location_id"]

    # Days the load reserves one at a time, against too little stock for all of them.
    reserve_template = make_template(database, lines=[(scarce["id"], PER_DAY)])
    coordinators = [token_for(database, Role.COORDINATOR) for _ in range(2)]
    reserve_ops: list[Operation] = []
    for n in range(RESERVE_PATIENTS):
        _, days = therapy(reserve_template, RESERVE_DAYS)
        for day in days:
            assert day["status"] == "scheduled", day
            reserve_ops.append(
                Operation(
                    "reserve",
                    f"/infusion-days/{day['id']}/reserve",
                    coordinators[n % 2],
                    None,
                    subject=day["id"],
                )
            )
    return Pharmacy(reserve_ops, delivery_ops, scarce["id"], kit_quantity, vehicle_of_kit)


# --- load and chaos -------------------------------------------------------------------------------


@dataclass
class Timeline:
    started: float = 0.0
    killed: list[tuple[float, int]] = field(default_factory=list)  # (when, pid)
    pg_stopped: float = 0.0
    pg_started: float = 0.0
    stopped: float = 0.0


class Load:
    """Client threads, each sending queued operations once, about PACE seconds apart (longer
    after a failure). They
    take no operation past ``gate`` (a fraction of them) until it is raised."""

    def __init__(self, ops: list[Operation], base: str, gate: float) -> None:
        self.queue = deque(ops)
        self.total = len(ops)
        self.base = base
        self.limit = int(gate * self.total)
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._client, daemon=True) for _ in range(CLIENT_THREADS)
        ]
        for thread in self.threads:
            thread.start()

    @property
    def taken(self) -> int:
        return self.total - len(self.queue)

    def _client(self) -> None:
        while True:
            with self.lock:
                if not self.queue:
                    return
                op = self.queue.popleft() if self.taken < self.limit else None
            if op is None:
                time.sleep(0.05)
                continue
            op.sent_at = time.monotonic()
            op.first = send(self.base, op, IMPATIENCE if op.impatient else REQUEST_TIMEOUT)
            # Like a real client, back off after a failure (its retry comes at the end).
            time.sleep(PACE if op.first.acknowledged else 4 * PACE)

    def wait_until_sent(self, fraction: float, timeout: float = 90) -> None:
        """Block until that fraction of the operations has been taken by a client."""
        deadline = time.monotonic() + timeout
        while self.taken < min(fraction * self.total, self.limit):
            assert time.monotonic() < deadline, "the load stalled"
            time.sleep(0.02)

    def finish(self) -> None:
        self.limit = self.total
        self.wait_until_sent(1.0)
        for thread in self.threads:
            thread.join(timeout=REQUEST_TIMEOUT + 5)
        assert not any(thread.is_alive() for thread in self.threads)


def kill_workers(server: Server, timeline: Timeline) -> None:
    """SIGKILL every booted worker but one (mid-request for some: the load keeps them busy).
    The one left keeps serving while the master forks successors, which take seconds to
    import the app (over ten on a busy two-core machine)."""
    victims = set(sorted(server.wait_for_booted(2))[1:])
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
        timeline.killed.append((time.monotonic(), pid))
    deadline = time.monotonic() + 30
    while len(server.workers() - victims) < WORKERS:
        assert time.monotonic() < deadline, f"no successors forked; log:\n{server.tail()}"
        time.sleep(0.05)


def settle(base: str, op: Operation, deadline: float) -> Answer:
    """Retry with the operation's key until the answer is definitive."""
    while True:
        answer = send(base, op)
        op.retries.append(answer)
        if answer.definitive:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{op.kind} {op.path} never settled: {answer.brief()}")
        time.sleep(0.2)


# --- the test -------------------------------------------------------------------------------------


@pytest.fixture
def crash_pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


def test_acknowledged_work_survives_killed_workers_and_a_postgres_restart(
    crash_pg: PrivatePostgres, tmp_path: Path
):
    began = time.monotonic()
    url = crash_pg.create_database("inventory_crash")
    upgrade(url)
    database = Database(Settings(database_url=url, log_level="WARNING"))
    log = tmp_path / "gunicorn.log"  # written by gunicorn_server
    try:
        # The workers import the app (seconds each) while the pharmacy is seeded.
        with gunicorn_server(url, tmp_path) as server:
            pharmacy = seed(database)
            server.ready()
            seeded = time.monotonic()
            ops = pharmacy.reserve_ops + pharmacy.delivery_ops
            random.Random(7).shuffle(ops)
            for op in ops[::8]:
                op.impatient = True
            timeline = Timeline(started=time.monotonic())
            # Some operations wait behind a gate until the second round of kills, so there is
            # load after it even when the successors of the first round boot slowly.
            load = Load(ops, server.base, gate=0.85)
            # The crashes come at points of the load's progress, not of the clock, so they
            # land mid-load however fast this machine is.
            load.wait_until_sent(0.2)
            kill_workers(server, timeline)
            load.wait_until_sent(0.35)
            timeline.pg_stopped = time.monotonic()
            crash_pg.stop("immediate")  # no checkpoint: crash recovery on start
            time.sleep(1.0)  # requests meanwhile find no database
            crash_pg.start()
            timeline.pg_started = time.monotonic()
            load.wait_until_sent(0.6)
            kill_workers(server, timeline)  # again, with the database back
            load.finish()
            timeline.stopped = time.monotonic()

            # Every operation again, with its key: until definitive, then once more.
            sent = [op for op in ops if op.first is not None]
            deadline = time.monotonic() + 45
            with ThreadPoolExecutor(CLIENT_THREADS) as pool:
                settled = dict(
                    zip(
                        [op.key for op in sent],
                        pool.map(lambda op: settle(server.base, op, deadline), sent),
                        strict=True,
                    )
                )
                again = dict(
                    zip(
                        [op.key for op in sent],
                        pool.map(lambda op: send(server.base, op), sent),
                        strict=True,
                    )
                )
            retried = time.monotonic()
        report = _check_answers(sent, settled, again, timeline)
        with database.transaction() as session:
            _check_database(session, pharmacy, sent, settled)
        print(  # noqa: T201 - the run's numbers, shown with -s
            f"{report}; migrate, seed and boot {seeded - began:.1f}s, load and crashes "
            f"{timeline.stopped - timeline.started:.1f}s, "
            f"retries {retried - timeline.stopped:.1f}s, "
            f"total {time.monotonic() - began:.1f}s"
        )
    except BaseException:
        print(f"--- private PostgreSQL log ---\n{crash_pg.server_log()[-4000:]}")  # noqa: T201
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        print(f"--- gunicorn log ---\n{tail}")  # noqa: T201
        raise
    finally:
        database.dispose()


def _check_answers(
    sent: list[Operation], settled: dict[str, Answer], again: dict[str, Answer], tl: Timeline
) -> str:
    firsts = Counter(op.first.brief() if op.first else "unsent" for op in sent)
    # The first answers are what a crash can give: success, 'busy/failed, retry', or nothing.
    # A 4xx would mean the service refused work it should have done.
    refused = [
        (op.kind, op.path, op.first.status, op.first.body)
        for op in sent
        if op.first and op.first.status is not None and 400 <= op.first.status < 500
    ]
    assert refused == [], refused
    expected_status = {"reserve": 200, "deliver": 201}
    mismatched = []
    for op in sent:
        first, final, repeat = op.first, settled[op.key], again[op.key]
        assert first is not None
        if first.acknowledged:
            # The client already has its answer: a retry must give back exactly that.
            if (final.status, final.body, final.replayed) != (first.status, first.body, True):
                mismatched.append((op.kind, op.path, "acked", first.brief(), final.brief()))
        elif final.status != expected_status[op.kind]:
            mismatched.append(
                (op.kind, op.path, "unacked", first.brief(), final.brief(), final.body)
            )
        # And once settled, the answer no longer changes.
        if (repeat.status, repeat.body, repeat.replayed) != (final.status, final.body, True):
            mismatched.append((op.kind, op.path, "repeat", final.brief(), repeat.brief()))
    assert mismatched == [], mismatched

    acknowledged = sum(1 for op in sent if op.first and op.first.acknowledged)
    unanswered = sum(1 for op in sent if op.first and op.first.status is None)
    failed = len(sent) - acknowledged - unanswered
    # The load really was running through both crashes: requests were answered before the
    # first kill and after the database came back (the app reconnected by itself).
    assert any(op.first and op.first.acknowledged and op.first.at < tl.killed[0][0] for op in sent)
    after_restart = [
        op for op in sent if op.first and op.first.acknowledged and op.sent_at > tl.pg_started
    ]
    assert after_restart, "no request succeeded after PostgreSQL came back"
    during_outage = Counter(
        op.first.brief() for op in sent if op.first and tl.pg_stopped <= op.sent_at <= tl.pg_started
    )
    retries = Counter(len(op.retries) for op in sent)
    # Unacknowledged yet committed: the retry found the stored answer.
    lost_answers = sum(
        1 for op in sent if op.first and not op.first.acknowledged and settled[op.key].replayed
    )
    return (
        f"\ncrash test: {len(sent)} operations sent ({acknowledged} acknowledged, "
        f"{failed} failed, {unanswered} unanswered); first answers {dict(firsts)}; "
        "first answers to requests sent while PostgreSQL was stopped or starting "
        f"{dict(during_outage)}; "
        f"{len(tl.killed)} workers killed; PostgreSQL restarted once "
        f"(down {tl.pg_started - tl.pg_stopped:.1f}s); {len(after_restart)} acknowledged after "
        f"the restart; retries per operation until settled {dict(sorted(retries.items()))}; "
        f"all {len(settled)} converged ({lost_answers} of the unacknowledged had committed: "
        "their retry was a replay)"
    )


def _check_database(
    session: Any, pharmacy: Pharmacy, sent: list[Operation], settled: dict[str, Answer]
) -> None:
    assert ledger_discrepancies(session) == []
    bad_balances = session.scalars(
        select(Balance).where((Balance.reserved < 0) | (Balance.on_hand < Balance.reserved))
    ).all()
    assert bad_balances == []

    # Idempotency: one finished record per key, none claimed and left unfinished.
    assert (
        session.scalar(
            select(func.count())
            .select_from(IdempotencyRecord)
            .where(IdempotencyRecord.status_code.is_(None))
        )
        == 0
    )
    records = dict(
        session.execute(
            select(IdempotencyRecord.key, IdempotencyRecord.status_code).where(
                IdempotencyRecord.key.in_([op.key for op in sent])
            )
        ).all()
    )
    assert records == {op.key: settled[op.key].status for op in sent}

    _check_deliveries(session, pharmacy, [op for op in sent if op.kind == "deliver"], settled)
    _check_reservations(session, pharmacy, [op for op in sent if op.kind == "reserve"], settled)


def _check_deliveries(
    session: Any, pharmacy: Pharmacy, ops: list[Operation], settled: dict[str, Answer]
) -> None:
    delivered = 0
    on_vans: Counter[int] = Counter()
    for op in ops:
        answer = settled[op.key].body
        kit = session.get(Kit, op.subject)
        rows = session.scalars(select(Delivery).where(Delivery.kit_id == op.subject)).all()
        assert [row.id for row in rows] == [answer["id"]], (op.path, answer, rows)
        [row] = rows
        stop = session.get(RouteStop, row.stop_id)
        days = session.scalars(select(InfusionDay.status).where(InfusionDay.kit_id == kit.id)).all()
        movements = session.scalars(
            select(Movement)
            .join(StockDocument, Movement.document_id == StockDocument.id)
            .where(StockDocument.kit_id == kit.id, Movement.type == MovementType.DELIVERY)
        ).all()
        if op.body and op.body["outcome"] == "delivered":
            delivered += 1
            assert row.outcome is Outcome.DELIVERED
            assert (kit.status, stop.status) == (KitStatus.DELIVERED, StopStatus.DELIVERED)
            assert set(days) == {InfusionDayStatus.DELIVERED}
            assert row.signature_id is not None and session.get(Signature, row.signature_id)
            assert row.document_id is not None
            assert {m.document_id for m in movements} == {row.document_id}
            assert sum(m.quantity for m in movements) == pharmacy.kit_quantity[kit.id]
            assert {(m.from_location_id, m.to_party) for m in movements} == {
                (pharmacy.vehicle_of_kit[kit.id], Party.PATIENT)
            }
        else:
            assert row.outcome is Outcome.FAILED
            assert (kit.status, stop.status) == (KitStatus.FAILED, StopStatus.FAILED)
            assert set(days) == {InfusionDayStatus.PACKED}
            assert (row.signature_id, row.document_id, movements) == (None, None, [])
            on_vans[pharmacy.vehicle_of_kit[kit.id]] += pharmacy.kit_quantity[kit.id]
    # Nothing half-written anywhere: no signature or delivery document without its delivery.
    assert session.scalar(select(func.count()).select_from(Delivery)) == len(ops)
    assert session.scalar(select(func.count()).select_from(Signature)) == delivered
    delivery_documents = session.scalar(
        select(func.count())
        .select_from(StockDocument)
        .where(StockDocument.type == DocumentType.DELIVERY)
    )
    assert delivery_documents == delivered
    vans = {
        location: session.scalar(
            select(func.coalesce(func.sum(Balance.on_hand), 0)).where(
                Balance.location_id == location
            )
        )
        for location in set(pharmacy.vehicle_of_kit.values())
    }
    assert vans == {location: on_vans[location] for location in vans}


def _check_reservations(
    session: Any, pharmacy: Pharmacy, ops: list[Operation], settled: dict[str, Answer]
) -> None:
    full = 0
    for op in ops:
        answer = settled[op.key].body
        day = session.get(InfusionDay, op.subject)
        lines = session.scalars(
            select(Reservation).where(
                Reservation.infusion_day_id == day.id,
                Reservation.status == ReservationStatus.ACTIVE,
            )
        ).all()
        held = sum(r.quantity for r in lines)
        # Exactly the work its answer reports, once: its lines, no more (a second application
        # would have added lines, or answered with none while the day holds some).
        assert len(lines) == answer["reserved_lines"], (op.path, answer, lines)
        assert answer["days_considered"] == 1, answer
        if answer["days_fully_reserved"] == 1:
            full += 1
            assert (held, day.status) == (PER_DAY, InfusionDayStatus.RESERVED), (op.path, answer)
        else:
            assert answer["days_short"] == 1, answer
            assert held < PER_DAY and day.status is InfusionDayStatus.SHORT, (op.path, answer)
    reserved = session.scalars(
        select(Balance.reserved).where(Balance.item_id == pharmacy.scarce_item)
    ).all()
    held_total = session.scalar(
        select(func.coalesce(func.sum(Reservation.quantity), 0)).where(
            Reservation.item_id == pharmacy.scarce_item,
            Reservation.status == ReservationStatus.ACTIVE,
        )
    )
    assert sum(reserved) == held_total <= SCARCE_STOCK
    assert full <= SCARCE_STOCK // PER_DAY
    if len(ops) == RESERVE_PATIENTS * RESERVE_DAYS:
        # Every day asked: the scarce stock is all reserved, and no more than it.
        assert held_total == SCARCE_STOCK
