"""HTTP benchmarks: the real server (gunicorn, ``gunicorn.conf.py``, ``inventory.wsgi:app``) on a
scratch PostgreSQL database, driven by concurrent clients over HTTP.

**Server.** ``WEB_CONCURRENCY`` is set explicitly to gunicorn.conf.py's own default for this
host, ``min(2 x cores + 1, 8)`` (5 on 2 cores), unless ``--workers`` says otherwise; one thread
per worker (sync workers: every request is a new TCP connection). Every other setting is the
service's default: INFO logs and the JSON access log included (to a temporary file, shown if
gunicorn fails to start), a pool of 5 connections per worker.

**Data**, written in-process through the service layer (what the API calls, without HTTP, to
save time): the planning benchmark's pharmacy (the demo catalog, two lots of 60,000 of every
supply, its three therapies in turn, a rolling year of infusion days each) with one pump and
pole per patient; one patient per kit; a staging bench; a coordinator, a warehouse user and
one driver per client, each with a van of their own. Every patient's first infusion day is
reserved, built into a kit (with the course's pump, and pole, where the therapy has them),
every line marked scanned as reserved, packed, put on a driver's route for today and
dispatched.

**Client.** One thread per client, each with its own ``http.client`` connection (the standard
library: no new dependency), in a closed loop: the next request goes as soon as the answer is
read. Latency is measured around the whole exchange, connect included. A timed phase starts
with a warm-up whose requests are not counted; a fixed-work phase counts everything. The
client's own CPU, gunicorn's workers' and the whole machine's (``/proc``) are reported, because
the client, gunicorn and PostgreSQL share the same cores (and, on a shared host, with others:
the load average at the start is in the results).

**a. Reservations.** ``POST /api/v1/infusion-days/{id}/reserve`` (a coordinator), the clients
taking the next scheduled day in date order, so every request reserves a whole day's supplies
(FEFO). Compared with ``pgbench`` TPC-B-like (``pgbench -i``, scale 1, on a scratch database of
its own, then ``pgbench -c 16 -j 2 -T N``) on the same PostgreSQL, in the same run, just before.
And, right after, with the same reservation as a bare Flask endpoint with hand-written SQL
(``benchmarks/bare_reserve.py``: no auth, ORM, schemas or idempotency), served by the same
gunicorn settings on the same database, taking the next days from the same pool:
``ratio_to_bare`` is what the service keeps of the bare work's throughput. (The bare phase
runs second, on a slightly larger table of reservations; run first on a fresh database it gave
539 per second against 527 to 547 when second, on the same host the same day.)

**b. Reads.** ``GET /health`` (no database, no token: Flask's and gunicorn's floor), ``GET
/api/v1/me`` (the token lookup: the floor of any authenticated call), ``GET /api/v1/stock`` (a
warehouse user, the first page of 50 rows) and ``GET /api/v1/routes?date=<today>`` (each client
a driver reading their own route), one after the other, each under the same concurrency.

**d. Confirmations.** Each client is a driver confirming their stops in order with ``POST
/api/v1/kits/{id}/delivery`` (delivered, with a PNG signature) and a fresh ``Idempotency-Key``;
then each replays every one of them with the same key and body, which must answer the same
201 marked ``Idempotent-Replayed: true``. No warm-up: the workers have served the other phases
by then. Afterwards every kit must be delivered, once, and the ledger must still add up
(``inventory.ledger.audit``).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from PIL import Image, ImageDraw
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from benchmarks import planning as planning_bench
from benchmarks.planning import SITE
from inventory.auth import Caller
from inventory.catalog import service as catalog
from inventory.catalog.models import LocationKind
from inventory.config import Settings
from inventory.db import Database, utcnow
from inventory.deliveries import service as deliveries
from inventory.kits import service as kits
from inventory.kits.models import Kit, KitStatus
from inventory.ledger.audit import ledger_discrepancies
from inventory.planning import service as planning
from inventory.therapies.models import InfusionDay, InfusionDayStatus
from inventory.users import service as users
from inventory.users.models import Role, User

ROOT = Path(__file__).resolve().parents[1]
API = "/api/v1"


@dataclass(frozen=True)
class Sizes:
    clients: int
    workers: int
    pgbench_seconds: int
    reserve_seconds: float
    read_seconds: float
    stops_per_driver: int  # confirmations per driver, all measured
    warmup_seconds: float


def default_workers() -> int:
    """gunicorn.conf.py's default for WEB_CONCURRENCY on this host."""
    return min(2 * multiprocessing.cpu_count() + 1, 8)


