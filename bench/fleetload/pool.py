"""Request pools for wrk: every request complete (request line, headers, body), ahead of time.

Kiosk i belongs to wrk thread i % threads; each thread's pool file holds its kiosks' requests
round by round (all its kiosks' r-th heartbeat, then all their (r+1)-th). A thread keeps at
most its share of the connections busy, and a kiosk's next request comes only after all its
other kiosks had one, so with more kiosks per thread than connections per thread a kiosk never
has two requests in flight: its counters reach the server strictly in order, as from a real
agent, and the replay check refuses nothing. The file format is what wrk.lua reads:
`<length>\n<request bytes>` repeated.

With `sessions` (device id → the session once.py opened for it) heartbeats carry a session
MAC instead of an ECDSA signature, as a current agent sends them; without, they are signed
with each kiosk's key, as an agent talking to a server without sessions does.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

from provisioning.sessions import DeviceSession

from cryptography.hazmat.primitives import serialization

from bench.fleetload.payloads import SimKiosk, heartbeat_body, prometheus_text, template_checked
from provisioning.signing import sign_request

HEARTBEAT_PATH = "/api/v1/device/heartbeat"


@dataclass(frozen=True)
class PoolSpec:
    target: str  # "ours" | "pushgateway"
    host: str  # Host header value, host:port
    kiosks: tuple[SimKiosk, ...]
    rounds: int
    seq_start: int  # heartbeat seq of the first round (later runs continue above it)
    sent_at: float  # sent_at/timestamp of the pool: when the run is about to start
    interval_s: int
    sessions: dict[str, DeviceSession] | None = None  # None: ECDSA-signed requests


def _raw(method: str, host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def write_thread_pool(spec: PoolSpec, kiosk_indexes: list[int], path: Path) -> int:
    """Write one wrk thread's pool; returns the number of requests."""
    kiosks = [spec.kiosks[i] for i in kiosk_indexes]
    count = 0
    counter_base = time.time_ns() // 1000  # above any earlier run's counters (µs, as agents)
    with path.open("wb") as out:
        if spec.target == "ours":
            prepared = [(k, spec.sessions[k.device_id] if spec.sessions is not None else
                         serialization.load_pem_private_key(k.key_pem.encode(), None),
                         template_checked(k, spec.interval_s)) for k in kiosks]
            for r in range(spec.rounds):
                seq = spec.seq_start + r
                for kiosk, key, template in prepared:
                    body = heartbeat_body(template, seq, spec.sent_at)
                    if isinstance(key, DeviceSession):
                        headers = key.sign("POST", HEARTBEAT_PATH, body, counter_base + r,
                                           spec.sent_at)
                    else:
                        headers = sign_request(key, kiosk.device_id, counter_base + r, "POST",
                                               HEARTBEAT_PATH, body, spec.sent_at)
                    headers["Content-Type"] = "application/json"
                    raw = _raw("POST", spec.host, HEARTBEAT_PATH, headers, body)
                    out.write(b"%d\n" % len(raw) + raw)
                    count += 1
        else:
            for r in range(spec.rounds):
                seq = spec.seq_start + r
                for kiosk in kiosks:
                    body = prometheus_text(kiosk, seq, spec.sent_at)
                    raw = _raw("PUT", spec.host, f"/metrics/job/kiosk/instance/{kiosk.device_id}",
                               {"Content-Type": "text/plain; version=0.0.4"}, body)
                    out.write(b"%d\n" % len(raw) + raw)
                    count += 1
    return count


def _one(args: tuple[PoolSpec, list[int], Path]) -> int:
    return write_thread_pool(*args)


def write_pools(spec: PoolSpec, threads: int, directory: Path, processes: int = 2) -> int:
    """Write `pool-<t>.bin` for t in 1..threads (wrk numbers its threads from 1), signing in
    `processes` worker processes; returns the total number of requests."""
    jobs = [(spec, list(range(t, len(spec.kiosks), threads)), directory / f"pool-{t + 1}.bin")
            for t in range(threads)]
    if processes <= 1 or threads == 1:
        return sum(_one(job) for job in jobs)
    with multiprocessing.get_context("fork").Pool(min(processes, threads)) as pool:
        return sum(pool.map(_one, jobs))
