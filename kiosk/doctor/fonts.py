"""Fonts: the CJK font file Kivy is given exists, and fontconfig knows it too.

Kivy is handed a font *file* (screens/boot.py): without it every Chinese label is a row of
empty boxes. fontconfig matters for everything else that draws Chinese by name (SDL's text
input, the receipt's Pillow fallback, a browser on the maintenance screen), so the file
must also be in fontconfig's cache and be its pick for zh-cn.
"""

from __future__ import annotations

from pathlib import Path

from kiosk.doctor._proc import ToolMissing, run_tool
from kiosk.doctor.context import DoctorContext
from kiosk.doctor.model import CheckResult, fail, ok, warn

GROUP = "fonts"
INSTALL = "apt-get install --no-install-recommends fonts-wqy-microhei"


def candidates(ctx: DoctorContext) -> tuple[str, ...]:
    if ctx.options.fonts is not None:
        return ctx.options.fonts
    configured = getattr(ctx.config.display, "font", "")  # `[display] font`, once it exists
    if configured:
        return (str(ctx.config.resolve(configured)),)
    from screens.boot import CJK_FONTS  # plain constants: importing it loads no Kivy

    return CJK_FONTS


async def run(ctx: DoctorContext) -> list[CheckResult]:
    tried = candidates(ctx)
    font = next((p for p in tried if Path(p).is_file()), None)
    if font is None:
        return [fail(
            "fonts.cjk",
            "no Chinese font file: tried " + ", ".join(tried),
            f"{INSTALL}  (or set [display] font = \"/path/to/font.ttc\" in {ctx.config_file})",
        )]
    results = [ok("fonts.cjk", f"Kivy's CJK font: {font}")]
    try:
        code, listed, _ = await run_tool("fc-list", "--format", "%{file}\n")
        _, picked, _ = await run_tool("fc-match", "--format", "%{file}", ":lang=zh-cn")
    except ToolMissing:
        results.append(warn("fonts.fontconfig", "fc-list/fc-match are not installed",
                            "apt-get install --no-install-recommends fontconfig"))
        return results
    real = str(Path(font).resolve())
    known = {str(Path(line).resolve()) for line in listed.splitlines() if line}
    if code != 0 or real not in known:
        results.append(warn("fonts.fontconfig", f"fontconfig does not list {font}",
                            f"copy it under /usr/local/share/fonts/ and run: fc-cache -f"))
    elif picked and str(Path(picked).resolve()) != real:
        results.append(warn(
            "fonts.fontconfig",
            f"fc-match picks {picked} for zh-cn, not {font}",
            "prefer it for Chinese in /etc/fonts/local.conf (<alias><family>sans-serif</family>"
            "<prefer><family>WenQuanYi Micro Hei</family></prefer></alias>), then fc-cache -f",
        ))
    else:
        results.append(ok("fonts.fontconfig", f"fc-match picks {picked} for zh-cn"))
    return results