def sizes(quick: bool, clients: int = 16, workers: int | None = None) -> Sizes:
    workers = workers or default_workers()
    if quick:
        return Sizes(clients, workers, 4, 4.0, 2.0, 1, 0.5)
    return Sizes(clients, workers, 15, 15.0, 6.0, 5, 1.0)


# --- measuring -------------------------------------------------------------------------------


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])
    return total - idle, total


def process_ticks(pids: list[int]) -> int:
    """utime + stime jiffies of these processes (those that have exited count as 0)."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


@dataclass
class Usage:
    """CPU used during a window: the machine's, this process's (the client), the server's."""

    server_pids: list[int] = field(default_factory=list)
    _start: tuple[tuple[int, int], float, int, float] | None = None
    machine_pct: float = 0.0  # of all cores: 100 means every core busy
    client_cores: float = 0.0
    server_cores: float = 0.0

    def start(self) -> None:
        self._start = (
            cpu_ticks(),
            time.process_time(),
            process_ticks(self.server_pids),
            time.perf_counter(),
        )

    def stop(self) -> None:
        assert self._start is not None
        (busy0, total0), client0, server0, wall0 = self._start
        busy1, total1 = cpu_ticks()
        wall = max(time.perf_counter() - wall0, 1e-9)
        hertz = os.sysconf("SC_CLK_TCK")
        self.machine_pct = 100 * (busy1 - busy0) / max(total1 - total0, 1)
        self.client_cores = (time.process_time() - client0) / wall
        self.server_cores = (process_ticks(self.server_pids) - server0) / hertz / wall

    def figures(self, prefix: str = "") -> dict[str, float]:
        return {
            f"{prefix}machine_cpu_busy_pct": round(self.machine_pct, 1),
            f"{prefix}client_cpu_cores": round(self.client_cores, 2),
            f"{prefix}gunicorn_cpu_cores": round(self.server_cores, 2),
        }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (seconds), in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return 1000 * ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# --- the client ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None
    expect: int = 200
    tag: Any = None  # the caller's, passed back to ``seen``


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass
class Sample:
    started: float
    finished: float
    ok: bool


@dataclass
class Outcome:
    samples: list[Sample]
    statuses: Counter[str]
    problems: list[str]
    seconds: float
    usage: Usage

    @property
    def count(self) -> int:
        return len(self.samples)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return sum(1 for s in self.samples if not s.ok)

    def latencies(self) -> list[float]:
        return [s.finished - s.started for s in self.samples]

    def figures(self, prefix: str, unit: str = "requests") -> dict[str, Any]:
        latencies = self.latencies()
        return {
            f"{prefix}{unit}": self.count,
            f"{prefix}seconds": round(self.seconds, 2),
            f"{prefix}per_second": round(self.rate, 1),
            f"{prefix}p50_ms": round(percentile(latencies, 0.50), 1),
            f"{prefix}p99_ms": round(percentile(latencies, 0.99), 1),
            f"{prefix}max_ms": round(percentile(latencies, 1.0), 1),
            f"{prefix}statuses": ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())),
            f"{prefix}failed": self.failed,
            **self.usage.figures(prefix),
        }


