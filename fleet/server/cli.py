"""`kiosk fleet-server ...`: run the fleet server and do the first ops chores from a shell.

    serve   --state-dir DIR [--db URL] [--host H] [--port P] [--workers N]
    migrate --state-dir DIR [--db URL]                 (schema to this version; serve does it too)
    init    --state-dir DIR [--db URL] --admin NAME    (fleet CA + first admin user)
    users add NAME --role viewer|operator|admin [--region 320200 ...]
    sites add --id ID --type bank|post|telecom|hall --name N --region 320205 --lon X --lat Y
    tokens create --site ID [--ttl SECONDS]          (prints the one-time token once)
    revoke DEVICE_ID

Passwords come from `--password-env VAR` or a prompt, never from the command line itself
(it would land in shell history and `ps`). The database defaults to SQLite in the state
directory; `--db postgresql+asyncpg://user@host/db` selects PostgreSQL (or FLEET_DB_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

STATE_ENV = "FLEET_STATE_DIR"
DB_ENV = "FLEET_DB_URL"


def _settings(args: argparse.Namespace, **extra: Any) -> Any:
    from fleet.server.settings import ServerSettings

    return ServerSettings(state_dir=Path(args.state_dir).resolve(), db_url=args.db or "",
                          **extra)


async def _with_db(args: argparse.Namespace, action: Callable[[Any], Awaitable[int]]) -> int:
    from fleet.server.db import open_database
    from fleet.server.migrate import migrate

    settings = _settings(args)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(settings.database_url)
    try:
        await migrate(db)
        return await action(db)
    finally:
        await db.dispose()


def _password(args: argparse.Namespace, prompt: str) -> str:
    if args.password_env:
        value = os.environ.get(args.password_env, "")
        if not value:
            raise SystemExit(f"environment variable {args.password_env} is empty")
        return value
    if not sys.stdin.isatty():
        raise SystemExit("no terminal to ask for the password: use --password-env VAR")
    first = getpass.getpass(prompt)
    if getpass.getpass("again: ") != first:
        raise SystemExit("the passwords differ")
    return first


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from fleet.server.app import create_app

    bundle_key = Path(args.bundle_signing_key or Path(args.state_dir) / "bundle-signing.pub")
    settings = _settings(args, heartbeat_interval_s=args.interval,
                         run_evaluator=not args.no_evaluator,
                         bundle_signing_key_pem=bundle_key.read_text("ascii")
                         if bundle_key.is_file() else "",
                         ingest_socket=args.ingest_socket or "")
    if args.bundle_signing_key and not bundle_key.is_file():
        print(f"no bundle signing key at {bundle_key}", file=sys.stderr)
        return 2
    if not (settings.ca_dir / "ca.crt").exists():
        print(f"no fleet CA in {settings.ca_dir}: run `kiosk fleet-server init` first",
              file=sys.stderr)
        return 2
    if args.role == "writer":
        from fleet.server.writer import run_writer

        return run_writer(settings, args.ingest_socket)
    if args.workers > 1:
        return _serve_workers(args, settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s "
                        "%(message)s")
    # The SQLite writer thread gives up the GIL at every row it steps; with the default 5 ms
    # switch interval each time it wants it back it can wait behind the event loop for that
    # long, which turns a 10 ms batch into 50 ms. A shorter interval keeps batches short.
    sys.setswitchinterval(float(os.environ.get("FLEET_SWITCH_INTERVAL", "0.0005")))
    app = create_app(settings)
    app.on_startup.append(_freeze_startup_objects)  # after the app's own resources opened
    print(f"fleet server on http://{args.host}:{args.port} "
          f"({'PostgreSQL' if settings.database_url.startswith('postgresql') else 'SQLite'})",
          flush=True)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None,
                shutdown_timeout=10, reuse_port=args.reuse_port or None)
    return 0


async def _freeze_startup_objects(_app: Any) -> None:
    freeze_startup_objects()


def freeze_startup_objects() -> None:
    """Keep everything that exists once the server is up out of the cyclic garbage
    collector's way (gc.freeze). Those ~110,000 objects (modules, models, routes, caches)
    live as long as the process; without this each full collection walked them all, a
    40-70 ms pause of the event loop about once a second under load, which was the whole
    p99 of the heartbeat path."""
    gc.collect()
    gc.freeze()


def _serve_workers(args: argparse.Namespace, settings: Any) -> int:
    """N server processes on one port (SO_REUSEPORT: the kernel spreads connections), each a
    complete server; one of them wins the evaluator lock. On SQLite a writer process owns the
    heartbeat group commit (fleet/server/writer.py): it starts first, the request processes
    send it their verified heartbeats, and it is restarted if it dies (heartbeats answer 503
    meanwhile; agents keep them and retry). SIGTERM/SIGINT stops the request processes, then
    the writer once they are gone (it answers what they still sent). The exit code is the
    first non-zero one of the request processes."""
    from fleet.server.writer_link import remove_stale_socket, socket_path_for

    asyncio.run(_with_db(args, _no_action))  # tables exist before the workers race for them
    base = [sys.executable, "-m", "fleet.server.cli", "serve", "--state-dir", args.state_dir,
            "--interval", str(args.interval), "--workers", "1"]
    if args.db:
        base += ["--db", args.db]
    if args.bundle_signing_key:
        base += ["--bundle-signing-key", args.bundle_signing_key]
    argv = base + ["--host", args.host, "--port", str(args.port), "--reuse-port"]
    if args.no_evaluator:
        argv.append("--no-evaluator")
    writer_argv: list[str] | None = None
    socket_path = ""
    if settings.database_url.startswith("sqlite"):
        socket_path = socket_path_for(settings.state_dir)
        writer_argv = base + ["--role", "writer", "--ingest-socket", socket_path]
        argv += ["--ingest-socket", socket_path]
    stopping = False

    def start_writer() -> subprocess.Popen[bytes] | None:
        if writer_argv is None:
            return None
        remove_stale_socket(socket_path)
        proc = subprocess.Popen(writer_argv)
        deadline = time.monotonic() + 20
        while not os.path.exists(socket_path) and proc.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return proc

    writer = start_writer()
    if writer is not None and (writer.poll() is not None or not os.path.exists(socket_path)):
        print("the heartbeat writer process did not start", file=sys.stderr)
        if writer.poll() is None:
            writer.terminate()
        return 1
    children = [subprocess.Popen(argv) for _ in range(args.workers)]

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while any(child.poll() is None for child in children):
        if writer is not None and writer.poll() is not None and not stopping:
            print(f"the heartbeat writer exited ({writer.returncode}); restarting it",
                  file=sys.stderr, flush=True)
            time.sleep(0.5)
            writer = start_writer()
        time.sleep(0.2)
    if writer is not None and writer.poll() is None:
        writer.terminate()
        try:
            writer.wait(30)
        except subprocess.TimeoutExpired:
            writer.kill()
            writer.wait()
    if socket_path:
        remove_stale_socket(socket_path, final=True)
    codes = [child.returncode for child in children]
    return next((c for c in codes if c != 0), 0)


async def _no_action(_db: Any) -> int:
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from fleet.server.migrate import run_migrate

    settings = _settings(args)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(run_migrate(settings.database_url))


def cmd_init(args: argparse.Namespace) -> int:
    from fleet.server import users
    from provisioning.ca import FleetCA

    settings = _settings(args)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    if (settings.ca_dir / "ca.crt").exists():
        print(f"fleet CA already in {settings.ca_dir} (kept)")
    else:
        FleetCA.create(settings.ca_dir)
        print(f"fleet CA created in {settings.ca_dir}")
    from provisioning.sessions import TICKET_KEY_FILE, create_ticket_key

    # Every server process and host behind the balancer needs this same file (sessions).
    if create_ticket_key(settings.state_dir):
        print(f"session ticket key created: {settings.state_dir / TICKET_KEY_FILE}")
    else:
        print(f"session ticket key already in {settings.state_dir} (kept)")
    generated = None
    if args.password_env or sys.stdin.isatty():
        password = _password(args, f"password for {args.admin}: ")
    else:
        generated = password = secrets.token_urlsafe(15)

    async def action(db: Any) -> int:
        try:
            await users.add_user(db, args.admin, password, "admin", (), now=time.time())
        except users.UserError as exc:
            print(f"{exc.code}: {exc.detail}", file=sys.stderr)
            return 1
        print(f"admin user {args.admin} created")
        if generated:
            print(f"password (shown once): {generated}")
        return 0

    return asyncio.run(_with_db(args, action))


def cmd_users_add(args: argparse.Namespace) -> int:
    from fleet.server import users

    password = _password(args, f"password for {args.name}: ")

    async def action(db: Any) -> int:
        try:
            await users.add_user(db, args.name, password, args.role, tuple(args.region),
                                 now=time.time())
        except users.UserError as exc:
            print(f"{exc.code}: {exc.detail}", file=sys.stderr)
            return 1
        print(f"user {args.name} ({args.role}) created")
        return 0

    return asyncio.run(_with_db(args, action))


def cmd_sites_add(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from fleet.server import ops
    from fleet.server.errors import ApiProblem
    from fleet.wire import Site

    try:
        site = Site(site_id=args.id, site_type=args.type, name=args.name, address=args.address,
                    region=args.region, longitude=args.lon, latitude=args.lat)
    except ValidationError as exc:
        print(f"invalid site: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}",
              file=sys.stderr)
        return 1

    async def action(db: Any) -> int:
        try:
            await ops.create_site(db, site, now=time.time())
        except ApiProblem as exc:
            print(f"{exc.code}: {exc.detail}", file=sys.stderr)
            return 1
        print(f"site {site.site_id} created")
        return 0

    return asyncio.run(_with_db(args, action))


def cmd_tokens_create(args: argparse.Namespace) -> int:
    from fleet.server import ops
    from fleet.server.errors import ApiProblem

    async def action(db: Any) -> int:
        try:
            token, expires_at = await ops.create_enrolment_token(
                db, args.site, ttl_s=args.ttl, now=time.time(), created_by="cli")
        except ApiProblem as exc:
            print(f"{exc.code}: {exc.detail}", file=sys.stderr)
            return 1
        print(token)
        print(f"valid until {time.strftime('%Y-%m-%d %H:%M:%S %z', time.localtime(expires_at))},"
              " once", file=sys.stderr)
        return 0

    return asyncio.run(_with_db(args, action))


def cmd_revoke(args: argparse.Namespace) -> int:
    from fleet.server import ops
    from fleet.server.errors import ApiProblem

    async def action(db: Any) -> int:
        try:
            await ops.revoke_device(db, args.device, by="cli", now=time.time())
        except ApiProblem as exc:
            print(f"{exc.code}: {exc.detail}", file=sys.stderr)
            return 1
        print(f"kiosk {args.device} revoked")
        return 0

    return asyncio.run(_with_db(args, action))


def build_parser(prog: str = "kiosk fleet-server") -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", default=os.environ.get(STATE_ENV, "var/fleet"),
                        help=f"CA and SQLite database (default ${STATE_ENV} or var/fleet)")
    common.add_argument("--db", default=os.environ.get(DB_ENV, ""),
                        help="database URL (default: SQLite in the state directory)")
    pw = argparse.ArgumentParser(add_help=False)
    pw.add_argument("--password-env", metavar="VAR", help="read the password from $VAR")

    parser = argparse.ArgumentParser(prog=prog, description="the central fleet server")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", parents=[common], help="run the server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8470)
    p.add_argument("--interval", type=int, default=30, help="heartbeat interval told to kiosks")
    p.add_argument("--no-evaluator", action="store_true",
                   help="never evaluate alerts in this process")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes sharing the port (SQLite or PostgreSQL)")
    p.add_argument("--bundle-signing-key", metavar="PEM",
                   help="public key kiosks check catalogue/config bundles with, sent at "
                        "enrolment (default: <state-dir>/bundle-signing.pub if present)")
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--role", choices=("server", "writer"), default="server",
                   help=argparse.SUPPRESS)  # "writer": the SQLite writer process (--workers)
    p.add_argument("--ingest-socket", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("migrate", parents=[common],
                       help="bring the database schema to this version's (servers also do "
                            "it at start)")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("init", parents=[common, pw], help="create the fleet CA and an admin")
    p.add_argument("--admin", default="admin")
    p.set_defaults(func=cmd_init)
    users = sub.add_parser("users", help="ops users").add_subparsers(dest="sub", required=True)
    p = users.add_parser("add", parents=[common, pw])
    p.add_argument("name")
    p.add_argument("--role", choices=("viewer", "operator", "admin"), required=True)
    p.add_argument("--region", action="append", default=[],
                   help="GB/T 2260 code the user may see (repeat; none: the whole fleet)")
    p.set_defaults(func=cmd_users_add)
    sites = sub.add_parser("sites", help="sites").add_subparsers(dest="sub", required=True)
    p = sites.add_parser("add", parents=[common])
    p.add_argument("--id", required=True)
    p.add_argument("--type", choices=("bank", "post", "telecom", "hall"), required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--address", default="")
    p.add_argument("--region", required=True)
    p.add_argument("--lon", type=float, required=True)
    p.add_argument("--lat", type=float, required=True)
    p.set_defaults(func=cmd_sites_add)
    tokens = sub.add_parser("tokens", help="enrolment tokens").add_subparsers(dest="sub",
                                                                              required=True)
    p = tokens.add_parser("create", parents=[common])
    p.add_argument("--site", required=True)
    p.add_argument("--ttl", type=int, default=24 * 3600, help="seconds (default one day)")
    p.set_defaults(func=cmd_tokens_create)
    p = sub.add_parser("revoke", parents=[common], help="revoke a kiosk")
    p.add_argument("device")
    p.set_defaults(func=cmd_revoke)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
