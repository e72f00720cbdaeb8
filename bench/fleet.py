"""The fleet server under heartbeat load, against a Prometheus Pushgateway as the peer.

One run, on SQLite, with everything on 127.0.0.1 and free ports:
1. `kiosk fleet-server init` makes the CA and an admin; then `--page-kiosks` kiosks (default
   10,000, at 4 per site) are created directly in the database through the server's own
   parts: each has its own P-256 key and a certificate issued by the fleet CA from its CSR
   (`FleetCA.issue_device_certificate`), and the row enrolment writes. Enrolling them over
   HTTP one by one would take ~35 s (one token and one enrolment transaction each) and
   measure nothing this benchmark is about; the one kiosk of step 5 enrols for real.
2. `kiosk fleet-server serve` starts as a subprocess. The load generator (bench/fleetload,
   another process) sends every kiosk's first heartbeat once (untimed), so the whole fleet
   is online with its conditions and alerts, and the server's key cache is warm.
3. "ours": `--kiosks` kiosks (default 2,000) send signed heartbeats (valid wire Heartbeats,
   strictly increasing counters per kiosk) with `--connections` connections for `--duration`
   seconds: heartbeats/s, p50/p99 latency, and the CPU used by the server and the generator.
   The generator signs a pool of requests before the run (Python, 2 processes) and `wrk`
   sends them, so the client's cost during the run is wrk's alone (`wrk_cpu_cores`).
   `--signing session` (default): in step 2 every kiosk opens a device session
   (provisioning/sessions.py) and the pool carries session MACs, as current agents send;
   `--signing ecdsa`: every heartbeat signed with the kiosk's key, as before sessions.
4. "pushgateway": the same generator PUTs the same statuses as Prometheus text to
   `prometheus-pushgateway` (job kiosk, instance = kiosk id) at the same concurrency.
5. Meanwhile (the server is idle then) a real kiosk enrols through the enrolment endpoint
   (`provisioning.device.enrol`), heartbeats twice declaring a 5 s interval (the wire's
   minimum) and stops: `offline_alert_s` is the time from its last heartbeat to its open
   offline alert, both on the server's clock; the bound is 3 intervals + the evaluator period.
6. With 10,000 kiosks: server time of the overview and kiosk list (API, and the dashboard's
   `/` and `/kiosks` when fleet/server/dashboard exists), median of 5 requests each.

Progress goes to stderr; the last stdout line is one JSON object:
{"ours": {"rps", "p50_ms", "p99_ms", ...}, "pushgateway": {"rps", "p50_ms", "p99_ms", ...},
 "ratio": ours/pushgateway, "offline_alert_s", "offline_bound_s", "pages_ms": {...}, ...}
Goals (issue 6; reported, not asserted): >= 5,000 heartbeats/s with p99 <= 50 ms, ratio >=
1.0, offline alert within 3 intervals + 5 s, pages <= 1 s with 10,000 kiosks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The project root first: this file is bench/fleet.py, and with bench/ first on sys.path
# `import fleet` would import this script instead of the fleet package.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from yarl import URL  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from fleet.server import ops  # noqa: E402
from fleet.server.db import open_database  # noqa: E402
from fleet.server.migrate import migrate  # noqa: E402
from fleet.server.enrolment import new_device_id  # noqa: E402
from fleet.server.schema import devices  # noqa: E402
from fleet.wire import Heartbeat, Site  # noqa: E402
from provisioning.ca import FleetCA, public_key_of  # noqa: E402
from provisioning.device import DeviceIdentity, enrol, make_csr  # noqa: E402

KIOSK = Path(sys.executable).with_name("kiosk")
PUSHGATEWAY = "prometheus-pushgateway"
ADMIN = "bench-admin"
PASSWORD_ENV = "BENCH_FLEET_ADMIN_PASSWORD"
OFFLINE_INTERVAL_S = 5  # the wire's minimum heartbeat interval
KIOSKS_PER_SITE = 4
# Wuxi (3202xx), Suzhou (3205xx), Nanjing (3201xx) districts: list filters have work to do.
REGIONS = ("320205", "320206", "320211", "320213", "320214", "320505", "320506", "320106")
SITE_TYPES = ("bank", "post", "telecom", "hall")


def log(message: str) -> None:
    print(f"[bench/fleet {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


# --- step 1: CA, admin and kiosks ----------------------------------------------------------

def init_server(state_dir: Path, password: str) -> None:
    env = {**os.environ, PASSWORD_ENV: password}
    subprocess.run([str(KIOSK), "fleet-server", "init", "--state-dir", str(state_dir),
                    "--admin", ADMIN, "--password-env", PASSWORD_ENV],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def _issue(job: tuple[Path, list[str], float]) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Keys and certificates for one site per entry of `site_ids` (a worker process)."""
    ca_dir, site_ids, now = job
    ca = FleetCA.load(ca_dir)
    out = []
    for site_id in site_ids:
        key = ec.generate_private_key(ec.SECP256R1())
        device_id = new_device_id(site_id)
        cert_pem = ca.issue_device_certificate(make_csr(key), device_id, site_id)
        public_pem = public_key_of(cert_pem).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
        # The row enrolment.enrol() writes for a new kiosk.
        row = {"id": device_id, "site_id": site_id, "certificate_pem": cert_pem,
               "public_key_pem": public_pem, "enrolled_at": now, "interval_s": 30,
               "app_version": "0.9.0", "state": "new", "state_since": now}
        kiosk = {"device_id": device_id, "site_id": site_id, "key_pem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode("ascii")}
        out.append((row, kiosk))
    return out


async def create_kiosks(state_dir: Path, count: int) -> list[dict[str, str]]:
    """`count` kiosks in `count / 4` sites, straight into the server's database (see the
    module docstring); returns [{device_id, site_id, key_pem}] for the generator."""
    db = open_database(f"sqlite+aiosqlite:///{state_dir}/fleet.db", pool_size=1)

    def no_fsync(dbapi_conn: Any, _record: Any) -> None:
        # Bootstrap only (the server reopens the file with its own synchronous=FULL): a
        # power cut here would only cost a benchmark run.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        cur.close()

    sa.event.listen(db.engine.sync_engine, "connect", no_fsync)
    now = time.time()
    site_of_kiosk = [f"bench-{i // KIOSKS_PER_SITE:05d}" for i in range(count)]
    try:
        await migrate(db)
        for s, site_id in enumerate(dict.fromkeys(site_of_kiosk)):
            await ops.create_site(db, Site(
                site_id=site_id, site_type=SITE_TYPES[s % len(SITE_TYPES)],
                name=f"测试网点 {s}", address=f"测试路 {s} 号", region=REGIONS[s % len(REGIONS)],
                longitude=120.0 + (s % 100) / 100, latitude=31.0 + (s // 100 % 100) / 100),
                now=now)
        workers = max(1, min(4, os.cpu_count() or 1))
        chunks = [(state_dir / "ca", site_of_kiosk[i::workers], now) for i in range(workers)]
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            made = [pair for part in pool.map(_issue, chunks) for pair in part]
        async with db.engine.begin() as conn:
            await conn.execute(devices.insert(), [row for row, _ in made])
    finally:
        await db.dispose()
    return [kiosk for _, kiosk in made]


# --- processes -----------------------------------------------------------------------------

class Process:
    """A child process this benchmark started: its CPU seconds so far, and a clean stop."""

    def __init__(self, argv: list[str], log_path: Path, **kw: Any) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, **kw)

    def cpu_s(self) -> float:
        """utime + stime of the process and its live children, from /proc."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in [self.proc.pid, *self._children()]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def _children(self) -> list[int]:
        found = []
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            try:
                found += [int(p) for p in task.read_text().split()]
            except FileNotFoundError:
                pass
        return found

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


async def wait_ready(url: str, proc: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.proc.poll() is not None:
                raise SystemExit(f"{url} exited early:\n{proc.tail()}")
            try:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout} s:\n{proc.tail()}")


async def generate(target: str, url: str, kiosks_file: Path, *, limit: int, offset: int = 0,
                   connections: int, duration: int, seq_start: int, rounds: int = 0,
                   max_rps: float, once: bool = False, extra: tuple[str, ...] = (),
                   on_start: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run the load generator process and return its JSON result."""
    argv = [sys.executable, "-m", "bench.fleetload", "--target", target, "--url", url,
            "--kiosks", str(kiosks_file), "--limit", str(limit), "--offset", str(offset),
            "--connections", str(connections), "--duration", f"{duration:g}",
            "--seq-start", str(seq_start), "--max-rps", f"{max_rps:g}"]
    if rounds:
        argv += ["--rounds", str(rounds)]
    if once:
        argv.append("--once")
    argv += extra
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    assert proc.stderr is not None and proc.stdout is not None
    while line := await proc.stderr.readline():  # "prepared ...; sending": the timed part
        sys.stderr.write(line.decode(errors="replace"))
        if b"sending for" in line and on_start is not None:
            on_start()
    out = (await proc.stdout.read()).decode()
    if await proc.wait() != 0 or not out.strip():
        raise SystemExit(f"load generator for {target} failed:\n{out[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


# --- server-side figures -------------------------------------------------------------------

async def ingest_counters(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with http.get(f"{base}/metrics") as r:
        text = await r.text()
    wanted = {"fleet_heartbeats_accepted", "fleet_heartbeats_refused", "fleet_heartbeat_batches",
              "fleet_heartbeat_batch_seconds", "fleet_heartbeat_batch_size_max"}
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name in wanted:
            values[family.name] = sum(s.value for s in family.samples
                                      if not s.name.endswith("_created"))
    return values


def ingest_delta(before: dict[str, float], after: dict[str, float], seconds: float
                 ) -> dict[str, Any]:
    d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    batches = d.get("fleet_heartbeat_batches", 0)
    return {
        "accepted": int(d.get("fleet_heartbeats_accepted", 0)),
        "refused": int(d.get("fleet_heartbeats_refused", 0)),
        "batches": int(batches),
        "mean_batch": round(d.get("fleet_heartbeats_accepted", 0) / batches, 1) if batches else 0,
        "largest_batch": int(after.get("fleet_heartbeat_batch_size_max", 0)),
        "mean_batch_ms": round(d.get("fleet_heartbeat_batch_seconds", 0) / batches * 1000, 2)
        if batches else 0,
        # Share of the run the SQLite writer thread spent in batches (1.0: it never idled).
        "writer_busy": round(d.get("fleet_heartbeat_batch_seconds", 0) / seconds, 2)
        if seconds else 0,
    }


async def login(http: aiohttp.ClientSession, base: str, password: str) -> str:
    async with http.post(f"{base}/api/v1/auth/login",
                         json={"username": ADMIN, "password": password}) as r:
        if r.status != 200:
            raise SystemExit(f"login failed: {r.status} {await r.text()}")
        return str((await r.json())["token"])


# --- step 5: offline detection -------------------------------------------------------------

async def offline_detection(base: str, token: str, site_id: str, work: Path,
                            evaluate_every_s: float) -> dict[str, Any]:
    """Enrol a kiosk for real, heartbeat twice at a 5 s interval, stop, time the alert."""
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/v1/sites/{site_id}/enrolment-tokens",
                             json={"ttl_s": 600}, headers=auth) as r:
            if r.status != 201:
                raise SystemExit(f"enrolment token: {r.status} {await r.text()}")
            enrol_token = (await r.json())["token"]
        identity = await enrol(base, enrol_token, work / "offline-kiosk", app_version="0.9.0",
                               allow_insecure_http=True)
        ident = DeviceIdentity.load(work / "offline-kiosk")
        assert ident.device_id == identity.device_id
        last_local = 0.0
        for seq in (1, 2):
            if seq > 1:
                await asyncio.sleep(OFFLINE_INTERVAL_S)
            hb = Heartbeat(seq=seq, sent_at=time.time(), interval_s=OFFLINE_INTERVAL_S,
                           app={"state": "running", "screen": "attract"},
                           versions={"app": "0.9.0"})
            body = hb.model_dump_json().encode()
            headers = ident.sign("POST", "/api/v1/device/heartbeat", body,
                                 time.time_ns() // 1000, time.time())
            headers["Content-Type"] = "application/json"
            async with http.post(f"{base}/api/v1/device/heartbeat", data=body,
                                 headers=headers) as r:
                if r.status != 200:
                    raise SystemExit(f"offline kiosk heartbeat: {r.status} {await r.text()}")
            last_local = time.time()
        bound = 3 * OFFLINE_INTERVAL_S + evaluate_every_s
        deadline = time.monotonic() + bound + 30
        alert = None
        while time.monotonic() < deadline:
            async with http.get(f"{base}/api/v1/alerts",
                                params={"device_id": ident.device_id, "rule": "offline"},
                                headers=auth) as r:
                found = (await r.json())["alerts"] if r.status == 200 else []
            if found:
                alert = found[0]
                seen_local = time.time()
                break
            await asyncio.sleep(0.1)
        if alert is None:
            return {"offline_alert_s": None, "offline_bound_s": bound,
                    "detail": "no offline alert within the bound + 30 s"}
        async with http.get(f"{base}/api/v1/kiosks/{ident.device_id}", headers=auth) as r:
            kiosk = (await r.json())["kiosk"]
    return {"offline_alert_s": round(alert["first_seen"] - kiosk["last_seen"], 2),
            "offline_observed_s": round(seen_local - last_local, 2),
            "offline_bound_s": bound, "offline_goal_s": 3 * OFFLINE_INTERVAL_S + 5,
            "offline_interval_s": OFFLINE_INTERVAL_S, "offline_severity": alert["severity"]}


# --- step 6: pages -------------------------------------------------------------------------

async def time_get(http: aiohttp.ClientSession, url: str, runs: int, **kw: Any
                   ) -> dict[str, Any]:
    """Median and max wall time of `runs` GETs on loopback (one at a time: the server's
    time to answer, with no queueing), or the status of a failed one."""
    times = []
    size = 0
    for _ in range(runs):
        started = time.perf_counter()
        async with http.get(url, allow_redirects=False, **kw) as r:
            body = await r.read()
            if r.status != 200:
                log(f"GET {url}: {r.status} {body[:200]!r}")
                return {"error": r.status}
        times.append(time.perf_counter() - started)
        size = len(body)
    return {"median": ms(statistics.median(times)), "max": ms(max(times)), "bytes": size}


async def dashboard_session(http: aiohttp.ClientSession, base: str, password: str) -> bool:
    """Log in through the dashboard's own form (its session cookie lands in `http`)."""
    async with http.get(f"{base}/login") as r:
        if r.status != 200:
            return False
        page = await r.text()
    form: dict[str, str] = {"username": ADMIN, "password": password}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page):
        form.setdefault(name, value)
    async with http.post(f"{base}/login", data=form, allow_redirects=False) as r:
        return r.status in (200, 302, 303) and bool(http.cookie_jar.filter_cookies(URL(base)))


async def pages(base: str, token: str, password: str, runs: int) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    result: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        for name, path in (("api_overview", "/api/v1/overview"),
                           ("api_kiosks", "/api/v1/kiosks"),
                           ("api_kiosks_1000", "/api/v1/kiosks?limit=1000"),
                           ("api_kiosks_filtered", "/api/v1/kiosks?region=3202&state=online"
                                                   "&site_type=bank"),
                           ("api_kiosks_alerting", "/api/v1/kiosks?alert=any")):
            result[name] = await time_get(http, base + path, runs, headers=auth)
    if (ROOT / "fleet" / "server" / "dashboard").exists():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            if await dashboard_session(http, base, password):
                for name, path in (("dashboard_overview", "/"), ("dashboard_kiosks", "/kiosks")):
                    result[name] = await time_get(http, base + path, runs)
            else:
                result["dashboard"] = "present, but logging in through /login failed"
    else:
        result["dashboard"] = "fleet/server/dashboard not present"
    return result


# --- the run -------------------------------------------------------------------------------

async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    load_start = os.getloadavg()[0]
    state = work / "fleet-server"
    password = secrets.token_urlsafe(18)
    t0 = time.perf_counter()
    init_server(state, password)
    total = max(args.kiosks, args.page_kiosks)
    log(f"creating {total} kiosks (keys, CA certificates, rows)")
    kiosks = await create_kiosks(state, total)
    kiosks_file = work / "kiosks.json"
    kiosks_file.write_text(json.dumps(kiosks))
    bootstrap_s = time.perf_counter() - t0

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = [*shlex.split(args.server_command), "--state-dir", str(state), "--port", str(port),
             "--workers", str(args.workers)]
    server = Process(serve, work / "server.log")
    pushgateway: Process | None = None
    result: dict[str, Any] = {}
    try:
        await wait_ready(f"{base}/healthz", server)
        log(f"server up on {base} (pid {server.proc.pid}, {args.workers} process(es)); "
            f"priming {total} kiosks")
        # Every kiosk's first heartbeat, sent once each (aiohttp, untimed): a kiosk's first
        # heartbeat costs the server more than later ones (key read, certificate parsed,
        # device rows and alerts created), and a wrk run has a fixed length.
        sessions_file = work / "sessions.json"
        session = args.signing == "session"
        prime = await generate("ours", base, kiosks_file, limit=total, connections=32,
                               duration=0, seq_start=1, max_rps=0, once=True,
                               extra=("--sessions-out", str(sessions_file)) if session else ())
        primed = prime["statuses"].get("200", 0)
        log(f"primed {primed}/{total} kiosks at {prime['rps']}/s")
        async with aiohttp.ClientSession() as http:
            before = await ingest_counters(http, base)
            cpu_before = server.cpu_s()
            started: dict[str, float] = {}
            ours = await generate("ours", base, kiosks_file, limit=args.kiosks,
                                  connections=args.connections, duration=args.duration,
                                  seq_start=2, max_rps=args.max_rps,
                                  extra=("--sessions", str(sessions_file)) if session else (),
                                  on_start=lambda: started.setdefault("t", time.perf_counter()))
            span = time.perf_counter() - started.get("t", time.perf_counter())
            ours["server_cpu_cores"] = round((server.cpu_s() - cpu_before) / span, 2)
            # CPU per heartbeat: with one process the server cannot use more than one core
            # (one GIL), so 1000 / this is its ceiling in heartbeats/s per process.
            ours["server_cpu_ms_per_heartbeat"] = (
                round(ours["server_cpu_cores"] * 1000 / ours["rps"], 3) if ours["rps"] else None)
            ours["ingest"] = ingest_delta(before, await ingest_counters(http, base),
                                          ours["duration_s"])
            token = await login(http, base, password)

        pg_port = free_port()
        pushgateway = Process([PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{pg_port}",
                               "--persistence.file="], work / "pushgateway.log")
        await wait_ready(f"http://127.0.0.1:{pg_port}/-/ready", pushgateway)
        log("pushgateway up; the offline-detection kiosk starts now")
        offline_task = asyncio.create_task(offline_detection(
            base, token, kiosks[0]["site_id"], work, args.evaluate_every))
        pg_started: dict[str, float] = {}
        pg_cpu_before = pushgateway.cpu_s()
        peer = await generate("pushgateway", f"http://127.0.0.1:{pg_port}", kiosks_file,
                              limit=args.kiosks, connections=args.connections,
                              duration=args.duration, seq_start=2, max_rps=args.max_rps,
                              on_start=lambda: pg_started.setdefault("t", time.perf_counter()))
        pg_span = time.perf_counter() - pg_started.get("t", time.perf_counter())
        peer["server_cpu_cores"] = round((pushgateway.cpu_s() - pg_cpu_before) / pg_span, 2)
        pushgateway.stop()
        log("pushgateway done; waiting for the offline alert")
        offline = await offline_task
        log(f"timing pages with {total + 1} kiosks")
        pages_ms = await pages(base, token, password, args.page_runs)
    finally:
        if pushgateway is not None:
            pushgateway.stop()
        server.stop()

    keep = ("rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "requests", "failed", "errors",
            "exhausted", "kiosks", "connections", "duration_s", "server_cpu_cores",
            "wrk_cpu_cores", "presign_s", "prepared")
    result["ours"] = {k: ours[k] for k in keep} | {
        "server_cpu_ms_per_heartbeat": ours["server_cpu_ms_per_heartbeat"],
        # With --workers > 1 these come from whichever process answered /metrics.
        "ingest": ours["ingest"]}
    result["pushgateway"] = {k: peer[k] for k in keep}
    result["ratio"] = round(ours["rps"] / peer["rps"], 2) if peer["rps"] else None
    result["signing"] = args.signing
    result.update(offline)
    result["pages_ms"] = pages_ms
    result["page_kiosks"] = total + 1
    result["bootstrap"] = {"kiosks": total, "seconds": round(bootstrap_s, 1),
                           "how": "keys + CA-issued certificates + enrolment rows written "
                                  "directly (FleetCA.issue_device_certificate); one kiosk "
                                  "enrolled over HTTP (provisioning.device.enrol)",
                           "primed": primed, "prime_rps": prime["rps"]}
    result["failed"] = (ours["failed"] + peer["failed"] + (total - primed)
                        + (0 if offline.get("offline_alert_s") is not None else 1))
    result["machine"] = {"cpus": os.cpu_count(), "server_workers": args.workers,
                         # Other work on the machine skews every figure: a load average
                         # above the CPU count means this run did not have the cores alone.
                         "loadavg_start": load_start, "loadavg_end": os.getloadavg()[0],
                         "database": "sqlite (WAL, synchronous=FULL)"}
    result["goals"] = {
        "rps_5000": ours["rps"] >= 5000, "p99_50ms": ours["p99_ms"] <= 50,
        "ratio_1": bool(result["ratio"] and result["ratio"] >= 1.0),
        "offline_within_3_intervals_plus_5s": offline.get("offline_alert_s") is not None
        and offline["offline_alert_s"] <= offline["offline_goal_s"],
        "pages_1s": all(v.get("median", 10**9) <= 1000 for v in pages_ms.values()
                        if isinstance(v, dict)),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kiosks", type=int, default=2000, help="kiosks sending load")
    parser.add_argument("--page-kiosks", type=int, default=10_000,
                        help="kiosks in the fleet when pages are timed")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    parser.add_argument("--max-rps", type=float, default=15_000.0,
                        help="the generator's pools are sized for this rate")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="fleet server request processes (default: one per core; on "
                             "SQLite a writer process comes with them)")
    parser.add_argument("--page-runs", type=int, default=5)
    parser.add_argument("--server-command", default=f"{KIOSK} fleet-server serve",
                        help="how to start the server (e.g. a patched one, to compare)")
    parser.add_argument("--evaluate-every", type=float, default=1.0,
                        help="the server's evaluator period (its default; for the bound)")
    parser.add_argument("--keep", type=Path, help="keep the work directory here (logs)")
    parser.add_argument("--signing", choices=("session", "ecdsa"), default="session",
                        help="how the load's heartbeats authenticate: device-session MACs "
                             "or an ECDSA signature each")
    parser.add_argument("--smoke", action="store_true",
                        help="a CI-sized run (~30 s): 64 kiosks, 120 in the fleet, 4 "
                             "connections, 2 s per load run; figures mean nothing")
    args = parser.parse_args(argv)
    if args.smoke:
        args.kiosks, args.page_kiosks, args.connections = 64, 120, 4
        args.duration, args.max_rps, args.page_runs = 2, 3000.0, 2
    if shutil.which("wrk") is None or shutil.which(PUSHGATEWAY) is None:
        raise SystemExit("needs the Debian packages wrk and prometheus-pushgateway")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(run(args, work))
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
