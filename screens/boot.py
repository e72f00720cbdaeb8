"""Kivy's environment, set before Kivy is first imported (Kivy reads it at import time).

- headless (no display): SDL's offscreen driver renders for real through Mesa, no X needed;
- Kivy logs through Python's logging (so our redacting handlers see its lines too);
- a private KIVY_HOME, so the kiosk never writes into the user's ~/.kivy;
- the CJK font registered as Kivy's default, or every Chinese label shows empty boxes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Fonts tried in order. WenQuanYi Micro Hei is Debian's `fonts-wqy-microhei`; Noto Sans CJK's
# .ttc puts the Japanese face first, so it is only a fallback.
CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)


class BootError(RuntimeError):
    pass


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def find_cjk_font() -> str:
    for path in CJK_FONTS:
        if Path(path).is_file():
            return path
    raise BootError(
        "no Chinese font found (tried: " + ", ".join(CJK_FONTS) + "); "
        "install the Debian package fonts-wqy-microhei (make setup does)"
    )


def prepare(
    *,
    headless: bool,
    kivy_home: Path,
    width: int,
    height: int,
    fullscreen: bool,
    show_cursor: bool = True,
) -> str:
    """Set Kivy's environment and Config; register the CJK font. Returns the font path."""
    if "kivy" in sys.modules:
        raise BootError("Kivy was imported before screens.boot.prepare(); its settings would not apply")
    font = find_cjk_font()
    kivy_home.mkdir(parents=True, exist_ok=True)
    os.environ["KIVY_HOME"] = str(kivy_home)
    os.environ["KIVY_NO_ARGS"] = "1"
    os.environ["KIVY_LOG_MODE"] = "PYTHON"
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    if headless:
        os.environ["SDL_VIDEODRIVER"] = "offscreen"
    from kivy.config import Config

    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("graphics", "resizable", "0" if fullscreen else "1")
    Config.set("graphics", "show_cursor", "1" if show_cursor else "0")
    Config.set("kivy", "exit_on_escape", "0")
    # No red multitouch-emulation dots from right clicks; no on-screen keyboard.
    Config.set("input", "mouse", "mouse,disable_multitouch")
    # One touch source only: under a Wayland compositor (cage) touches already arrive
    # through SDL as mouse/finger events; Kivy's default probesysfs provider would read the
    # same touchscreen again from /dev/input and every tap would land twice
    # (docs/lockdown.md).
    if Config.has_option("input", "%(name)s"):
        Config.remove_option("input", "%(name)s")
    Config.set("kivy", "keyboard_mode", "system")

    from kivy.core.text import DEFAULT_FONT, LabelBase

    LabelBase.register(DEFAULT_FONT, font)
    return font
