"""Enrolment: the kiosk has a device identity the fleet accepts, and can reach the fleet.

Read with `cryptography` directly (not through provisioning/), so the doctor can diagnose a
state dir that the provisioning code itself would refuse to load: the certificate's validity
(expired fails, expiring within `certificate_warn_days` warns), that it certifies *our* key,
that the enrolment's CA issued it, and the fleet server's `/healthz` answering.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from kiosk.doctor.context import STATE_FILES, DoctorContext
from kiosk.doctor.model import CheckResult, fail, ok, warn

GROUP = "enrolment"


def _reenrol(ctx: DoctorContext, server: str = "<fleet server URL>", *, force: bool = True
             ) -> str:
    return (f"ask ops for an enrolment token, then: kiosk provision --server {server} "
            f"--token <token> --state-dir {ctx.state_dir}" + (" --force" if force else ""))


def _spki(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def check_certificate(ctx: DoctorContext, server: str, now: dt.datetime) -> list[CheckResult]:
    state = ctx.state_dir
    results = []
    try:
        cert = x509.load_pem_x509_certificate((state / "device.crt").read_bytes())
    except (OSError, ValueError) as exc:
        return [fail("enrolment.certificate", f"device.crt unreadable: {exc}",
                     _reenrol(ctx, server))]
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    device = str(names[0].value) if names else "?"
    until = cert.not_valid_after_utc
    left = until - now
    found = f"device {device}, certificate valid until {until:%Y-%m-%d %H:%M} UTC"
    if now < cert.not_valid_before_utc:
        results.append(fail("enrolment.certificate",
                            f"{found}, but not valid before {cert.not_valid_before_utc:%Y-%m-%d} "
                            "(is the clock wrong?)", "fix the clock first (see clock.sync)"))
    elif left.total_seconds() <= 0:
        results.append(fail("enrolment.certificate", f"{found}: EXPIRED {(-left).days} day(s) ago",
                            _reenrol(ctx, server)))
    elif left < dt.timedelta(days=ctx.options.certificate_warn_days):
        results.append(warn("enrolment.certificate", f"{found}: expires in {left.days} day(s)",
                            _reenrol(ctx, server)))
    else:
        results.append(ok("enrolment.certificate", f"{found} ({left.days} days left)"))
    try:
        key = serialization.load_pem_private_key((state / "device.key").read_bytes(), None)
    except (OSError, ValueError, TypeError) as exc:
        results.append(fail("enrolment.key", f"device.key unreadable: {exc}",
                            _reenrol(ctx, server)))
    else:
        if _spki(key.public_key()) != _spki(cert.public_key()):
            results.append(fail("enrolment.key", "device.crt certifies another key than "
                                "device.key (files from two enrolments?)", _reenrol(ctx, server)))
        else:
            results.append(ok("enrolment.key", "device.crt matches device.key"))
    try:
        ca = x509.load_pem_x509_certificate((state / "ca.crt").read_bytes())
        cert.verify_directly_issued_by(ca)
    except (OSError, ValueError, TypeError) as exc:
        results.append(fail("enrolment.ca", f"device.crt is not issued by ca.crt: {exc}",
                            _reenrol(ctx, server)))
    except Exception as exc:  # InvalidSignature and friends
        results.append(fail("enrolment.ca", f"device.crt is not issued by ca.crt "
                            f"({type(exc).__name__})", _reenrol(ctx, server)))
    else:
        results.append(ok("enrolment.ca", f"issued by {ca.subject.rfc4514_string()}"))
    return results


async def check_server(ctx: DoctorContext, server: str) -> CheckResult:
    url = server.rstrip("/") + "/healthz"
    timeout = aiohttp.ClientTimeout(total=ctx.options.http_timeout_s)
    fix = (f"check the network path to the fleet server: `curl -sS {url}` from the kiosk "
           "(DNS, proxy, firewall: outbound HTTPS must be open)")
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(url) as answer:
                if answer.status != 200:
                    return fail("enrolment.server", f"GET {url} answered HTTP {answer.status}",
                                fix + "; if it answers, the server itself is unhealthy: tell ops")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        detail = str(exc) or type(exc).__name__
        return fail("enrolment.server", f"GET {url} failed: {detail}", fix)
    return ok("enrolment.server", f"{url} answers")


async def run(ctx: DoctorContext) -> list[CheckResult]:
    state = ctx.state_dir
    if not state.is_dir():
        return [fail("enrolment.state", f"not enrolled: {state} does not exist",
                     _reenrol(ctx, force=False))]
    missing = [name for name in STATE_FILES if not (state / name).is_file()]
    if missing:
        return [fail("enrolment.state", f"{state} lacks " + ", ".join(missing), _reenrol(ctx))]
    try:
        enrolment = json.loads((state / "enrolment.json").read_text("utf-8"))
        server = str(enrolment["server_url"])
        device_id = str(enrolment.get("device_id", "?"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [fail("enrolment.state", f"enrolment.json unreadable: {exc}", _reenrol(ctx))]
    results = [ok("enrolment.state", f"enrolled as {device_id} with {server}")]
    now = dt.datetime.now(dt.timezone.utc)
    results += await asyncio.to_thread(check_certificate, ctx, server, now)
    results.append(await check_server(ctx, server))
    return results
