"""Shared pieces of the reliability suites (privacy search, injected faults).

- `until()` — a bounded wait on an async predicate;
- `Needles` — every form a test citizen's data can take on disk (UTF-8, UTF-16LE as on the
  ID card's SAM text block, GBK as on the 社保卡, JSON `\\uXXXX` escapes, lower-case x,
  grouped ID and phone numbers) and `search_tree()` that reads whole files as raw bytes;
- `png_text_chunks()` — a PNG's text metadata (tEXt, zTXt, iTXt), decompressed;
- `running_sandbox()` — `kiosk sandbox` as a process of its own on a free port.
The session's one pcscd is the `pcscd` fixture in tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.platform.sandbox.seed import CITIZENS, SeedCitizen
from tests.fleet.conftest import free_port


async def until(predicate: Callable[[], Awaitable[object]], timeout: float = 15.0,
                what: str = "condition", every: float = 0.05) -> object:
    """Poll an async predicate until it returns something truthy, or fail naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(every)


def _id_forms(number: str) -> set[str]:
    forms = {number, number.lower(), number.upper()}
    for sep in (" ", "-"):
        # 6-8-4 (region, birth date, sequence + check) and 3-4-4-... the way people write it
        forms.add(sep.join((number[:6], number[6:14], number[14:])))
        forms.add(sep.join(number[i:i + 4] for i in range(0, 18, 4)))
    forms |= {f.lower() for f in forms}
    return forms


def _phone_forms(phone: str) -> set[str]:
    return {phone, f"{phone[:3]} {phone[3:7]} {phone[7:]}", f"{phone[:3]}-{phone[3:7]}-{phone[7:]}",
            f"+86{phone}", f"+86 {phone}"}


def _name_bytes(name: str) -> set[bytes]:
    return {
        name.encode("utf-8"),
        name.encode("utf-16-le"),  # the SAM text block (GA/T 467)
        name.encode("gbk"),  # the 社保卡's records
        json.dumps(name).strip('"').encode("ascii"),  # JSON with ensure_ascii
    }


@dataclass
class Needles:
    """What must never be found: label → the byte strings that spell it."""

    by_label: dict[str, set[bytes]] = field(default_factory=dict)

    @classmethod
    def for_citizens(cls, citizens: Iterable[SeedCitizen] = CITIZENS,
                     codes: Iterable[str] = ()) -> Needles:
        needles = cls()
        for c in citizens:
            needles.by_label[f"{c.citizen_id} id_number"] = {
                f.encode(enc) for f in _id_forms(c.id_number) for enc in ("utf-8", "utf-16-le")
            }
            needles.by_label[f"{c.citizen_id} name"] = _name_bytes(c.name)
            needles.by_label[f"{c.citizen_id} phone"] = {
                f.encode(enc) for f in _phone_forms(c.phone) for enc in ("utf-8", "utf-16-le")
            }
        for i, code in enumerate(codes):
            needles.by_label[f"code #{i}"] = {code.encode(), code.encode("utf-16-le")}
        return needles

    def count(self) -> int:
        return sum(len(v) for v in self.by_label.values())

    def hits(self, data: bytes) -> list[str]:
        return [label for label, forms in self.by_label.items() if any(f in data for f in forms)]


@dataclass
class SearchReport:
    files: int = 0
    bytes: int = 0
    png_text_chunks: int = 0
    skipped: int = 0  # files left out on purpose (skip)
    hits: list[tuple[str, str]] = field(default_factory=list)  # (path, label)
    roots: list[str] = field(default_factory=list)


def search_tree(root: Path, needles: Needles, report: SearchReport,
                skip: Callable[[Path], bool] = lambda p: False) -> None:
    """Every regular file under root, whole, as raw bytes (SQLite files, their -wal and
    -journal, logs, PNGs, WAVs); PNG text metadata decompressed and searched as well."""
    report.roots.append(str(root))
    if not root.exists():
        return
    paths = [root] if root.is_file() else sorted(root.rglob("*"))
    for path in paths:
        if path.is_symlink() or not path.is_file():
            continue
        if skip(path):
            report.skipped += 1
            continue
        try:
            data = path.read_bytes()
        except OSError:  # a socket or a file removed meanwhile
            continue
        report.files += 1
        report.bytes += len(data)
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            for _kind, text in png_text_chunks(data):
                report.png_text_chunks += 1
                data += b"\n" + text
        report.hits.extend((str(path), label) for label in needles.hits(data))


def png_text_chunks(data: bytes) -> list[tuple[str, bytes]]:
    """(chunk type, keyword + text) of every tEXt / zTXt / iTXt chunk, decompressed."""
    out: list[tuple[str, bytes]] = []
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        name = kind.decode("latin-1")
        if name == "tEXt":
            out.append((name, body))
        elif name == "zTXt":
            keyword, _, rest = body.partition(b"\0")
            out.append((name, keyword + b"\0" + zlib.decompress(rest[1:])))
        elif name == "iTXt":
            keyword, _, rest = body.partition(b"\0")
            compressed = rest[0] == 1
            _lang, _, rest = rest[2:].partition(b"\0")
            _tkey, _, text = rest.partition(b"\0")
            out.append((name, keyword + b"\0" + (zlib.decompress(text) if compressed else text)))
        elif name == "IEND":
            break
    return out


@contextlib.contextmanager
def running_sandbox(data: Path, submit_delay: float) -> Iterator[tuple[str, Path]]:
    """`kiosk sandbox` in its own process, answering a new application `submit_delay` s after
    storing it (so a kill can land while the platform has the case and the kiosk does not
    know yet): (its URL, its SQLite file)."""
    port = free_port()
    proc = subprocess.Popen(
        [Path(sys.executable).with_name("kiosk"), "sandbox", "--port", str(port),
         "--data", str(data), "--submit-delay", str(submit_delay)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("sandbox did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", data / "sandbox.sqlite3"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
