"""Alert rules: which conditions a kiosk is in, who must act, and how bad it is.

Pure functions. The heartbeat path computes a kiosk's conditions from each heartbeat and
stores them on its row; the alert evaluator adds the time-based one (offline) and reconciles
the open alerts with them: one open alert per (kiosk, rule, subject), opened when a condition
appears, resolved when it clears (fleet/server/evaluator.py).

Who acts follows the device status model's operator action (DESIGN §4): `clear` is something
branch staff can fix (reload paper, clear a jam, close the door), `maintenance` needs an
engineer on site; the rest (restart the app, configuration, clock, catalogue) ops do remotely.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from fleet.wire import Heartbeat

Severity = Literal["info", "warning", "critical"]
Actor = Literal["branch_staff", "engineer", "ops"]
SEVERITY_RANK = {"ok": 0, "info": 1, "warning": 2, "critical": 3}

RULES = (
    "offline", "app_down", "supply_low", "supply_out", "device_error", "device_missing",
    "door_open", "tamper", "clock_skew", "catalogue_stale",
)
ACTOR_LABEL = {"branch_staff": "网点工作人员 / branch staff", "engineer": "工程师 / engineer",
               "ops": "运维中心 / ops centre"}
_ACTION_ACTOR: dict[str, Actor] = {
    "clear": "branch_staff", "maintenance": "engineer", "reset": "ops", "configuration": "ops",
    "suspend": "ops", "none": "ops",
}

DEFAULT_MAX_CLOCK_SKEW_S = 30.0
DEFAULT_MAX_CATALOGUE_AGE_S = 7 * 86400.0


@dataclass(frozen=True)
class Condition:
    rule: str
    subject: str  # which device/supply; "" for the kiosk as a whole
    severity: Severity
    actor: Actor
    message: str  # zh_CN first, then English

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.subject}"


@dataclass(frozen=True)
class RuleSettings:
    max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S
    max_catalogue_age_s: float = DEFAULT_MAX_CATALOGUE_AGE_S


def heartbeat_conditions(hb: Heartbeat, received_at: float,
                         settings: RuleSettings = RuleSettings()) -> list[Condition]:
    """The conditions one heartbeat shows, in a stable order."""
    found: list[Condition] = []
    if hb.app.state == "down" and hb.kind != "going_offline":
        found.append(Condition("app_down", "app", "critical", "ops",
                               "终端应用未运行 / kiosk app is down"))
    for dev in hb.devices:
        for supply, level in sorted(dev.supplies.items()):
            subject = f"{dev.name}.{supply}"
            if level == "low":
                found.append(Condition("supply_low", subject, "warning", "branch_staff",
                                       f"{dev.name} {supply} 余量不足 / {supply} low"))
            elif level in ("out", "jammed"):
                what = "卡纸" if level == "jammed" else "已用完"
                found.append(Condition("supply_out", subject, "critical", "branch_staff",
                                       f"{dev.name} {supply} {what} / {supply} {level}"))
        if dev.state == "hardware_error" or (dev.last_error is not None
                                             and dev.last_error.kind == "hardware"
                                             and dev.state not in ("online", "busy")):
            action = dev.last_error.action if dev.last_error else "maintenance"
            actor = _ACTION_ACTOR.get(action, "ops")
            code = dev.last_error.code if dev.last_error else ""
            text = dev.last_error.vendor_text if dev.last_error else ""
            severity: Severity = "critical" if action == "maintenance" else "warning"
            found.append(Condition(
                "device_error", dev.name, severity, actor,
                f"{dev.name} 硬件故障，需{ACTOR_LABEL[actor]}处理 / hardware error "
                f"({action}) {code} {text}".strip()[:500]))
        elif dev.state == "fraud_attempt":
            found.append(Condition("tamper", dev.name, "critical", "engineer",
                                   f"{dev.name} 疑似欺诈操作 / fraud attempt reported"))
        elif dev.state in ("offline", "no_device", "power_off"):
            found.append(Condition("device_missing", dev.name, "warning", "engineer",
                                   f"{dev.name} 设备未连接 / device {dev.state}"))
    if hb.cabinet.door_open:
        found.append(Condition("door_open", "door", "warning", "branch_staff",
                               "机柜门未关 / cabinet door open"))
    if hb.cabinet.tamper:
        found.append(Condition("tamper", "cabinet", "critical", "engineer",
                               "机柜防拆报警 / cabinet tamper switch"))
    skew = hb.sent_at - received_at
    if abs(skew) > settings.max_clock_skew_s:
        found.append(Condition("clock_skew", "", "warning", "ops",
                               f"终端时钟偏差 {skew:+.0f} 秒 / clock off by {skew:+.0f} s"))
    elif hb.clock_synced is False:
        found.append(Condition("clock_skew", "", "warning", "ops",
                               "终端时钟未同步 / clock not synchronised (NTP)"))
    published = hb.versions.catalogue_published_at
    if published is not None:
        age = received_at - published.timestamp()
        if age > settings.max_catalogue_age_s:
            found.append(Condition(
                "catalogue_stale", "", "warning", "ops",
                f"事项目录已 {age / 86400:.0f} 天未更新 / catalogue {age / 86400:.0f} days old"))
    return found


def offline_condition(expected: bool) -> Condition:
    if expected:
        return Condition("offline", "", "info", "ops",
                         "终端已按计划下线 / kiosk went offline as announced")
    return Condition("offline", "", "critical", "ops",
                     "终端离线，请检查电源和网络 / kiosk offline: check power and network")


def health_of(conditions: list[Condition]) -> str:
    """The worst severity among the conditions, or "ok"."""
    worst = "ok"
    for c in conditions:
        if SEVERITY_RANK[c.severity] > SEVERITY_RANK[worst]:
            worst = c.severity
    return worst


def encode(conditions: list[Condition]) -> str:
    if not conditions:  # most heartbeats (this runs for every one)
        return "[]"
    return json.dumps([vars(c) for c in conditions], ensure_ascii=False, separators=(",", ":"))


def decode(text: str) -> list[Condition]:
    return [Condition(**c) for c in json.loads(text or "[]")]


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def identity_digest(conditions: list[Condition]) -> str:
    """What the alert evaluator must react to: which conditions, how bad, who acts. Not the
    message, which may carry a number that moves at every heartbeat (the clock skew)."""
    if not conditions:
        return _NO_CONDITIONS_DIGEST
    return digest("|".join(f"{c.rule}:{c.subject}:{c.severity}:{c.actor}" for c in conditions))


_NO_CONDITIONS_DIGEST = digest("")