class Connection:
    """One client's connection; gunicorn's sync workers close it after every answer and
    http.client opens a new one on the next request."""

    def __init__(self, host: str, port: int) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=120)

    def send(self, call: Call) -> Answer:
        try:
            self.connection.request(call.method, call.path, body=call.body, headers=call.headers)
            response = self.connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            raise
        return Answer(response.status, body, {k.lower(): v for k, v in response.getheaders()})

    def close(self) -> None:
        self.connection.close()


def drive(
    address: tuple[str, int],
    clients: int,
    next_call: Callable[[int], Call | None],
    *,
    seconds: float | None = None,
    warmup: float = 0.0,
    seen: Callable[[int, Call, Answer], str | None] | None = None,
    server_pids: list[int] | None = None,
) -> Outcome:
    """``clients`` threads in a closed loop, each sending ``next_call(client)`` until it says
    None or, with ``seconds``, until ``warmup + seconds`` have passed. A timed run counts the
    requests that finish inside the ``seconds`` after the warm-up (throughput, and their
    latencies); an untimed one counts all, over the time from the first request sent to the
    last answer read. ``seen`` checks an answer and returns a problem, or None."""
    lock = threading.Lock()
    samples: list[Sample] = []
    statuses: Counter[str] = Counter()
    problems: list[str] = []
    gate = threading.Barrier(clients + 1)
    t0 = 0.0

    def worker(index: int) -> None:
        connection = Connection(*address)
        mine: list[Sample] = []
        counted: Counter[str] = Counter()
        wrong: list[str] = []
        gate.wait()
        try:
            while True:
                started = time.perf_counter()
                if seconds is not None and started >= t0 + warmup + seconds:
                    break
                call = next_call(index)
                if call is None:
                    break
                try:
                    answer = connection.send(call)
                except (OSError, http.client.HTTPException) as error:
                    finished = time.perf_counter()
                    counted[type(error).__name__] += 1
                    wrong.append(f"{call.method} {call.path}: {error!r}")
                    mine.append(Sample(started, finished, False))
                    continue
                finished = time.perf_counter()
                counted[str(answer.status)] += 1
                problem = None
                if answer.status != call.expect:
                    problem = f"{call.method} {call.path}: {answer.status} {answer.body[:300]!r}"
                elif seen is not None:
                    problem = seen(index, call, answer)
                if problem:
                    wrong.append(problem)
                mine.append(Sample(started, finished, problem is None))
        finally:
            connection.close()
            with lock:
                samples.extend(mine)
                statuses.update(counted)
                problems.extend(wrong)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    usage = Usage(server_pids=server_pids or [])
    t0 = time.perf_counter()
    gate.wait()
    if seconds is None:
        usage.start()
        for thread in threads:
            thread.join()
        usage.stop()
        if not samples:
            return Outcome([], statuses, problems, 0.0, usage)
        first = min(s.started for s in samples)
        last = max(s.finished for s in samples)
        return Outcome(samples, statuses, problems, last - first, usage)
    time.sleep(warmup)
    usage.start()
    time.sleep(max(0.0, t0 + warmup + seconds - time.perf_counter()))
    usage.stop()
    for thread in threads:
        thread.join()
    low, high = t0 + warmup, t0 + warmup + seconds
    kept = [s for s in samples if low <= s.finished <= high]
    # statuses and problems cover the warm-up too: a failure there is still a failure
    return Outcome(kept, statuses, problems, seconds, usage)


def json_call(method: str, path: str, token: str | None, body: Any = None, **kw: Any) -> Call:
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    headers.update(kw.pop("headers", {}))
    return Call(method, path, headers, payload, **kw)


# --- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriverRun:
    user_id: int
    token: str
    kit_ids: list[int]  # stop order


@dataclass
class Seeded:
    coordinator: str
    warehouse: str
    drivers: list[DriverRun]
    open_days: list[int]  # scheduled, in date order: what the reservation clients take
    patients: int
    infusion_days: int
    seconds: float
    today: date


