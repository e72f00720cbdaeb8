"""The two visual themes, normal and elderly (长辈模式), as plain data.

Sizes follow DESIGN §10: main text ≥ 18 pt (≥ 30 pt elderly), touch targets ≥ 44 dp
(≥ 60 dp elderly). Colours are checked for contrast (WCAG 2 formula) by the tests; every
text/background pair the screens use is listed in `text_pairs()`.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[float, float, float]


def hex_rgb(value: str) -> RGB:
    value = value.lstrip("#")
    return tuple(int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def _linear(channel: float) -> float:
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4


def luminance(rgb: RGB) -> float:
    r, g, b = (_linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@dataclass(frozen=True)
class Palette:
    background: RGB = hex_rgb("#F4F6F9")
    surface: RGB = hex_rgb("#FFFFFF")
    text: RGB = hex_rgb("#1B1F24")
    text_muted: RGB = hex_rgb("#454C55")
    primary: RGB = hex_rgb("#0A4A94")  # 政务蓝
    on_primary: RGB = hex_rgb("#FFFFFF")
    header: RGB = hex_rgb("#0A3D7A")
    on_header: RGB = hex_rgb("#FFFFFF")
    warning: RGB = hex_rgb("#7A3E00")
    warning_surface: RGB = hex_rgb("#FFF1D6")
    outline: RGB = hex_rgb("#5B6470")

    def text_pairs(self) -> dict[str, tuple[RGB, RGB]]:
        return {
            "text on background": (self.text, self.background),
            "text on surface": (self.text, self.surface),
            "muted text on surface": (self.text_muted, self.surface),
            "muted text on background": (self.text_muted, self.background),
            "button label": (self.on_primary, self.primary),
            "outline button label": (self.primary, self.surface),
            "header": (self.on_header, self.header),
            "warning": (self.warning, self.warning_surface),
            "warning on surface": (self.warning, self.surface),
            "warning on background": (self.warning, self.background),
            "disabled item text": (self.text_muted, self.background),
        }


@dataclass(frozen=True)
class Theme:
    name: str
    title_pt: float
    body_pt: float  # main text
    hint_pt: float  # secondary lines under a main text
    footer_pt: float  # small print at the bottom edge
    button_pt: float
    hero_button_pt: float  # 开始办理
    target_dp: float  # minimum height/width of anything touchable
    hero_target_dp: float
    spacing_dp: float
    line_height: float = 1.35
    palette: Palette = Palette()


NORMAL = Theme(
    name="normal",
    title_pt=30,
    body_pt=18,
    hint_pt=16,
    footer_pt=13,
    button_pt=20,
    hero_button_pt=30,
    target_dp=64,
    hero_target_dp=110,
    spacing_dp=16,
)

ELDERLY = Theme(
    name="elderly",
    title_pt=40,
    body_pt=30,
    hint_pt=26,
    footer_pt=18,
    button_pt=30,
    hero_button_pt=44,
    target_dp=88,
    hero_target_dp=120,
    spacing_dp=20,
    line_height=1.4,
)


def for_mode(elderly: bool) -> Theme:
    return ELDERLY if elderly else NORMAL
