"""`kiosk`: the one command-line entry point. Subcommands import only what they need, so
`kiosk --help` and `kiosk config check` start fast and never load Kivy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from kiosk import __version__
from kiosk.config import ConfigError, KioskConfig, load

CONFIG_ENV = "KIOSK_CONFIG"


def _config_path(arg: str | None) -> Path | None:
    if arg:
        return Path(arg)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    local = Path("kiosk.toml")
    return local if local.is_file() else None


def _load_config(args: argparse.Namespace) -> KioskConfig:
    return load(_config_path(args.config))


def _headless(args: argparse.Namespace) -> bool:
    from screens.boot import has_display

    return args.headless or not has_display()


def cmd_run(args: argparse.Namespace) -> int:
    from kiosk.runtime import build
    from screens.run import run

    runtime = build(_load_config(args))
    script = None
    if args.quit_after_first_frame:

        async def script(pilot) -> None:  # the first frame is already on screen
            import asyncio
            import resource

            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(json.dumps({"first_frame": True, "rss_mb": round(rss_mb, 1)}), flush=True)
            # Then the services (platform client, outbox, devices) come up behind it.
            await asyncio.wait_for(pilot.app.services_ready.wait(), timeout=60)
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(json.dumps({"services_ready": pilot.app.services_error is None,
                              "rss_mb": round(rss_mb, 1)}), flush=True)

    run(runtime, headless=_headless(args), script=script, wait_services=False)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from kiosk.runtime import build

    config = _load_config(args)
    headless = _headless(args)
    if not headless:
        from screens.run import run

        from fleet.demo import FleetDemo

        print("kiosk demo: interactive on this display; close the window to stop.")
        with FleetDemo(config, Path(args.out).resolve() / "fleet" / "work") as fleet:
            print(fleet.summary())
            run(build(config), headless=False)
        return 0
    from screens.demo import OffsetClock, make_tour
    from screens.run import run

    import asyncio

    from kiosk.demo import run_journeys

    from fleet.demo import FleetDemo

    out_dir = Path(args.out).resolve()
    clock = OffsetClock()
    shots: list[Path] = []
    fleet_dir = out_dir / "fleet"
    # The fleet around the kiosk: a fleet server, this kiosk enrolled, its agent reporting.
    dashboard: list[Path] = []
    with FleetDemo(config, fleet_dir / "work", interval_s=2.0) as fleet:
        run(build(config, clock=clock), headless=True,
            script=make_tour(out_dir, clock, shots, fleet=fleet, dashboard=dashboard))
        summary = fleet.summary()
    print(f"kiosk demo (no display): {len(shots)} screenshots in {out_dir}")
    for path in shots:
        print(f"  {path}")
    print("the fleet: this kiosk enrolled, its agent reporting; dashboard screenshots:")
    print("  " + summary.replace("\n", "\n  "))
    for path in dashboard:
        print(f"  {path}")
    print("whole journeys on the simulated devices and the sandbox platform:")
    outputs = asyncio.run(run_journeys(config, out_dir))
    for path in outputs:
        print(f"  {path}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    path = Path(args.file) if args.file else _config_path(args.config)
    config = load(path)
    if args.action == "show":
        print(json.dumps(config.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        print(f"{path or '<built-in defaults>'}: OK")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    import asyncio

    from drivers.registry import DeviceSet

    config = _load_config(args)

    async def inspect() -> int:
        async with DeviceSet(config.devices) as devices:
            if args.action == "selftest":
                results = await devices.selftest()
                ok = all(r.ok for r in results) and not devices.failures
                report = {
                    "ok": ok,
                    "devices": [r.to_json() for r in results],
                    "not_created": devices.failures,
                }
                print(json.dumps(report, ensure_ascii=False, indent=2))
                return 0 if ok else 1
            for status in devices.statuses():
                supplies = ", ".join(f"{k}={v}" for k, v in status.supplies.items()) or "-"
                error = status.last_error
                problem = f"{error.code} (action: {error.action})" if error else "-"
                print(
                    f"{status.name:16} {status.device_class:16} {status.lifecycle:8} "
                    f"{status.state:15} {supplies:24} {problem}"
                )
            for name, reason in devices.failures.items():
                print(f"{name:16} not created: {reason}")
            return 0

    return asyncio.run(inspect())


def cmd_outbox(args: argparse.Namespace) -> int:
    from kiosk.outbox.cli import cmd_outbox as run  # loads the store (and cryptography)

    return run(args)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from kiosk.platform.sandbox.__main__ import main as sandbox_main
    from kiosk.runtime import build

    build(_load_config(args))  # the kiosk's redacting log handlers, not a bare basicConfig
    argv = ["--host", args.host, "--port", str(args.port), "--data", args.data,
            "--client-secret", args.client_secret, "--submit-delay", str(args.submit_delay)]
    if args.public_url:
        argv += ["--public-url", args.public_url]
    return sandbox_main(argv)


def cmd_version(_args: argparse.Namespace) -> int:
    print(__version__)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kiosk", description="Self-service government kiosk runtime (政务服务自助终端)."
    )
    p.add_argument("--config", help=f"config file (default: ${CONFIG_ENV}, else ./kiosk.toml)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the kiosk UI")
    run.add_argument("--headless", action="store_true", help="render offscreen, no window")
    run.add_argument(
        "--quit-after-first-frame",
        action="store_true",
        help="exit once the attract screen is drawn (smoke check, start-up benchmark)",
    )
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser(
        "demo",
        help="the kiosk on simulated hardware: interactive with a display, "
        "otherwise a headless tour that writes screenshots",
    )
    demo.add_argument("--out", default="demo-out", help="screenshot folder (default: demo-out)")
    demo.add_argument("--headless", action="store_true", help="tour even if a display exists")
    demo.set_defaults(func=cmd_demo)

    config = sub.add_parser("config", help="check or show the configuration")
    config.add_argument("action", choices=("check", "show"))
    config.add_argument("file", nargs="?", help="config file (default: as --config)")
    config.set_defaults(func=cmd_config)

    devices = sub.add_parser(
        "devices", help="list the configured devices with their status, or self-test them"
    )
    devices.add_argument("action", nargs="?", choices=("list", "selftest"), default="list")
    devices.set_defaults(func=cmd_devices)

    from kiosk import headless
    from kiosk.items import cli as items_cli

    items_cli.add_parser(sub)
    headless.add_parser(sub)

    outbox = sub.add_parser("outbox", help="show the outbox, or deliver what is queued now")
    outbox.add_argument("action", choices=("status", "drain"))
    outbox.add_argument("--timeout", type=float, default=60.0, help="drain: give up after (s)")
    outbox.set_defaults(func=cmd_outbox)

    sandbox = sub.add_parser(
        "sandbox", help="serve the sandbox platform (test citizens, 苏服码, e-certificates, cases)"
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8085)
    sandbox.add_argument("--data", default="var/sandbox", help="database and keys")
    sandbox.add_argument("--public-url", default=None, help="base URL printed in certificate QRs")
    sandbox.add_argument("--client-secret", default="sandbox-secret")
    sandbox.add_argument("--submit-delay", type=float, default=0.0,
                         help="seconds before answering a new application (a slow gateway)")
    sandbox.set_defaults(func=cmd_sandbox)

    version = sub.add_parser("version", help="print the runtime version")
    version.set_defaults(func=cmd_version)

    # Tools with their own command lines (and their own --help), loaded only when run.
    for name, (_module, help_text) in PASSTHROUGH.items():
        tool = sub.add_parser(name, help=help_text, add_help=False)
        tool.add_argument("rest", nargs=argparse.REMAINDER)
    return p


# `kiosk <name> ...` hands the rest of the command line to `<module>.main(argv)`.
PASSTHROUGH = {
    "provision": ("provisioning.cli", "enrol this kiosk with the fleet server (one-time token); "
                  "status; bundle and credential tools for ops"),
    "agent": ("fleet.agent.main", "run the fleet agent: heartbeats, buffering, remote commands "
              "(settings from [fleet] in the config file)"),
    "fleet-server": ("fleet.server.cli", "the central monitoring service: serve, init, users, "
                     "sites, enrolment tokens, revocation"),
    "doctor": ("kiosk.doctor", "check this kiosk machine (devices, fonts, clock, disk, "
               "permissions, enrolment, printers) and say how to fix each problem"),
}


def _agent_argv(config_arg: str | None, rest: list[str]) -> list[str]:
    """The agent's flags from `[fleet]` and `[paths]` first; the command line overrides."""
    config = load(_config_path(config_arg))
    fleet = config.fleet
    argv = [
        "--state-dir", str(config.resolve(fleet.state_dir)),
        "--health-socket", str(config.resolve(fleet.health_socket)),
        "--data-dir", str(config.resolve(config.paths.data_dir)),
        "--buffer-hours", str(fleet.buffer_hours),
        "--restart-command", fleet.restart_command,
    ]
    if fleet.server_url:
        argv += ["--server", fleet.server_url]
    if fleet.interval_s:
        argv += ["--interval", str(fleet.interval_s)]
    if fleet.app_command:
        argv += ["--app-command", fleet.app_command]
    if fleet.ca_file:
        argv += ["--ca-file", str(config.resolve(fleet.ca_file))]
    return argv + rest


def _passthrough(argv: list[str]) -> int | None:
    """Run a PASSTHROUGH tool if the command line names one (after an optional --config)."""
    config_arg = None
    rest = list(argv)
    if rest[:1] == ["--config"] and len(rest) >= 2:
        config_arg, rest = rest[1], rest[2:]
    elif rest[:1] and rest[0].startswith("--config="):
        config_arg, rest = rest[0].split("=", 1)[1], rest[1:]
    if not rest or rest[0] not in PASSTHROUGH:
        return None
    name, tool_argv = rest[0], rest[1:]
    import importlib

    module = importlib.import_module(PASSTHROUGH[name][0])
    if name == "agent":
        tool_argv = _agent_argv(config_arg, tool_argv)
    elif name == "doctor" and (config_arg or _config_path(None)):
        tool_argv = ["--config", str(config_arg or _config_path(None)), *tool_argv]
    return module.main(tool_argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = _passthrough(argv)
    except ConfigError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    if code is not None:
        return code
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
