"""Spoken prompts (DESIGN §10: in 长辈模式 every step is also spoken), behind a small interface.

A `Speaker` says one prompt at a time: `await say(text, locale)` renders and plays it, a new
prompt cancels the one still playing, and nothing here ever raises into the UI. The default
engine is Debian's espeak-ng, which renders a WAV into a private temp dir (never to the sound
card directly: without `-w` it prints errors and still exits 0); a `Player` plays the WAV
through the sound device, or, on a machine without one, a `NullPlayer` discards it.

Spoken texts may carry personal data when the screen shows it, so they never reach a log
line, a process's argument list (espeak-ng reads them on stdin) or outlive the session
(`clear_cache` runs at every wipe). Logs name the prompt's key and length only.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from kiosk.config import SpeechSection

_log = logging.getLogger(__name__)

CACHE_ENTRIES = 64  # prompts per screen state × 2 languages × 2 rates, with room to spare


class Speaker(Protocol):
    async def say(self, text: str, locale: str, *, key: str = "", elderly: bool = False) -> bool:
        """Speak `text` in `locale`; True once it was spoken to the end, False if it was
        cancelled by a newer prompt or failed (failures are logged, never raised)."""
        ...

    def cancel(self) -> None:
        """Stop the prompt being rendered or played, if any."""
        ...

    def clear_cache(self) -> None:
        """Forget rendered prompts (called when a session is wiped)."""
        ...

    def close(self) -> None:
        """Stop speaking and remove any files (a later prompt starts afresh)."""
        ...


class NullSpeaker:
    """Speech switched off (`[speech] enabled = false` or `engine = "none"`)."""

    async def say(self, text: str, locale: str, *, key: str = "", elderly: bool = False) -> bool:
        return False

    def cancel(self) -> None:
        pass

    def clear_cache(self) -> None:
        pass

    def close(self) -> None:
        pass


# -- players ------------------------------------------------------------------------------
class Player(Protocol):
    name: str

    async def play(self, wav: Path) -> None:
        """Play the file to the end; cancelling the awaiting task stops playback.
        Raises `SpeechError` when the device refuses."""
        ...


class SpeechError(Exception):
    """Rendering or playing failed; `kind` groups failures so each kind is logged once."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class NullPlayer:
    """No sound device: the rendered WAV is not played (it stays only in the bounded cache)."""

    name = "none"

    async def play(self, wav: Path) -> None:
        return None


