"""The composition root: builds the kiosk's core objects from its config, nothing global.

The UI (`screens.app.KioskApp`), the headless journeys and the tests all start here, so
they run the same wiring. Later parts (drivers, platform client, outbox) join `Runtime`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.config import KioskConfig
from kiosk.i18n import Translator
from kiosk.logs import setup_logging
from kiosk.privacy import Redactor
from kiosk.session import Clock, SessionMachine, Timing
from kiosk.speech import Speaker, speaker_for

_log = logging.getLogger(__name__)


@dataclass
class Runtime:
    config: KioskConfig
    machine: SessionMachine
    translator: Translator
    redactor: Redactor
    data_dir: Path
    speaker: Speaker
    log_handlers: list[logging.Handler] = field(default_factory=list)
    # Optional parts the UI's conductor uses when present: fleet counters
    # (kiosk/telemetry.py), the maintenance gate (provisioning/credentials.py) and the
    # per-item usage that orders the catalogue.
    telemetry: Any = None
    gate: Any = None
    usage: Callable[[], dict[str, int]] | None = None


def build(
    config: KioskConfig,
    *,
    clock: Clock = time.monotonic,
    log: bool = True,
    speaker: Speaker | None = None,
) -> Runtime:
    """`speaker` replaces the configured one (tests record prompts with their own)."""
    redactor = Redactor(config.privacy.code_patterns)
    data_dir = config.resolve(config.paths.data_dir)
    handlers: list[logging.Handler] = []
    if log:
        log_file = config.resolve(config.logging.file) if config.logging.file else None
        handlers = setup_logging(
            level=config.logging.level,
            fmt=config.logging.format,
            file=log_file,
            redactor=redactor,
        )
    s = config.session
    machine = SessionMachine(
        Timing(s.idle_timeout_s, s.warning_s, s.hard_cap_s, s.elderly_factor), clock=clock
    )
    # Values remembered for redaction belong to one citizen: forget them at every wipe.
    machine.on_wipe(redactor.forget_all)
    # The speaker starts nothing until the first prompt (start-up stays fast). A prompt may
    # carry what the screen showed the citizen: stop it and drop every rendering at the wipe.
    speaker = speaker if speaker is not None else speaker_for(config.speech)
    machine.on_wipe(speaker.cancel)
    machine.on_wipe(speaker.clear_cache)
    _log.info("kiosk %s runtime built (data dir %s)", config.kiosk.id, data_dir)
    return Runtime(
        config=config,
        machine=machine,
        translator=Translator(config.kiosk.locale),
        redactor=redactor,
        data_dir=data_dir,
        speaker=speaker,
        log_handlers=handlers,
    )
