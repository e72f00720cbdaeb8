"""`kiosk items lint [PATH]` and `kiosk items list`: the integrator's command line.

`add_parser(subparsers)` plugs the `items` command into the kiosk CLI; `main(argv)` runs
the same commands standalone (`python -m kiosk.items.cli lint screens/items/my_item`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# The item SDK's modules load only when a command runs: `kiosk --help` and `kiosk run`
# build this parser too and must stay fast.
DEFAULT_ROOT = "screens/items (of this installation)"


def cmd_lint(args: argparse.Namespace) -> int:
    from kiosk.items.lint import lint
    from kiosk.items.registry import ITEMS_ROOT

    path = Path(args.path) if args.path else ITEMS_ROOT
    problems = lint(path)
    for problem in problems:
        print(f"{problem.file}:{problem.line}: {problem.message}")
        print(f"    fix: {problem.fix}")
    if problems:
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {path}")
        return 1
    print(f"{path}: OK")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from kiosk.items.registry import ITEMS_ROOT, ItemRegistry

    args.root = Path(args.root) if args.root else ITEMS_ROOT
    registry = ItemRegistry.load(args.root)
    if args.json:
        print(
            json.dumps(
                {
                    "items": [
                        {
                            "id": item.id,
                            "item_code": item.item_code,
                            "version": item.manifest.version,
                            "kind": str(item.kind),
                            "category": str(item.manifest.category),
                            "name": item.manifest.name.model_dump(),
                            "identity": [str(s) for s in item.manifest.identity.sources],
                            "devices": [str(d) for d in item.manifest.devices],
                        }
                        for item in registry
                    ],
                    "broken": {name: str(exc) for name, exc in sorted(registry.broken.items())},
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        for item in registry:
            m = item.manifest
            print(
                f"{item.id:<28} {m.kind:<7} {m.item_code:<16} {m.version:<8} "
                f"{m.name.zh} / {m.name.en}  "
                f"[identity: {','.join(m.identity.sources)}; devices: {','.join(m.devices) or '-'}]"
            )
        for name, exc in sorted(registry.broken.items()):
            print(f"{name:<28} BROKEN  {exc}")
        print(f"{len(registry)} items, {len(registry.broken)} broken ({args.root})")
    return 1 if registry.broken else 0


def _configure(items: argparse.ArgumentParser) -> None:
    sub = items.add_subparsers(dest="items_command", required=True, metavar="ACTION")
    lint_cmd = sub.add_parser("lint", help="check an item folder (or a folder of items)")
    lint_cmd.add_argument("path", nargs="?", default=None, help=f"default: {DEFAULT_ROOT}")
    lint_cmd.set_defaults(func=cmd_lint)
    list_cmd = sub.add_parser("list", help="the items this kiosk would load")
    list_cmd.add_argument("--root", default=None, help=f"default: {DEFAULT_ROOT}")
    list_cmd.add_argument("--json", action="store_true", help="print JSON")
    list_cmd.set_defaults(func=cmd_list)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    items = subparsers.add_parser("items", help="item folders: lint, list")
    _configure(items)
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk items", description="Item folders: lint, list.")
    _configure(parser)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
