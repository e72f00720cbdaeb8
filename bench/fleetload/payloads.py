"""What a simulated kiosk reports: a realistic wire `Heartbeat`, and the same statuses as
Prometheus text exposition (the Pushgateway peer's payload).

Every kiosk has the five device classes of a full terminal; a few have paper low, a few a
jammed receipt printer, so alert rules have real work at the first heartbeat. After that the
statuses stay put (as on a real fleet, where most heartbeats repeat the last state) while
counters grow every heartbeat and usage deltas come every fifth. Bodies are built from a
per-kiosk JSON template by substitution: a pydantic round per request would cost more than
the signature; `template_checked` validates the first of each kiosk against the wire model.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

from fleet.wire import Heartbeat

_SEQ, _SENT, _DONE, _STARTED, _RECEIPTS, _UPTIME = (
    "@SEQ@", "@SENT@", "@DONE@", "@STARTED@", "@RECEIPTS@", "@UPTIME@")
_USAGE = '"@USAGE@"'
ITEMS = ("ssc_participation_cert", "ssc_payment_records", "flexible_employment_enrol")


@dataclass(frozen=True)
class SimKiosk:
    device_id: str
    site_id: str
    key_pem: str

    @property
    def variant(self) -> int:
        """A stable number per kiosk (not Python's salted hash): which faults it has."""
        return zlib.crc32(self.device_id.encode())


def _devices(kiosk: SimKiosk) -> list[dict]:
    v = kiosk.variant
    paper = "low" if v % 20 == 0 else "full"
    receipt_state, receipt_error = "online", None
    if v % 97 == 1:
        receipt_state = "user_error"
        receipt_error = {"kind": "user", "action": "clear", "code": "paper_jam",
                         "vendor_text": "PAPER JAM", "at": 1_700_000_000.0}
    serial = f"SN{v % 10**8:08d}"
    return [
        {"name": "id_card", "device_class": "id_card_reader", "lifecycle": "enabled",
         "state": "online", "info": {"model": "SS628-100", "serial": serial}},
        {"name": "ssc_card", "device_class": "ssc_reader", "lifecycle": "enabled",
         "state": "online", "info": {"model": "Virtual PCD", "serial": serial}},
        {"name": "qr", "device_class": "qr_scanner", "lifecycle": "enabled", "state": "online",
         "info": {"model": "camera", "serial": serial}},
        {"name": "receipt", "device_class": "receipt_printer", "lifecycle": "enabled",
         "state": receipt_state, "supplies": {"paper": "jammed" if receipt_error else paper},
         "last_error": receipt_error, "info": {"model": "TM-T20II", "firmware": "1.04"}},
        {"name": "a4", "device_class": "a4_printer", "lifecycle": "enabled", "state": "online",
         "supplies": {"paper": "full", "toner": "low" if v % 50 == 3 else "full"},
         "info": {"model": "ippeveprinter", "firmware": "2.4"}},
    ]


def heartbeat_template(kiosk: SimKiosk, interval_s: int) -> str:
    body = {
        "wire_version": 1, "kind": "heartbeat", "seq": _SEQ, "sent_at": _SENT,
        "interval_s": interval_s,
        "app": {"state": "running", "screen": "attract", "uptime_s": _UPTIME,
                "outbox_pending": 0},
        "devices": _devices(kiosk),
        "counters": {"journeys_started": _STARTED, "journeys_completed": _DONE,
                     "journeys_abandoned": 0, "journeys_failed": 0,
                     "receipts_printed": _RECEIPTS, "a4_pages_printed": _DONE,
                     "submissions_queued": 0},
        "usage": "@USAGE@",
        "versions": {"app": "0.9.0", "catalogue": "2026.11.20-1",
                     "catalogue_published_at": "2026-11-20T08:00:00Z", "config": "c0ffee12"},
        "disk": {"path": "/var/lib/kiosk", "total_bytes": 64_000_000_000,
                 "free_bytes": 41_000_000_000 - kiosk.variant % 10**9},
        "cabinet": {"door_open": False, "tamper": False},
        "system_uptime_s": _UPTIME, "clock_synced": True,
    }
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    for marker in (_SEQ, _SENT, _DONE, _STARTED, _RECEIPTS, _UPTIME):
        text = text.replace(f'"{marker}"', marker)
    return text


def _usage(seq: int) -> str:
    if seq % 5:
        return "[]"
    item = ITEMS[seq // 5 % len(ITEMS)]
    return json.dumps([{"item_id": item, "completed": 1, "ratings": {"very_satisfied": 1}}],
                      separators=(",", ":"))


def heartbeat_body(template: str, seq: int, sent_at: float) -> bytes:
    done = seq  # one finished journey per heartbeat
    return (template.replace(_SEQ, str(seq)).replace(_SENT, f"{sent_at:.3f}")
            .replace(_DONE, str(done)).replace(_STARTED, str(done + done // 10))
            .replace(_RECEIPTS, str(done)).replace(_UPTIME, str(seq * 30))
            .replace(_USAGE, _usage(seq))).encode()


def template_checked(kiosk: SimKiosk, interval_s: int) -> str:
    """The kiosk's template, after proving that a body made from it is a valid Heartbeat."""
    template = heartbeat_template(kiosk, interval_s)
    Heartbeat.model_validate_json(heartbeat_body(template, 5, 1_700_000_000.0))
    return template


def prometheus_text(kiosk: SimKiosk, seq: int, sent_at: float) -> bytes:
    """The same statuses and counters as the heartbeat, in the text exposition format."""
    lines = [
        "# TYPE kiosk_heartbeat_seq gauge", f"kiosk_heartbeat_seq {seq}",
        "# TYPE kiosk_sent_at_seconds gauge", f"kiosk_sent_at_seconds {sent_at:.3f}",
        "# TYPE kiosk_app_up gauge",
        'kiosk_app_up{state="running",screen="attract",version="0.9.0",'
        'catalogue="2026.11.20-1",config="c0ffee12"} 1',
        "# TYPE kiosk_app_uptime_seconds gauge", f"kiosk_app_uptime_seconds {seq * 30}",
        "# TYPE kiosk_device_state gauge",
    ]
    devices = _devices(kiosk)
    for d in devices:
        lines.append(f'kiosk_device_state{{device="{d["name"]}",class="{d["device_class"]}",'
                     f'state="{d["state"]}"}} 1')
    lines.append("# TYPE kiosk_supply_level gauge")
    for d in devices:
        for supply, level in d.get("supplies", {}).items():
            lines.append(f'kiosk_supply_level{{device="{d["name"]}",supply="{supply}",'
                         f'level="{level}"}} 1')
    lines.append("# TYPE kiosk_device_error gauge")
    for d in devices:
        if d.get("last_error"):
            e = d["last_error"]
            lines.append(f'kiosk_device_error{{device="{d["name"]}",kind="{e["kind"]}",'
                         f'action="{e["action"]}",code="{e["code"]}"}} 1')
    done = seq
    for name, value in (("journeys_started", done + done // 10), ("journeys_completed", done),
                        ("receipts_printed", done), ("a4_pages_printed", done)):
        lines += [f"# TYPE kiosk_{name}_total counter", f"kiosk_{name}_total {value}"]
    lines += ["# TYPE kiosk_disk_free_bytes gauge",
              f"kiosk_disk_free_bytes {41_000_000_000 - kiosk.variant % 10**9}",
              "# TYPE kiosk_cabinet_door_open gauge", "kiosk_cabinet_door_open 0"]
    return ("\n".join(lines) + "\n").encode()
