import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from kiosk import config
from kiosk.config import ConfigError, KioskConfig

ROOT = Path(__file__).resolve().parents[2]


def problems(text: str, tmp_path: Path) -> str:
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert str(path) in message  # always names the file
    return message


def test_empty_file_gives_laptop_defaults(tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_text("")
    cfg = config.load(path)
    assert cfg.session.idle_timeout_s == 60 and cfg.session.warning_s == 15
    assert cfg.display.fullscreen is False
    assert cfg.resolve(cfg.paths.data_dir) == tmp_path / "var"


def test_example_file_documents_exactly_the_defaults():
    example = config.load(ROOT / "kiosk.example.toml")
    assert example.model_dump() == KioskConfig().model_dump()


def leaf_keys(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from leaf_keys(field.annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_docs_mention_every_key():
    docs = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    keys = list(leaf_keys(KioskConfig))
    assert "devices.qr.source" in keys and "session.idle_timeout_s" in keys
    for key in keys:
        assert f"`{key}`" in docs, f"docs/config.md misses {key}"


def test_unknown_key_names_line_and_suggests(tmp_path):
    msg = problems("[kiosk]\nid = 'k1'\n\n[session]\nidle_timout_s = 30\n", tmp_path)
    assert "kiosk.toml:5:" in msg
    assert "unknown key 'idle_timout_s' in [session]" in msg
    assert "did you mean 'idle_timeout_s'" in msg


def test_unknown_section(tmp_path):
    msg = problems("[sesion]\nidle_timeout_s = 30\n", tmp_path)
    assert "kiosk.toml:1: sesion: unknown section [sesion]" in msg
    assert "did you mean 'session'" in msg


def test_nested_sections_are_checked_and_located(tmp_path):
    msg = problems("[devices.id_card]\nport = 'sim'\nbaud = 9600\n", tmp_path)
    assert "kiosk.toml:3: devices.id_card.baud: unknown key 'baud' in [devices.id_card]" in msg
    assert "did you mean 'baudrate'" in msg
    msg = problems("[devices.printer]\nhost = 'x'\n", tmp_path)
    assert "kiosk.toml:1: devices.printer: unknown section [devices.printer]" in msg
    assert "did you mean 'a4_printer'" in msg or "receipt_printer" in msg
    msg = problems("[devices.qr]\nsource = 'usb'\n", tmp_path)
    assert "kiosk.toml:2: devices.qr.source" in msg and "'serial' or 'camera'" in msg


@pytest.mark.parametrize(
    "text, key, words",
    [
        ("[session]\nidle_timeout_s = -5\n", "session.idle_timeout_s", "greater than 0"),
        ("[display]\nwidth = 'big'\n", "display.width", "integer"),
        ("[kiosk]\nlocale = 'fr'\n", "kiosk.locale", "'zh_CN' or 'en'"),
        ("[kiosk]\nid = 'has space'\n", "kiosk.id", "pattern"),
        ("[logging]\nformat = 'xml'\n", "logging.format", "'text' or 'json'"),
    ],
)
def test_wrong_values_name_the_key_and_the_problem(tmp_path, text, key, words):
    msg = problems(text, tmp_path)
    assert key in msg and words in msg
    assert re.search(r"kiosk\.toml:2: ", msg)


def test_hard_cap_must_exceed_idle_plus_warning(tmp_path):
    msg = problems("[session]\nhard_cap_s = 30\n", tmp_path)
    assert "hard_cap_s must be longer than idle_timeout_s + warning_s" in msg


def test_bad_regex_is_named(tmp_path):
    msg = problems("[privacy]\ncode_patterns = ['SFM(']\n", tmp_path)
    assert "'SFM(' is not a valid regex" in msg


def test_not_toml(tmp_path):
    assert "not valid TOML" in problems("[session\n", tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        config.load(tmp_path / "nope.toml")


def test_several_problems_are_all_reported(tmp_path):
    msg = problems("[session]\nidle_timeout_s = 0\nwarning_s = -1\n", tmp_path)
    assert "session.idle_timeout_s" in msg and "session.warning_s" in msg
