"""`kiosk provision ...`: enrol this kiosk, show its enrolment, and the ops tools for bundles
and maintenance credentials. `main(argv) -> int` (the lead hooks it under `kiosk provision`).

    kiosk provision --server URL --token TOKEN [--state-dir DIR] [--ca-file PEM] [--force]
    kiosk provision status [--state-dir DIR] [--json]
    kiosk provision bundle-keygen --out KEYFILE
    kiosk provision bundle-sign --kind catalogue|config --version N --key KEYFILE --out F PAYLOAD
    kiosk provision credential-issue --key KEYFILE --holder NAME (--region R | --kiosk ID)...
        [--valid-for-hours H]   (the 6-digit PIN is read from stdin, never from argv)

Exit codes: 0 done, 1 refused or failed (the message says why and what to do), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
from pathlib import Path

DEFAULT_STATE_DIR = "var/fleet"  # the agent's default too (fleet/agent/settings.py)
STATE_DIR_ENV = "KIOSK_PROVISIONING_DIR"
ACTIONS = ("status", "bundle-keygen", "bundle-sign", "credential-issue")


def _state_dir_default() -> str:
    return os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kiosk provision",
        description="Enrol this kiosk with the fleet server (one-time token from ops).",
    )
    p.add_argument(
        "--server", required=True, help="fleet server URL, e.g. https://fleet.example.cn"
    )
    p.add_argument("--token", required=True, help="one-time enrolment token (kenr_...)")
    _state_dir_arg(p)
    p.add_argument("--ca-file", help="PEM CA that signed the server's TLS certificate")
    p.add_argument("--force", action="store_true", help="replace an existing enrolment")
    p.add_argument(
        "--insecure-http", action="store_true",
        help="allow a plain http:// server that is not this machine (labs only)",
    )
    return p


def _state_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state-dir", default=_state_dir_default(),
        help=f"where the device identity lives (default ${STATE_DIR_ENV} or {DEFAULT_STATE_DIR})",
    )


def action_parser(action: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"kiosk provision {action}")
    if action == "status":
        p.description = "Show this kiosk's enrolment: device id, site, certificate expiry."
        _state_dir_arg(p)
        p.add_argument("--json", action="store_true", help="print JSON")
    elif action == "bundle-keygen":
        p.description = "Create an Ed25519 key for signing bundles (or credentials)."
        p.add_argument("--out", required=True, help="private key file (0600); KEYFILE.pub too")
    elif action == "bundle-sign":
        p.description = "Sign a catalogue or config payload into a kiosk-bundle-v1 file."
        p.add_argument("--kind", required=True, choices=("catalogue", "config"))
        p.add_argument("--version", required=True, type=int)
        p.add_argument("--key", required=True, help="Ed25519 private key (bundle-keygen)")
        p.add_argument("--out", required=True, help="bundle file to write")
        p.add_argument("payload", help="the catalogue or config file to sign")
    elif action == "credential-issue":
        p.description = (
            "Issue a maintenance credential (QR text). Normally the fleet server does this; "
            "this is for labs and emergencies. The PIN is read from stdin."
        )
        p.add_argument("--key", required=True, help="Ed25519 credential key (private)")
        p.add_argument("--holder", required=True, help="ops user name")
        p.add_argument("--region", action="append", default=[], help="6-digit region code")
        p.add_argument("--kiosk", action="append", default=[], help="device id")
        p.add_argument("--valid-for-hours", type=float, default=8.0)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    action = argv[0] if argv and argv[0] in ACTIONS else None
    try:
        if action is None:
            return _enrol(parser().parse_args(argv))
        args = action_parser(action).parse_args(argv[1:])
    except SystemExit as exc:  # argparse: usage errors (2) and --help (0)
        return int(exc.code or 0)
    if action == "status":
        return _status(args)
    if action == "bundle-keygen":
        return _bundle_keygen(args)
    if action == "bundle-sign":
        return _bundle_sign(args)
    return _credential_issue(args)


def _fail(message: str) -> int:
    print(f"kiosk provision: {message}", file=sys.stderr)
    return 1


def _enrol(args: argparse.Namespace) -> int:
    from kiosk import __version__
    from provisioning.device import EnrolmentFailed, enrol, ssl_context_for

    try:
        context = ssl_context_for(args.ca_file)
    except (OSError, ValueError) as exc:
        return _fail(f"cannot use --ca-file {args.ca_file} ({exc})")
    try:
        identity = asyncio.run(
            enrol(
                args.server, args.token, Path(args.state_dir), ssl=context,
                app_version=__version__, force=args.force,
                allow_insecure_http=args.insecure_http,
            )
        )
    except EnrolmentFailed as exc:
        return _fail(exc.message)
    site = identity.site
    print(f"enrolled as {identity.device_id} at {site.name} ({site.site_id}, region {site.region})")
    print(f"certificate valid until {identity.certificate_not_after:%Y-%m-%d} UTC; "
          f"identity in {args.state_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from provisioning.device import DeviceIdentity, IdentityError, NotEnrolled

    try:
        identity = DeviceIdentity.load(Path(args.state_dir))
    except NotEnrolled as exc:
        if args.json:
            print(json.dumps({"enrolled": False}))
        return _fail(str(exc))
    except IdentityError as exc:
        return _fail(f"the enrolment in {args.state_dir} is broken: {exc}")
    not_after = identity.certificate_not_after
    now = dt.datetime.now(dt.timezone.utc)
    problems = identity.problems()
    report = {
        "enrolled": True,
        "device_id": identity.device_id,
        "server_url": identity.server_url,
        "site": identity.site.model_dump(mode="json"),
        "certificate_not_after": not_after.isoformat(timespec="seconds"),
        "certificate_days_left": (not_after - now).days,
        "certificate_expired": now > not_after,
        "enrolled_at": identity.enrolled_at,
        "bundle_signing_key": bool(identity.bundle_signing_key_pem),
        "file_problems": problems,
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        site = identity.site
        print(f"device id:    {identity.device_id}")
        print(f"site:         {site.name} ({site.site_id}, {site.site_type}, region {site.region})")
        print(f"server:       {identity.server_url}")
        expiry = "EXPIRED, enrol again" if report["certificate_expired"] else (
            f"{report['certificate_days_left']} days left")
        print(f"certificate:  valid until {not_after:%Y-%m-%d %H:%M} UTC ({expiry})")
        print(f"enrolled at:  {identity.enrolled_at or '-'}")
        for problem in problems:
            print(f"problem:      {problem}")
    return 1 if report["certificate_expired"] or problems else 0


def _load_ed25519_private(path: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from provisioning.keystore import read_private

    key = serialization.load_pem_private_key(read_private(path), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def _bundle_keygen(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from provisioning.bundles import key_id_of
    from provisioning.keystore import KeystoreError, write_private

    out = Path(args.out)
    if out.exists():
        return _fail(f"{out} exists; refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        write_private(out, private_pem)
        write_private(Path(f"{out}.pub"), public_pem)
    except KeystoreError as exc:
        return _fail(str(exc))
    print(f"key {key_id_of(key.public_key())}: private {out}, public {out}.pub")
    return 0


def _bundle_sign(args: argparse.Namespace) -> int:
    from provisioning.bundles import encode_bundle, make_bundle
    from provisioning.keystore import KeystoreError, write_private

    try:
        key = _load_ed25519_private(args.key)
        payload = Path(args.payload).read_bytes()
        bundle = make_bundle(args.kind, args.version, payload, key)
        write_private(Path(args.out), encode_bundle(bundle))
    except (OSError, ValueError, KeystoreError) as exc:
        return _fail(str(exc))
    print(f"{args.kind} v{args.version} signed with key {bundle['key_id']}: {args.out}")
    return 0


def _credential_issue(args: argparse.Namespace) -> int:
    from provisioning.credentials import CredentialError, issue_credential

    pin = sys.stdin.readline().strip()
    try:
        key = _load_ed25519_private(args.key)
        cred_id, text = issue_credential(
            key, args.holder, regions=args.region, kiosks=args.kiosk, pin=pin,
            valid_for_s=args.valid_for_hours * 3600,
        )
    except (OSError, ValueError, CredentialError) as exc:
        return _fail(str(exc))
    print(json.dumps({"cred_id": cred_id, "credential": text}))
    return 0