def seed(database: Database, drivers: int, stops: int, patients: int = 0) -> Seeded:
    """The pharmacy with ``patients`` (at least one per kit), the users, and ``stops``
    dispatched one-day kits per driver."""
    started = time.perf_counter()
    today = utcnow().date()
    kitted = drivers * stops
    patients = max(patients, kitted)
    last = [started]

    def phase(name: str) -> None:
        now = time.perf_counter()
        print(f"  seed: {name} {now - last[0]:.1f} s", flush=True)
        last[0] = now

    # The planning benchmark's pharmacy, with just enough pumps and poles for one course each.
    planning_bench.build_pharmacy(database, patients, serial_units=patients + 4)
    phase("pharmacy")
    with database.transaction() as session:
        catalog.create_location(
            session,
            {
                "code": "BENCH-STAGE",
                "name": "packing bench",
                "kind": LocationKind.STAGING,
                "site": SITE,
            },
        )

        def person(name: str, role: Role) -> tuple[User, str]:
            user = users.create_user(session, {"name": name, "role": role, "site": SITE})
            return user, users.issue_token(session, user, "bench").secret

        _, coordinator = person("bench coordinator", Role.COORDINATOR)
        packer, warehouse = person("bench warehouse", Role.WAREHOUSE)
        crew = [person(f"bench driver {n}", Role.DRIVER) for n in range(drivers)]
        caller = Caller(packer.id, packer.name, packer.role, packer.site, None)
    with database.transaction() as session:  # every patient's first open day, reserved
        first_days = (
            select(func.min(InfusionDay.id))
            .where(InfusionDay.date >= today, InfusionDay.status == InfusionDayStatus.SCHEDULED)
            .group_by(InfusionDay.patient_id)
        )
        days = session.scalars(
            select(InfusionDay)
            .where(InfusionDay.id.in_(first_days))
            .order_by(InfusionDay.patient_id)
        ).all()
        # Every course's equipment is held, so a reservation in the timed phase does the same
        # work for every patient; only the first ``kitted`` patients get a kit.
        plan = planning.plan_days(session, days, today)
        if plan.days_short or plan.equipment_short:
            raise RuntimeError(f"the kit days are short of stock: {plan}")
        chosen = [(day.patient_id, day.id) for day in days[:kitted]]
    phase("kit days reserved")
    kit_ids: list[int] = []
    for patient_id, day_id in chosen:  # built, every line scanned as reserved, packed
        with database.transaction() as session:
            kit = kits.build(session, caller, patient_id, [day_id], today)
            # What scanning every line as reserved (its own lot or serial, its quantity)
            # leaves behind, written directly: POST /kits/{id}/scans, a line at a time, made
            # the seeding several times slower, and it is not what is measured here.
            for reservation in kits.kit_reservations(session, kit.id):
                reservation.packed_quantity = reservation.quantity
            kits.touch(kit)
            kits.pack(session, caller, kit, today)
            kit_ids.append(kit.id)
    phase("kits built and packed")
    runs = []
    with database.transaction() as session:  # a route per driver for today, dispatched
        for n, (driver, token) in enumerate(crew):
            mine = kit_ids[n * stops : (n + 1) * stops]
            route = deliveries.create_route(session, caller, driver.id, today, mine, today)
            deliveries.dispatch(session, caller, route)
            runs.append(DriverRun(driver.id, token, mine))
    phase("routes dispatched")
    with database.transaction() as session:
        open_days = list(
            session.scalars(
                select(InfusionDay.id)
                .where(InfusionDay.date >= today, InfusionDay.status == InfusionDayStatus.SCHEDULED)
                .order_by(InfusionDay.date, InfusionDay.id)
            ).all()
        )
        day_count = session.scalar(select(func.count()).select_from(InfusionDay)) or 0
    return Seeded(
        coordinator,
        warehouse,
        runs,
        open_days,
        patients,
        int(day_count),
        time.perf_counter() - started,
        today,
    )