class CommandPlayer:
    """Plays a WAV with a command-line player (`aplay -q FILE`, `paplay FILE`)."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.name = Path(argv[0]).name

    async def play(self, wav: Path) -> None:
        await _run(self.argv + [str(wav)], kind=f"player {self.name}")


def _alsa_playback_device() -> bool:
    try:
        cards = Path("/proc/asound/cards").read_text()
    except OSError:
        return False
    if "no soundcards" in cards or not cards.strip():
        return False
    return any(Path("/dev/snd").glob("pcmC*D*p"))


def _pulse_server() -> bool:
    if os.environ.get("PULSE_SERVER"):
        return True
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return Path(runtime_dir, "pulse", "native").exists()


def detect_player() -> tuple[Player, str]:
    """The player for this machine's sound device, and why it was chosen (for the log).

    A PulseAudio/PipeWire server is preferred (it shares the device with other programs);
    then a raw ALSA playback device; otherwise there is nothing to play on.
    """
    paplay, aplay = shutil.which("paplay"), shutil.which("aplay")
    if paplay and _pulse_server():
        return CommandPlayer([paplay]), "PulseAudio/PipeWire server found"
    if _alsa_playback_device():
        if aplay:
            return CommandPlayer([aplay, "-q"]), "ALSA playback device found"
        return NullPlayer(), "ALSA playback device found but no aplay (install alsa-utils)"
    return NullPlayer(), "no sound device (no ALSA playback device, no PulseAudio server)"


# -- espeak-ng ----------------------------------------------------------------------------
async def _run(argv: list[str], *, kind: str, stdin: bytes | None = None) -> None:
    """Run a command without blocking the loop; killed if the awaiting task is cancelled."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,  # espeak-ng prints some errors here
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        raise SpeechError(kind, f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    try:
        output, _ = await proc.communicate(stdin)
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        first = output.decode("utf-8", "replace").strip().splitlines()[:1]
        detail = "".join(first)[:200]
        if stdin and stdin.decode("utf-8", "replace") in detail:
            detail = "(output withheld: it echoes the prompt)"
        raise SpeechError(kind, f"{Path(argv[0]).name} exited {proc.returncode}: {detail}")


class EspeakSpeaker:
    """espeak-ng renders each prompt to a WAV (cached by text, voice and rate), a `Player`
    plays it. Nothing starts until the first prompt: no process, no temp dir."""

    def __init__(
        self,
        config: SpeechSection,
        player: Player,
        *,
        executable: str = "espeak-ng",
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self.config = config
        self.player = player
        self.executable = executable
        self.cache_entries = cache_entries
        self.renders = 0  # how many prompts espeak-ng rendered (the rest were cache hits)
        self._dir: Path | None = None
        self._cache: OrderedDict[tuple[str, int, str], Path] = OrderedDict()
        self._job: asyncio.Task[bool] | None = None
        self._logged: set[str] = set()

    # -- the Speaker interface ------------------------------------------------------------
    async def say(self, text: str, locale: str, *, key: str = "", elderly: bool = False) -> bool:
        self.cancel()
        job = asyncio.create_task(self._speak(text, locale, key or "-", elderly))
        self._job = job
        try:
            await asyncio.wait({job})
        except asyncio.CancelledError:
            job.cancel()
            raise
        return not job.cancelled() and job.result()

    def cancel(self) -> None:
        if self._job is not None and not self._job.done():
            self._job.cancel()
        self._job = None

    def clear_cache(self) -> None:
        for path in self._cache.values():
            path.unlink(missing_ok=True)
        self._cache.clear()

    def close(self) -> None:
        self.cancel()
        self._cache.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # -- inside ---------------------------------------------------------------------------
    def voice(self, locale: str) -> str:
        return self.config.voice_zh if locale.startswith("zh") else self.config.voice_en

    def rate(self, elderly: bool) -> int:
        return self.config.rate_wpm_elderly if elderly else self.config.rate_wpm

    async def _speak(self, text: str, locale: str, key: str, elderly: bool) -> bool:
        started = time.perf_counter()
        try:
            wav, hit = await self.render(text, self.voice(locale), self.rate(elderly))
            rendered = time.perf_counter()
            await self.player.play(wav)
        except SpeechError as exc:
            if exc.kind not in self._logged:
                self._logged.add(exc.kind)
                _log.error(
                    "speech: prompt %s (%d chars) not spoken: %s (logged once)", key, len(text), exc
                )
            return False
        _log.debug(
            "speech: said %s (%d chars, %s, render %.0f ms, player %s)",
            key, len(text), "cache hit" if hit else "rendered",
            (rendered - started) * 1000, self.player.name,
        )
        return True

    async def render(self, text: str, voice: str, rate: int) -> tuple[Path, bool]:
        """The WAV for this text, voice and rate, and whether it came from the cache."""
        cache_key = (voice, rate, text)
        cached = self._cache.get(cache_key)
        if cached is not None and cached.exists():
            self._cache.move_to_end(cache_key)
            return cached, True
        folder = self._folder()
        digest = hashlib.sha256(f"{voice}\0{rate}\0{text}".encode()).hexdigest()[:32]
        path = folder / f"{digest}.wav"
        partial = folder / f"{digest}.{id(asyncio.current_task())}.part"
        try:
            await _run(
                [self.executable, "-v", voice, "-s", str(rate), "-w", str(partial), "--stdin"],
                kind="engine",
                stdin=text.encode("utf-8"),
            )
            if not partial.exists() or partial.stat().st_size <= 44:  # a bare RIFF header
                raise SpeechError("engine", f"{Path(self.executable).name} wrote no audio")
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        self.renders += 1
        self._cache[cache_key] = path
        while len(self._cache) > self.cache_entries:
            _, old = self._cache.popitem(last=False)
            old.unlink(missing_ok=True)
        return path, False

    def _folder(self) -> Path:
        if self._dir is None or not self._dir.is_dir():
            self._dir = Path(tempfile.mkdtemp(prefix="kiosk-speech-"))  # mode 0700
            atexit.register(shutil.rmtree, self._dir, True)
        return self._dir


def speaker_for(config: SpeechSection) -> Speaker:
    """The configured speaker. Cheap: detects the sound device, starts nothing."""
    if not config.enabled or config.engine == "none":
        _log.info("speech: off (enabled=%s, engine=%s)", config.enabled, config.engine)
        return NullSpeaker()
    player, why = detect_player()
    found = shutil.which("espeak-ng")
    _log.info(
        "speech: %s (voices %s/%s, %d/%d wpm, %s), player %s: %s; speaks %s",
        config.engine,
        config.voice_zh,
        config.voice_en,
        config.rate_wpm,
        config.rate_wpm_elderly,
        "found" if found else "NOT FOUND: install the Debian package espeak-ng",
        player.name,
        why if player.name != "none" else why + ", prompts are rendered and discarded",
        "always" if config.always else "in 长辈模式",
    )
    return EspeakSpeaker(config, player, executable=found or "espeak-ng")
