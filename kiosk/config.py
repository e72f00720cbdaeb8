"""The kiosk's one configuration file (TOML), its defaults and its validation.

Every key has a default that works on a laptop, so an empty file is a valid config.
`load()` fails with `ConfigError` naming the file, the line, the key and what is wrong;
`docs/config.md` documents every key, and `kiosk.example.toml` shows them all.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PositiveSeconds = Annotated[float, Field(gt=0, le=86_400)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KioskSection(_Section):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")] = (
        "demo-kiosk-001"
    )
    locale: Literal["zh_CN", "en"] = "zh_CN"
    site_name: str = "演示网点 Demo site"


class DisplaySection(_Section):
    fullscreen: bool = False
    width: Annotated[int, Field(ge=320, le=7680)] = 1280
    height: Annotated[int, Field(ge=240, le=4320)] = 800
    show_cursor: bool = True


class SessionSection(_Section):
    idle_timeout_s: PositiveSeconds = 60
    warning_s: PositiveSeconds = 15
    hard_cap_s: PositiveSeconds = 900
    elderly_factor: Annotated[float, Field(ge=1, le=5)] = 2.0

    @model_validator(mode="after")
    def _cap_covers_idle(self) -> SessionSection:
        if self.hard_cap_s <= self.idle_timeout_s + self.warning_s:
            raise ValueError(
                "hard_cap_s must be longer than idle_timeout_s + warning_s "
                f"({self.hard_cap_s} <= {self.idle_timeout_s} + {self.warning_s})"
            )
        return self


class LoggingSection(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
    file: str = ""


class PrivacySection(_Section):
    # Regular expressions for 苏服码 strings, masked in every log line. The default matches
    # the sandbox platform's codes; a deployment adds its gateway's format.
    code_patterns: list[str] = Field(default_factory=lambda: [r"SFM1[0-9A-Z]{20,120}"])

    @model_validator(mode="after")
    def _patterns_compile(self) -> PrivacySection:
        for pattern in self.code_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"code_patterns: {pattern!r} is not a valid regex: {exc}")
        return self


class PathsSection(_Section):
    data_dir: str = "var"


class PlatformSection(_Section):
    # Base URL of the integrated platform's gateway, or "sim": the kiosk starts the sandbox
    # platform in-process on a free loopback port (laptops, demos, tests).
    url: str = "sim"
    # The device credential until enrolment issues one (client-credentials grant).
    client_secret: str = "sandbox-secret"
    timeout_s: PositiveSeconds = 10.0

    @model_validator(mode="after")
    def _url_is_http(self) -> PlatformSection:
        if self.url != "sim" and not re.match(r"^https?://[^/\s]+", self.url):
            raise ValueError(f"url must be http(s)://host[:port][/path] or \"sim\" (got {self.url!r})")
        return self


class OutboxSection(_Section):
    # How long the citizen waits for the case number before the receipt says "queued"
    # with a local reference (the submission is already durable by then).
    send_now_timeout_s: PositiveSeconds = 3.0
    max_mb: Annotated[int, Field(ge=1, le=16_384)] = 256  # cap on the outbox database


class IdCardReaderSection(_Section):
    enabled: bool = True
    # Serial port of the SAM module, or "sim" for the built-in simulator on a pty.
    port: str = "sim"
    baudrate: Annotated[int, Field(ge=1200, le=921_600)] = 115_200
    timeout_s: PositiveSeconds = 3.0
    poll_interval_s: PositiveSeconds = 0.3  # how often to look for a card


class SscReaderSection(_Section):
    enabled: bool = True
    # Part of the PC/SC reader name to use ("" = the first reader). "sim" = start the
    # virtual card against vpcd (test and demo machines only; never on a real kiosk).
    reader: str = "sim"
    timeout_s: PositiveSeconds = 5.0


class QrScannerSection(_Section):
    enabled: bool = True
    source: Literal["serial", "camera"] = "serial"
    # Serial scanner module port, or "sim" for the simulator on a pty.
    port: str = "sim"
    baudrate: Annotated[int, Field(ge=1200, le=921_600)] = 9600
    camera: str = "sim"  # camera device index/path, or "sim" for rendered frames
    max_length: Annotated[int, Field(ge=16, le=4096)] = 1024
    repeat_suppress_s: PositiveSeconds = 3.0  # the same code seen again within this is ignored


class ReceiptPrinterSection(_Section):
    enabled: bool = True
    connection: Literal["network", "usb", "serial", "sim"] = "sim"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65_535)] = 9100
    usb_vendor: Annotated[int, Field(ge=0, le=0xFFFF)] = 0x04B8
    usb_product: Annotated[int, Field(ge=0, le=0xFFFF)] = 0x0E15
    serial_port: str = ""
    # Receipts are ~70 kB raster images: at 9600 baud one takes over a minute, so serial
    # printers should be set to (and configured here with) 115200.
    serial_baudrate: Annotated[int, Field(ge=1200, le=921_600)] = 115_200
    profile: str = "TM-T20II"  # python-escpos profile; 576-dot models print receipts as images
    timeout_s: PositiveSeconds = 10.0


class A4PrinterSection(_Section):
    enabled: bool = True
    # IPP printer URI (directly or a CUPS queue: ipp://host:631/printers/NAME), or "sim"
    # for CUPS' ippeveprinter started locally.
    uri: str = "sim"
    timeout_s: PositiveSeconds = 60.0


class SpeechSection(_Section):
    # Spoken prompts (DESIGN §10). Rendered by espeak-ng and played on the sound device;
    # a kiosk without one renders and discards them (see kiosk/speech.py).
    enabled: bool = True
    engine: Literal["espeak-ng", "none"] = "espeak-ng"
    voice_zh: Annotated[str, Field(min_length=1, max_length=64)] = "cmn"
    voice_en: Annotated[str, Field(min_length=1, max_length=64)] = "en"
    rate_wpm: Annotated[int, Field(ge=80, le=450)] = 160
    rate_wpm_elderly: Annotated[int, Field(ge=80, le=450)] = 130  # slower in 长辈模式
    always: bool = False  # false: speak only in 长辈模式


class FleetSection(_Section):
    # The fleet agent (`kiosk agent`, its own process) and the app's local health socket it
    # reads. Enrolment (`kiosk provision`) writes the state dir.
    server_url: str = ""  # "" = the URL recorded at enrolment
    state_dir: str = "var/fleet"
    health_socket: str = "var/run/kiosk-health.sock"
    health_group: str = ""  # group owning the socket (the agent's); "" = the app's own
    buffer_hours: Annotated[float, Field(gt=0, le=336)] = 24
    interval_s: Annotated[float, Field(ge=0, le=3600)] = 0  # 0 = the server's interval
    app_command: str = ""  # set: the agent supervises the app (demo, laptops)
    restart_command: str = "systemctl restart kiosk-app.service"
    ca_file: str = ""  # CA bundle for the fleet server's TLS; "" = the system's


class DevicesSection(_Section):
    id_card: IdCardReaderSection = IdCardReaderSection()
    ssc: SscReaderSection = SscReaderSection()
    qr: QrScannerSection = QrScannerSection()
    receipt_printer: ReceiptPrinterSection = ReceiptPrinterSection()
    a4_printer: A4PrinterSection = A4PrinterSection()


class KioskConfig(_Section):
    kiosk: KioskSection = KioskSection()
    display: DisplaySection = DisplaySection()
    session: SessionSection = SessionSection()
    logging: LoggingSection = LoggingSection()
    privacy: PrivacySection = PrivacySection()
    paths: PathsSection = PathsSection()
    platform: PlatformSection = PlatformSection()
    outbox: OutboxSection = OutboxSection()
    speech: SpeechSection = SpeechSection()
    fleet: FleetSection = FleetSection()
    devices: DevicesSection = DevicesSection()

    # Where the file was read from; relative paths in it resolve against its folder.
    source: Path | None = Field(default=None, exclude=True)

    def resolve(self, relative: str) -> Path:
        path = Path(relative).expanduser()
        if path.is_absolute() or self.source is None:
            return path
        return self.source.parent / path


class ConfigError(Exception):
    """Invalid configuration. `str()` is the message for ops: file, line, key, problem."""

    def __init__(self, path: Path | None, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        where = str(path) if path else "<defaults>"
        lines = [f"invalid configuration in {where}:"] + [f"  {p}" for p in problems]
        super().__init__("\n".join(lines))


def _line_of(text: str, section: str, key: str | None) -> int | None:
    """1-based line where `key` is set inside `[section]` (top level when `section` is ""),
    or where the section starts."""
    current = ""
    section_line = None
    table = f"{section}.{key}" if section and key else (key or section)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.match(r"^\[([^\[\]]+)\]", line)
        if header:
            current = header.group(1).strip()
            if key and (current == table or current.startswith(table + ".")):
                return number  # the key is itself a table: [sesion], [devices.printer]
            if current == section:
                section_line = number
            continue
        if key and current == section and re.match(rf"^{re.escape(key)}\s*=", line):
            return number
    return section_line


def _model_at(model: type[BaseModel], path: list[str]) -> type[BaseModel] | None:
    """The section model at a dotted path (`["devices", "qr"]`), or None."""
    for name in path:
        field = model.model_fields.get(name)
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return None
        model = field.annotation
    return model


def _describe(error: dict[str, Any], model: type[BaseModel], text: str, path: Path | None) -> str:
    loc = [str(part) for part in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        parent = loc[:-1]
        if not parent or isinstance(error.get("input"), dict):
            message = f"unknown section [{'.'.join(loc)}]"
        else:
            message = f"unknown key '{loc[-1]}' in [{'.'.join(parent)}]"
        section_model = _model_at(model, parent)
        known = list(section_model.model_fields) if section_model else []
        guess = difflib.get_close_matches(loc[-1], known, n=1)
        if guess:
            message += f" (did you mean '{guess[0]}'?)"
    elif "input" in error and error["type"] != "missing" and not isinstance(error["input"], dict):
        message += f" (got {error['input']!r})"
    name = ".".join(loc) if loc else "(file)"
    # A value error of a whole section has the section as its location.
    if _model_at(model, loc) is not None:
        line = _line_of(text, ".".join(loc), None)
    else:
        line = _line_of(text, ".".join(loc[:-1]), loc[-1]) if loc else None
    prefix = f"{path.name if path else ''}:{line}: " if line else ""
    return f"{prefix}{name}: {message}"


def parse(text: str, path: Path | None = None) -> KioskConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    try:
        config = KioskConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(e, KioskConfig, text, path) for e in exc.errors()]
        raise ConfigError(path, problems) from None
    return config.model_copy(update={"source": path.resolve() if path else None})


def load(path: Path | None) -> KioskConfig:
    """Read and validate a config file; `None` gives the built-in defaults."""
    if path is None:
        return KioskConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"cannot read: {exc}"]) from None
    return parse(text, path)