def signature() -> str:
    """A signed pad, as the phone sends it: a PNG, base64."""
    image = Image.new("L", (320, 120), "white")
    ImageDraw.Draw(image).line([(12, 90), (100, 20), (200, 100), (308, 25)], fill="black", width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# --- pgbench ---------------------------------------------------------------------------------


def pgbench(admin_url: str, clients: int, jobs: int, seconds: int) -> dict[str, Any]:
    """TPC-B-like ``pgbench`` on a scratch database of its own (scale 1, ``pgbench -i``)."""
    executable = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    url = make_url(admin_url)
    name = f"inventory_bench_pgbench_{uuid.uuid4().hex[:8]}"
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    where = [
        "-h",
        url.host or "127.0.0.1",
        "-p",
        str(url.port or 5432),
        "-U",
        url.username or "postgres",
    ]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        subprocess.run(  # noqa: S603 - pgbench with our own arguments
            [executable, "-i", "-q", *where, name],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        usage = Usage()
        usage.start()
        done = subprocess.run(  # noqa: S603 - pgbench with our own arguments
            [executable, "-c", str(clients), "-j", str(jobs), "-T", str(seconds), *where, name],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
        usage.stop()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    def found(pattern: str) -> float:
        match = re.search(pattern, done.stdout)
        if match is None:
            raise RuntimeError(f"pgbench said something unexpected:\n{done.stdout}")
        return float(match.group(1))

    return {
        "pgbench_scale": int(found(r"scaling factor: (\d+)")),
        "pgbench_clients": clients,
        "pgbench_jobs": jobs,
        "pgbench_seconds": seconds,
        "pgbench_transactions": int(found(r"number of transactions actually processed: (\d+)")),
        "pgbench_tps": round(found(r"tps = ([\d.]+) \(without initial connection time\)"), 1),
        "pgbench_latency_avg_ms": found(r"latency average = ([\d.]+) ms"),
        "pgbench_machine_cpu_busy_pct": round(usage.machine_pct, 1),
    }


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    workers: list[int]  # the worker processes' ids
    log: Path


@contextmanager
def gunicorn(database_url: str, workers: int, app: str = "inventory.wsgi:app") -> Iterator[Server]:
    """gunicorn serving the app as deployed (gunicorn.conf.py); stopped (and its workers with
    it) however the block ends."""
    port = free_port()
    handle, name = tempfile.mkstemp(prefix="inventory-bench-gunicorn-", suffix=".log")
    log = Path(name)
    env = {
        **os.environ,
        "INVENTORY_DATABASE_URL": database_url,
        "WEB_CONCURRENCY": str(workers),
        "BIND": f"127.0.0.1:{port}",
    }
    with os.fdopen(handle, "wb") as output:
        server = subprocess.Popen(  # noqa: S603 - the venv's gunicorn, our own arguments
            [
                Path(sys.executable).parent / "gunicorn",
                "-c",
                str(ROOT / "gunicorn.conf.py"),
                app,
            ],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so it can be stopped as one
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {server.returncode}:\n{tail(log)}")
            probe = Connection("127.0.0.1", port)
            try:
                ready = probe.send(Call("GET", "/ready", {}))
                if ready.status == 200 and len(children_of(server.pid)) >= workers:
                    break
            except (OSError, http.client.HTTPException):
                pass
            finally:
                probe.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not get ready within 60 s:\n{tail(log)}")
            time.sleep(0.2)
        yield Server("127.0.0.1", port, children_of(server.pid), log)
    finally:
        if server.poll() is None:
            server.terminate()  # gunicorn's graceful stop: the master stops its workers
            try:
                server.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
        log.unlink(missing_ok=True)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit, so that the server and the scratch databases are cleaned
    up by the ``finally`` blocks when CI cancels the run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


BARE_APP = "benchmarks.bare_reserve:app"  # the reservation's second baseline


# --- the benchmarks --------------------------------------------------------------------------


def machine(database: Database) -> dict[str, Any]:
    with database.engine.connect() as connection:
        version = connection.execute(text("SHOW server_version")).scalar_one()
        commit = connection.execute(text("SHOW synchronous_commit")).scalar_one()
    return {
        "nproc": os.cpu_count(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "postgresql": str(version),
        "synchronous_commit": str(commit),
    }


def reservations(
    server: Server, data: Seeded, size: Sizes, pool: Iterator[int]
) -> tuple[Outcome, int]:
    """``pool``: the scheduled days still to reserve, in date order (shared by the phases)."""
    lock = threading.Lock()
    lines = Counter[str]()

    def next_call(client: int) -> Call | None:
        with lock:
            day_id = next(pool, None)
        if day_id is None:
            return None
        path = f"{API}/infusion-days/{day_id}/reserve"
        return json_call("POST", path, data.coordinator, tag=day_id)

    def seen(client: int, call: Call, answer: Answer) -> str | None:
        result = json.loads(answer.body)
        with lock:
            lines["reserved"] += result["reserved_lines"]
        if result["days_fully_reserved"] != 1:
            return f"day {call.tag} was not fully reserved: {result}"
        return None

    outcome = drive(
        (server.host, server.port),
        size.clients,
        next_call,
        seconds=size.reserve_seconds,
        warmup=size.warmup_seconds,
        seen=seen,
        server_pids=server.workers,
    )
    if next(pool, None) is None:
        outcome.problems.append("ran out of scheduled days: the window was not fully loaded")
    return outcome, lines["reserved"]


def reads(server: Server, data: Seeded, size: Sizes) -> dict[str, tuple[Outcome, int]]:
    on = data.today.isoformat()
    endpoints: dict[str, Callable[[int], Call]] = {
        "health": lambda client: json_call("GET", "/health", None),
        "me": lambda client: json_call("GET", f"{API}/me", data.coordinator),
        "stock": lambda client: json_call("GET", f"{API}/stock", data.warehouse),
        "routes": lambda client: json_call(
            "GET", f"{API}/routes?date={on}", data.drivers[client % len(data.drivers)].token
        ),
    }
    found: dict[str, tuple[Outcome, int]] = {}
    for name, make in endpoints.items():
        rows = Counter[str]()

        def seen(client: int, call: Call, answer: Answer, rows: Counter[str] = rows) -> None:
            body = json.loads(answer.body)
            rows["rows"] = len(body["items"]) if "items" in body else 1
            return None

        outcome = drive(
            (server.host, server.port),
            size.clients,
            make,
            seconds=size.read_seconds,
            warmup=size.warmup_seconds / 2,
            seen=seen,
            server_pids=server.workers,
        )
        found[name] = (outcome, rows["rows"])
    return found


@dataclass
class Confirmations:
    first: Outcome
    replay: Outcome


def confirmations(server: Server, data: Seeded, size: Sizes) -> Confirmations:
    pad = signature()
    sent: dict[int, list[tuple[Call, bytes]]] = {n: [] for n in range(len(data.drivers))}

    def confirm(driver: DriverRun, kit_id: int) -> Call:
        body = {
            "outcome": "delivered",
            "occurred_at": datetime.now(UTC).isoformat(),
            "recipient_name": "Front door recipient",
            "relationship": "self",
            "signature": pad,
            "latitude": "30.267153",
            "longitude": "-97.743057",
        }
        key = f"bench-pod-{uuid.uuid4().hex}"
        return json_call(
            "POST",
            f"{API}/kits/{kit_id}/delivery",
            driver.token,
            body,
            headers={"Idempotency-Key": key},
            expect=201,
        )

    def confirming(stops: slice) -> tuple[Callable[[int], Call | None], Callable[..., str | None]]:
        queues = {n: list(d.kit_ids[stops]) for n, d in enumerate(data.drivers)}

        def next_call(client: int) -> Call | None:
            if not queues[client]:
                return None
            return confirm(data.drivers[client], queues[client].pop(0))

        def seen(client: int, call: Call, answer: Answer) -> str | None:
            sent[client].append((call, answer.body))
            body = json.loads(answer.body)
            return None if body.get("outcome") == "delivered" else f"{call.path}: {body}"

        return next_call, seen

    def replaying(
        batch: dict[int, list[tuple[Call, bytes]]],
    ) -> tuple[Callable[[int], Call | None], Callable[..., str | None]]:
        queues = {n: list(calls) for n, calls in batch.items()}
        first: dict[int, bytes] = {}

        def next_call(client: int) -> Call | None:
            if not queues[client]:
                return None
            call, body = queues[client].pop(0)
            first[id(call)] = body
            return Call(call.method, call.path, call.headers, call.body, 201, id(call))

        def seen(client: int, call: Call, answer: Answer) -> str | None:
            if answer.headers.get("idempotent-replayed") != "true":
                return f"{call.path}: not marked as a replay"
            if json.loads(answer.body) != json.loads(first[call.tag]):
                return f"{call.path}: the replay differs from the first answer"
            return None

        return next_call, seen

    address = (server.host, server.port)
    clients = len(data.drivers)
    next_call, seen = confirming(slice(None))
    first = drive(address, clients, next_call, seen=seen, server_pids=server.workers)
    next_call, seen = replaying(sent)
    replay = drive(address, clients, next_call, seen=seen, server_pids=server.workers)
    return Confirmations(first, replay)


def afterwards(database: Database, data: Seeded) -> dict[str, Any]:
    kit_ids = [kit_id for driver in data.drivers for kit_id in driver.kit_ids]
    with database.transaction() as session:
        delivered = session.scalar(
            select(func.count())
            .select_from(Kit)
            .where(Kit.id.in_(kit_ids), Kit.status == KitStatus.DELIVERED)
        )
        deliveries_made = session.scalar(
            text("SELECT count(*) FROM deliveries WHERE kit_id = ANY(:ids)"), {"ids": kit_ids}
        )
        problems = ledger_discrepancies(session)
    return {
        "kits_delivered": f"{delivered} / {len(kit_ids)}",
        "deliveries_recorded": deliveries_made,
        "ledger_consistent": not problems,
        "ledger_problems": problems[:5],
    }


def show_table(rows: list[tuple[str, Outcome]]) -> None:
    print(f"  {'what':<44} {'count':>7} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>6}")
    for label, outcome in rows:
        latencies = outcome.latencies()
        print(
            f"  {label:<44} {outcome.count:>7} {outcome.rate:>8.1f}"
            f" {percentile(latencies, 0.5):>8.1f} {percentile(latencies, 0.99):>8.1f}"
            f" {outcome.failed:>6}"
        )


def problems_of(*outcomes: Outcome) -> list[str]:
    found: list[str] = []
    for outcome in outcomes:
        found.extend(outcome.problems)
    return found


def run(
    database_url: str, admin_url: str, quick: bool, clients: int = 16, workers: int | None = None
) -> list[dict[str, Any]]:
    size = sizes(quick, clients, workers)
    with stop_on_sigterm():
        return _run(database_url, admin_url, size, quick)


def _run(database_url: str, admin_url: str, size: Sizes, quick: bool) -> list[dict[str, Any]]:
    started = time.perf_counter()
    database = Database(Settings(database_url=database_url, log_level="WARNING"))
    try:
        context = machine(database)
        # Three patients per kit: days enough for the service's phase and the bare one's.
        data = seed(
            database, size.clients, size.stops_per_driver, 3 * size.clients * size.stops_per_driver
        )
        days = iter(data.open_days)
        print(
            f"seeded in {data.seconds:.1f} s: {data.patients} patients, {data.infusion_days:,}"
            f" infusion days, {len(data.drivers)} drivers x {size.stops_per_driver}"
            " dispatched kits"
        )
        baseline = pgbench(admin_url, 16, 2, size.pgbench_seconds)
        print(f"pgbench: {baseline['pgbench_tps']} tps (scale {baseline['pgbench_scale']})")
        with gunicorn(database_url, size.workers) as server:
            print(f"gunicorn: {size.workers} workers on {server.host}:{server.port}")
            reserved, reserved_lines = reservations(server, data, size, days)
        # Right after, on the database as the service's phase left it: the next days.
        with gunicorn(database_url, size.workers, BARE_APP) as server:
            print(f"gunicorn: the bare Flask + SQL reservation ({BARE_APP})")
            bare, _ = reservations(server, data, size, days)
        with gunicorn(database_url, size.workers) as server:
            read = reads(server, data, size)
            delivered = confirmations(server, data, size)
        checks = afterwards(database, data)
    finally:
        database.dispose()
    common = {
        **context,
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "quick": quick,
        "gunicorn_workers": size.workers,
        "gunicorn_threads": 1,
        "clients": size.clients,
    }
    print("http benchmarks:")
    show_table(
        [
            ("a. POST /infusion-days/{id}/reserve", reserved),
            ("a. the same, bare Flask + SQL", bare),
            *[(f"b. GET {name}", outcome) for name, (outcome, _) in read.items()],
            ("d. POST /kits/{id}/delivery (new key)", delivered.first),
            ("d. POST /kits/{id}/delivery (replayed key)", delivered.replay),
        ]
    )
    ratio = reserved.rate / baseline["pgbench_tps"] if baseline["pgbench_tps"] else None
    results: list[dict[str, Any]] = [
        {
            "benchmark": "http_reservations",
            **common,
            "endpoint": "POST /api/v1/infusion-days/{id}/reserve",
            "seed_seconds": round(data.seconds, 1),
            "patients": data.patients,
            "infusion_days_total": data.infusion_days,
            **reserved.figures(""),
            "reservation_lines": reserved_lines,
            **baseline,
            "ratio_to_pgbench": round(ratio, 3) if ratio is not None else None,
            "target_ratio_to_pgbench": 0.3,
            **bare.figures("bare_"),
            "bare_ratio_to_pgbench": round(bare.rate / baseline["pgbench_tps"], 3)
            if baseline["pgbench_tps"]
            else None,
            "ratio_to_bare": round(reserved.rate / bare.rate, 3) if bare.rate else None,
            "problems": problems_of(reserved, bare)[:5],
        }
    ]
    read_figures: dict[str, Any] = {"benchmark": "http_reads", **common}
    paths = {
        "health": "GET /health",
        "me": "GET /api/v1/me",
        "stock": "GET /api/v1/stock",
        "routes": "GET /api/v1/routes?date=today (driver)",
    }
    for name, (outcome, rows) in read.items():
        read_figures[f"{name}_endpoint"] = paths[name]
        read_figures |= outcome.figures(f"{name}_")
        read_figures[f"{name}_rows"] = rows
    for name in ("me", "stock", "routes"):
        floor = read[name][0].latencies()
        health = read["health"][0].latencies()
        read_figures[f"{name}_p50_over_health"] = round(
            percentile(floor, 0.5) / percentile(health, 0.5), 2
        )
    read_figures["problems"] = problems_of(*(outcome for outcome, _ in read.values()))[:5]
    results.append(read_figures)
    results.append(
        {
            "benchmark": "http_confirmations",
            **common,
            "endpoint": "POST /api/v1/kits/{id}/delivery",
            "drivers": len(data.drivers),
            "stops_per_driver": size.stops_per_driver,
            **delivered.first.figures("", unit="confirmations"),
            **delivered.replay.figures("replay_", unit="confirmations"),
            "replay_speedup": round(delivered.replay.rate / delivered.first.rate, 2)
            if delivered.first.rate
            else None,
            **checks,
            "problems": problems_of(delivered.first, delivered.replay)[:5],
            "total_seconds": round(time.perf_counter() - started, 1),
        }
    )
    return results
