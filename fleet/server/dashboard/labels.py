"""The dashboard's words: every code the fleet stores, as ops read it (zh_CN first, English).

The pages never show a bare code such as `supply_out` or `branch_staff`: they look it up
here, and an unknown code (a rule added on the server before this table) is shown as itself
rather than hidden. State is always written out in text beside its colour, so a colour-blind
reader or a black-and-white printout loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

Label = tuple[str, str]  # (zh_CN, en)

KIOSK_STATES: dict[str, Label] = {
    "new": ("新注册", "new, no heartbeat yet"),
    "online": ("在线", "online"),
    "late": ("心跳延迟", "late"),
    "offline": ("离线", "offline"),
}

HEALTH: dict[str, Label] = {
    "ok": ("正常", "ok"),
    "info": ("提示", "info"),
    "warning": ("降级", "degraded"),
    "critical": ("故障", "critical"),
}

SEVERITIES: dict[str, Label] = {
    "info": ("提示", "info"),
    "warning": ("警告", "warning"),
    "critical": ("严重", "critical"),
}

ACTORS: dict[str, Label] = {
    "branch_staff": ("网点工作人员", "branch staff"),
    "engineer": ("工程师上门", "engineer on site"),
    "ops": ("运维中心远程处理", "ops centre, remotely"),
}

SITE_TYPES: dict[str, Label] = {
    "bank": ("银行网点", "bank branch"),
    "post": ("邮政网点", "post office"),
    "telecom": ("通信营业厅", "telecom shop"),
    "hall": ("政务服务大厅", "service hall"),
}

ALERT_RULES: dict[str, Label] = {
    "offline": ("终端离线", "kiosk offline"),
    "app_down": ("应用未运行", "app down"),
    "supply_low": ("耗材不足", "supply low"),
    "supply_out": ("耗材用完或卡纸", "supply out or jammed"),
    "device_error": ("设备硬件故障", "device hardware error"),
    "device_missing": ("设备未连接", "device not connected"),
    "door_open": ("机柜门未关", "cabinet door open"),
    "tamper": ("防拆或欺诈报警", "tamper or fraud"),
    "clock_skew": ("时钟偏差", "clock skew"),
    "catalogue_stale": ("事项目录过期", "catalogue out of date"),
}

# The commands the dashboard offers (apply_bundle needs a signed bundle file: CLI/API only).
COMMANDS: dict[str, Label] = {
    "out_of_service": ("暂停服务（需填写原因）", "out of service (reason required)"),
    "in_service": ("恢复服务", "back in service"),
    "reload_catalogue": ("重新加载事项目录", "reload catalogue"),
    "reload_config": ("重新加载配置", "reload configuration"),
    "restart_app": ("重启终端应用", "restart the app"),
    "screenshot": ("屏幕截图", "take a screenshot"),
    "selftest": ("设备自检", "device self-test"),
}
COMMAND_NAMES: dict[str, Label] = {**COMMANDS, "apply_bundle": ("安装签名包", "apply bundle")}

COMMAND_STATUSES: dict[str, Label] = {
    "pending": ("待下发", "pending"),
    "delivered": ("已下发，等待结果", "delivered"),
    "done": ("已完成", "done"),
    "failed": ("失败", "failed"),
    "rejected": ("终端拒绝", "rejected"),
    "expired": ("已过期", "expired"),
}

ALERT_STATUSES: dict[str, Label] = {
    "open": ("未确认", "open, not acknowledged"),
    "acknowledged": ("已确认，处理中", "acknowledged"),
    "resolved": ("已恢复", "resolved"),
    "all": ("全部", "all"),
}

SUPPLY_LEVELS: dict[str, Label] = {
    "unknown": ("未知", "unknown"),
    "full": ("充足", "full"),
    "low": ("不足", "low"),
    "out": ("已用完", "out"),
    "jammed": ("卡纸", "jammed"),
}

DEVICE_STATES: dict[str, Label] = {
    "online": ("正常", "online"),
    "offline": ("离线", "offline"),
    "power_off": ("未通电", "power off"),
    "no_device": ("未连接", "no device"),
    "hardware_error": ("硬件故障", "hardware error"),
    "user_error": ("操作错误", "user error"),
    "busy": ("忙", "busy"),
    "fraud_attempt": ("疑似欺诈", "fraud attempt"),
}

OPERATOR_ACTIONS: dict[str, Label] = {
    "none": ("无需处理", "none"),
    "reset": ("远程复位", "reset remotely"),
    "clear": ("现场清理（加纸、清卡纸）", "clear on site (paper, jam)"),
    "maintenance": ("工程师维修", "engineer maintenance"),
    "configuration": ("检查配置", "check configuration"),
    "suspend": ("暂停使用", "suspend"),
}

DEVICE_CLASSES: dict[str, Label] = {
    "id_card_reader": ("身份证阅读器", "ID card reader"),
    "ssc_reader": ("社保卡读卡器", "social security card reader"),
    "qr_scanner": ("扫码器", "QR scanner"),
    "receipt_printer": ("凭条打印机", "receipt printer"),
    "a4_printer": ("A4 打印机", "A4 printer"),
}

RATING_LEVELS: dict[str, Label] = {
    "very_satisfied": ("非常满意", "very satisfied"),
    "satisfied": ("满意", "satisfied"),
    "basic": ("基本满意", "fair"),
    "dissatisfied": ("不满意", "dissatisfied"),
    "very_dissatisfied": ("非常不满意", "very dissatisfied"),
}

ROLES: dict[str, Label] = {
    "viewer": ("只读", "viewer"),
    "operator": ("值班操作员", "operator"),
    "admin": ("管理员", "admin"),
}

EVENT_KINDS: dict[str, Label] = {
    "command_issued": ("下发指令", "command issued"),
    "command_result": ("指令结果", "command result"),
    "alert_acknowledged": ("确认告警", "alert acknowledged"),
    "revoked": ("吊销终端", "kiosk revoked"),
    "enrolled": ("终端注册", "kiosk enrolled"),
    "online": ("恢复在线", "back online"),
    "late": ("心跳延迟", "late"),
    "offline": ("离线", "offline"),
    "going_offline": ("按计划下线", "went offline as announced"),
    "offline_summary": ("离线期间汇总", "offline summary"),
    "alert_opened": ("产生告警", "alert opened"),
    "alert_resolved": ("告警恢复", "alert resolved"),
    "command_expired": ("指令过期", "command expired"),
    "maintenance_login": ("运维登录（终端上）", "maintenance sign-in on the kiosk"),
}

# Messages after a form (redirect-after-POST carries only the key, never free text).
NOTICES: dict[str, Label] = {
    "acked": ("告警已确认", "alert acknowledged"),
    "command": ("指令已排队，终端下次心跳时领取", "command queued; the kiosk picks it up at "
                                               "its next heartbeat"),
    "revoked": ("终端已吊销，下次请求起被拒绝", "kiosk revoked; refused from its next request"),
    "logged_out": ("已退出登录", "logged out"),
}

TABLES: Mapping[str, Mapping[str, Label]] = {
    "state": KIOSK_STATES, "health": HEALTH, "severity": SEVERITIES, "actor": ACTORS,
    "site_type": SITE_TYPES, "rule": ALERT_RULES, "command": COMMAND_NAMES,
    "command_status": COMMAND_STATUSES, "alert_status": ALERT_STATUSES,
    "supply": SUPPLY_LEVELS, "device_state": DEVICE_STATES, "action": OPERATOR_ACTIONS,
    "device_class": DEVICE_CLASSES, "rating": RATING_LEVELS, "role": ROLES,
    "event": EVENT_KINDS, "notice": NOTICES,
}


def label(table: str, code: str | None, *, sep: str = " / ") -> str:
    """`code` in words, "中文 / English"; an unknown code as itself; None as a dash."""
    if code is None or code == "":
        return "—"
    found = TABLES[table].get(code)
    return f"{found[0]}{sep}{found[1]}" if found else code


def zh(table: str, code: str | None) -> str:
    """The Chinese word alone (for tight table cells whose header carries the English)."""
    if code is None or code == "":
        return "—"
    found = TABLES[table].get(code)
    return found[0] if found else code
