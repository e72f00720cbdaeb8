import pytest

from screens import theme


@pytest.mark.parametrize("t", [theme.NORMAL, theme.ELDERLY], ids=lambda t: t.name)
def test_every_text_pair_reaches_7_to_1(t):
    for name, (fg, bg) in t.palette.text_pairs().items():
        assert theme.contrast(fg, bg) >= 7.0, name


def test_contrast_formula_matches_wcag_reference_values():
    black, white = theme.hex_rgb("#000000"), theme.hex_rgb("#FFFFFF")
    assert theme.contrast(black, white) == pytest.approx(21.0)
    assert theme.contrast(theme.hex_rgb("#777777"), white) == pytest.approx(4.48, abs=0.01)


def test_elderly_numbers_meet_design_section_10():
    e, n = theme.ELDERLY, theme.NORMAL
    assert e.body_pt >= 30 and e.button_pt >= 30 and e.title_pt >= 30
    assert n.body_pt >= 18 and n.button_pt >= 18
    assert e.target_dp >= 60 and n.target_dp >= 44
    assert e.line_height >= 1.3 and n.line_height >= 1.3
    for field in ("title_pt", "body_pt", "hint_pt", "button_pt", "hero_button_pt", "target_dp"):
        assert getattr(e, field) > getattr(n, field), field
