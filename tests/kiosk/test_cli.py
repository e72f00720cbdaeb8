import subprocess
import sys
from pathlib import Path

from kiosk.cli import main

ROOT = Path(__file__).resolve().parents[2]
KIOSK = Path(sys.executable).with_name("kiosk")


def test_help_lists_the_subcommands():
    out = subprocess.run([KIOSK, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("run", "demo", "config", "version"):
        assert command in out


def test_config_check_accepts_the_example(capsys):
    assert main(["config", "check", str(ROOT / "kiosk.example.toml")]) == 0
    assert "OK" in capsys.readouterr().out


def test_invalid_config_exits_2_naming_file_key_and_problem(tmp_path):
    bad = tmp_path / "kiosk.toml"
    bad.write_text("[session]\nwarning_s = 'soon'\n")
    result = subprocess.run(
        [KIOSK, "--config", str(bad), "run", "--headless"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert str(bad) in result.stderr
    assert "kiosk.toml:2: session.warning_s" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_show_prints_effective_values(tmp_path, capsys):
    cfg = tmp_path / "k.toml"
    cfg.write_text("[kiosk]\nid = 'wx-bank-0042'\n")
    assert main(["--config", str(cfg), "config", "show"]) == 0
    out = capsys.readouterr().out
    assert '"id": "wx-bank-0042"' in out and '"idle_timeout_s": 60' in out


def test_building_the_command_line_loads_no_heavy_stack():
    # `kiosk run` builds the whole parser: every subcommand must load its modules only
    # when it runs, or the kiosk's start-up time and memory grow with each new command.
    probe = (
        "import sys, kiosk.cli; kiosk.cli.parser(); "
        "print(' '.join(m for m in ('aiohttp', 'cryptography', 'kivy', 'drivers', "
        "'kiosk.services', 'kiosk.outbox.store', 'kiosk.items.registry', 'escpos') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []
