"""`kiosk agent`: the fleet agent's process. Exit codes: 0 after a clean stop (SIGTERM or
SIGINT, after telling the server "going offline"), 2 bad arguments, 78 not enrolled or the
enrolment is unusable (EX_CONFIG: a service manager should not restart it in a loop)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from fleet.agent.agent import COUNTER_FILE, STORE_FILE, Agent
from fleet.agent.app_health import AppHealth
from fleet.agent.server_client import FleetClient
from fleet.agent.settings import AgentSettings, add_arguments, from_args
from fleet.agent.store import AgentStore
from fleet.agent.supervisor import AppSupervisor

_log = logging.getLogger("fleet.agent")
EX_CONFIG = 78


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk agent", description=__doc__.splitlines()[0])
    add_arguments(p)
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


async def run_agent(settings: AgentSettings, stop: asyncio.Event | None = None) -> int:
    from provisioning.device import DeviceIdentity, IdentityError, NotEnrolled, ssl_context_for
    from provisioning.signing import RequestCounter

    try:
        identity = DeviceIdentity.load(settings.state_dir)
    except (NotEnrolled, IdentityError) as exc:
        print(f"kiosk agent: {exc}", file=sys.stderr)
        return EX_CONFIG
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = FleetClient(
        identity,
        RequestCounter(settings.state_dir / COUNTER_FILE),
        settings.server_url or identity.server_url,
        timeout_s=settings.request_timeout_s,
        ssl=ssl_context_for(settings.ca_file),
    )
    store = AgentStore(settings.state_dir / STORE_FILE)
    health = AppHealth(settings.health_socket)
    supervisor = None
    agent: Agent | None = None

    def on_exit(event) -> None:
        if agent is not None:
            agent.app_exited(event)

    if settings.supervised:
        supervisor = AppSupervisor(settings.app_command, on_exit=on_exit, env=settings.env or None)
    agent = Agent(
        settings, client=client, store=store, health=health, supervisor=supervisor,
        interval_s=identity.heartbeat_interval_s,
    )
    _log.info(
        "agent for %s → %s every %.1f s%s",
        identity.device_id, client.base_url, agent.interval_s,
        " (supervising the app)" if supervisor else "",
    )
    try:
        if supervisor is not None:
            await supervisor.start()
        await agent.run(stop)
    finally:
        if supervisor is not None:
            await supervisor.stop()
        await client.close()
        store.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


def add_parser(subparsers) -> None:
    """`kiosk agent ...` in the kiosk CLI (kiosk/cli.py: `agent_main.add_parser(sub)`)."""
    p = subparsers.add_parser(
        "agent", help="run the fleet agent: heartbeats to the fleet server, remote commands"
    )
    add_arguments(p)
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=cmd_agent)


def cmd_agent(args: argparse.Namespace) -> int:
    try:
        settings = from_args(args)
    except ValueError as exc:
        print(f"kiosk agent: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(run_agent(settings))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = from_args(args)
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        print(f"kiosk agent: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(run_agent(settings))


if __name__ == "__main__":
    sys.exit(main())
