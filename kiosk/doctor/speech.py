"""Speech: the spoken prompts of 长辈模式 (DESIGN §10) need espeak-ng with the configured
voices, and a sound device to play them on (without one they are rendered and discarded)."""

from __future__ import annotations

import asyncio

from kiosk.doctor._proc import ToolMissing, run_tool
from kiosk.doctor.context import DoctorContext
from kiosk.doctor.model import CheckResult, fail, ok, warn

GROUP = "speech"


async def _voice(voice: str) -> CheckResult:
    name = f"speech.voice.{voice}"
    try:
        # -w: render to a file (never straight to the sound card, which prints errors and
        # still exits 0); the text comes on stdin, as the kiosk sends it.
        code, _, err = await run_tool("espeak-ng", "-v", voice, "-w", "/dev/null",
                                      stdin="测试 test".encode(), timeout=3.0)
    except ToolMissing:
        return fail(name, "espeak-ng is not installed",
                    "apt-get install --no-install-recommends espeak-ng")
    if code != 0:
        return fail(name, f"espeak-ng cannot speak voice {voice!r}: {err.strip()[:200]}",
                    "`espeak-ng --voices` lists the voices; set [speech] voice_zh / voice_en "
                    "to one of them")
    return ok(name, f"espeak-ng renders voice {voice!r}")


async def run(ctx: DoctorContext) -> list[CheckResult]:
    section = ctx.config.speech
    if not section.enabled or section.engine == "none":
        return [ok("speech", "spoken prompts are switched off in the config")]
    results = list(await asyncio.gather(_voice(section.voice_zh), _voice(section.voice_en)))
    from kiosk.speech import NullPlayer, detect_player

    player, why = await asyncio.to_thread(detect_player)
    if isinstance(player, NullPlayer):
        results.append(warn("speech.player", f"{why}: prompts are rendered and discarded",
                            "connect speakers; `aplay -l` must list a card (add the kiosk user "
                            "to group audio), or run PipeWire/PulseAudio in the kiosk session"))
    else:
        results.append(ok("speech.player", f"{player.name}: {why}"))
    return results
