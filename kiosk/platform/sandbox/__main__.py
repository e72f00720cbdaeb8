"""`python -m kiosk.platform.sandbox --port 8085 --data DIR`: serve the sandbox platform."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="kiosk sandbox",
        description="Sandbox platform (沙箱平台): test citizens, 苏服码, e-certificates, cases.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8085, help="port (default 8085)")
    parser.add_argument("--data", default="var/sandbox",
                        help="data dir: database and keys (default var/sandbox)")
    parser.add_argument("--public-url", default=None,
                        help="base URL printed in certificate QR codes (default: request origin)")
    parser.add_argument("--client-secret", default="sandbox-secret",
                        help="the client secret every device uses (default sandbox-secret)")
    parser.add_argument("--submit-delay", type=float, default=0.0,
                        help="seconds to wait before answering a new application (slow gateway)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from kiosk.platform.sandbox.app import run

    data = Path(args.data).resolve()
    print(f"sandbox platform on http://{args.host}:{args.port}/sandbox/ (data in {data})",
          flush=True)
    run(args.host, args.port, data / "sandbox.sqlite3", data_dir=data,
        public_url=args.public_url, client_secret=args.client_secret,
        submit_delay_s=args.submit_delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
