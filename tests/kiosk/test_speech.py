"""Spoken prompts with the real espeak-ng: rendering, cache, cancellation, failures, logs."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import wave
from pathlib import Path

import pytest

from kiosk import i18n
from kiosk.config import SpeechSection
from kiosk.speech import (
    CommandPlayer,
    EspeakSpeaker,
    NullPlayer,
    NullSpeaker,
    speaker_for,
)

ESPEAK = shutil.which("espeak-ng")
assert ESPEAK, "espeak-ng is missing: install the Debian packages in .ci/debian-packages.txt"

# What a screen might show and so say: a name and a phone number must never reach a log.
PERSONAL = "张三丰，您的手机号13812345678已登记。"


def speaker(**kwargs) -> EspeakSpeaker:
    return EspeakSpeaker(SpeechSection(), NullPlayer(), executable=ESPEAK, **kwargs)


def duration_s(path: Path) -> float:
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()


@pytest.mark.asyncio
@pytest.mark.parametrize("locale", ["zh_CN", "en"])
async def test_espeak_renders_a_wav_for_each_language(locale):
    s = speaker()
    try:
        text = i18n.catalogue(locale)["speech.identify"]
        path, hit = await s.render(text, s.voice(locale), s.rate(elderly=False))
        assert not hit and path.parent == s._folder()
        header = path.read_bytes()[:12]
        assert header[:4] == b"RIFF" and header[8:12] == b"WAVE"
        assert 1.5 < duration_s(path) < 20, duration_s(path)  # a sentence or two, spoken
        slow, _ = await s.render(text, s.voice(locale), s.rate(elderly=True))
        assert duration_s(slow) > duration_s(path) * 1.1  # 长辈模式 speaks slower
        assert await s.say(text, locale) is True
    finally:
        s.close()


@pytest.mark.asyncio
async def test_the_voice_follows_the_locale():
    s = speaker()
    assert s.voice("zh_CN") == "cmn" and s.voice("en") == "en"
    assert s.rate(elderly=False) == 160 and s.rate(elderly=True) == 130


@pytest.mark.asyncio
async def test_the_same_prompt_is_rendered_once_and_the_cache_is_bounded():
    s = speaker(cache_entries=2)
    try:
        assert await s.say("请出示苏服码。", "zh_CN")
        assert await s.say("请出示苏服码。", "zh_CN")
        assert s.renders == 1  # second time: a cache hit
        first, hit = await s.render("请出示苏服码。", "cmn", 160)
        assert hit and s.renders == 1
        assert await s.say("请出示苏服码。", "zh_CN", elderly=True)  # another rate
        assert s.renders == 2
        assert await s.say("Please insert your card.", "en")
        assert s.renders == 3 and len(s._cache) == 2
        assert not first.exists()  # the least recently used rendering was dropped
        s.clear_cache()
        assert s._cache == {} and list(s._folder().glob("*.wav")) == []
    finally:
        s.close()
    assert s._dir is None


@pytest.mark.asyncio
async def test_a_new_prompt_cancels_the_one_still_playing(tmp_path):
    pid_file = tmp_path / "player.pid"
    # A "player" that records its pid and plays for a long time (30 s).
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(30)"
    )
    s = EspeakSpeaker(
        SpeechSection(), CommandPlayer([sys.executable, "-c", script]), executable=ESPEAK
    )
    try:
        first = asyncio.create_task(s.say("您还在吗？", "zh_CN", key="speech.countdown"))
        for _ in range(500):
            if pid_file.exists() and pid_file.read_text():
                break
            await asyncio.sleep(0.01)
        pid = int(pid_file.read_text())
        s.player = NullPlayer()
        started = asyncio.get_running_loop().time()
        assert await s.say("请出示苏服码。", "zh_CN", key="speech.identify") is True
        assert await first is False  # cut off, not an error
        assert asyncio.get_running_loop().time() - started < 5
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the player process was killed and reaped
        # cancel() alone stops a prompt too.
        s.player = CommandPlayer([sys.executable, "-c", script])
        pid_file.unlink()
        third = asyncio.create_task(s.say("再见。", "zh_CN"))
        for _ in range(500):
            if pid_file.exists() and pid_file.read_text():
                break
            await asyncio.sleep(0.01)
        s.cancel()
        assert await third is False
    finally:
        s.close()


@pytest.mark.asyncio
async def test_a_broken_engine_is_logged_once_and_never_raises(caplog, tmp_path):
    caplog.set_level(logging.DEBUG, logger="kiosk.speech")
    s = EspeakSpeaker(SpeechSection(), NullPlayer(), executable=str(tmp_path / "no-espeak-ng"))
    for _ in range(3):
        assert await s.say(PERSONAL, "zh_CN", key="speech.identify") is False
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "no-espeak-ng" in errors[0].getMessage()
    assert "speech.identify" in errors[0].getMessage()
    s.close()


@pytest.mark.asyncio
async def test_an_unknown_voice_is_logged_once_and_never_raises(caplog):
    caplog.set_level(logging.DEBUG, logger="kiosk.speech")
    s = EspeakSpeaker(SpeechSection(voice_zh="nosuchvoice"), NullPlayer(), executable=ESPEAK)
    try:
        assert await s.say(PERSONAL, "zh_CN") is False
        assert await s.say(PERSONAL, "zh_CN") is False
        assert await s.say("Hello.", "en") is True  # the other voice still works
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "exited 1" in errors[0] and "voice" in errors[0], errors
        assert list(s._folder().glob("*.part")) == []  # nothing half-written left behind
    finally:
        s.close()


@pytest.mark.asyncio
async def test_logs_name_the_key_and_length_never_the_text(caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    s = speaker()
    broken = EspeakSpeaker(SpeechSection(), NullPlayer(), executable=str(tmp_path / "missing"))
    try:
        assert await s.say(PERSONAL, "zh_CN", key="speech.result")
        assert await s.say(PERSONAL, "zh_CN", key="speech.result")  # cache hit
        assert not await broken.say(PERSONAL, "zh_CN", key="speech.result")
    finally:
        s.close()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("kiosk")]
    assert any("speech.result" in m and f"{len(PERSONAL)} chars" in m for m in messages)
    for m in messages:
        assert "张三丰" not in m and "13812345678" not in m and PERSONAL not in m, m


@pytest.mark.asyncio
async def test_the_text_reaches_the_engine_on_stdin_not_in_its_arguments(tmp_path):
    argv_file, stdin_file = tmp_path / "argv", tmp_path / "stdin"
    fake = tmp_path / "fake-espeak-ng"
    # Records its arguments and input, then writes a WAV like espeak-ng's -w would.
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys, wave\n"
        f"open({str(argv_file)!r}, 'w').write(repr(sys.argv))\n"
        f"open({str(stdin_file)!r}, 'wb').write(sys.stdin.buffer.read())\n"
        "out = sys.argv[sys.argv.index('-w') + 1]\n"
        "w = wave.open(out, 'wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(22050)\n"
        "w.writeframes(bytes(4410)); w.close()\n"
    )
    fake.chmod(0o755)
    s = EspeakSpeaker(SpeechSection(), NullPlayer(), executable=str(fake))
    try:
        assert await s.say(PERSONAL, "zh_CN")
    finally:
        s.close()
    assert "13812345678" not in argv_file.read_text()  # `ps` would show arguments
    assert stdin_file.read_bytes().decode("utf-8") == PERSONAL
    assert "'cmn'" in argv_file.read_text() and "'160'" in argv_file.read_text()


@pytest.mark.asyncio
async def test_configured_off_means_a_null_speaker(caplog):
    caplog.set_level(logging.INFO, logger="kiosk.speech")
    assert isinstance(speaker_for(SpeechSection(enabled=False)), NullSpeaker)
    assert isinstance(speaker_for(SpeechSection(engine="none")), NullSpeaker)
    assert await NullSpeaker().say("你好", "zh_CN") is False
    on = speaker_for(SpeechSection())
    assert isinstance(on, EspeakSpeaker) and on._dir is None  # nothing started yet
    line = caplog.records[-1].getMessage()
    assert f"player {on.player.name}" in line  # says which player (none on this machine)
    if isinstance(on.player, NullPlayer):
        assert "rendered and discarded" in line


def test_every_state_with_a_screen_has_a_prompt_in_both_languages():
    for locale in i18n.LOCALES:
        catalogue = i18n.catalogue(locale)
        for key in ("attract", "identify", "out_of_service", "countdown"):
            assert catalogue[f"speech.{key}"].strip()
        assert i18n.placeholders(catalogue["speech.out_of_service"]) == {"reason"}
        assert i18n.placeholders(catalogue["speech.countdown"]) == {"seconds"}
