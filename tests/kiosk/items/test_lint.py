"""`lint(path)` on broken item folders: every problem names the file, the line and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.items import cli
from kiosk.items.lint import LintProblem, lint
from kiosk.items.loader import HooksInvalid, LocalesInvalid, ManifestInvalid, load_item
from kiosk.items.testing import MINIMAL_TOML, write_item

GOOD = MINIMAL_TOML.format(id="test_item", code="TEST-0001")


def line_of(text: str, fragment: str, nth: int = 1) -> int:
    """1-based line of the nth line containing fragment."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if fragment in line]
    return hits[nth - 1]


def only(problems: list[LintProblem]) -> LintProblem:
    assert len(problems) == 1, problems
    problem = problems[0]
    assert problem.fix and problem.message
    return problem


def test_a_good_folder_is_clean(tmp_path):
    assert lint(write_item(tmp_path)) == []


def test_toml_syntax_error_names_its_line(tmp_path):
    broken = GOOD.replace('version = "1.0.0"', "version = 1.0.0.0")
    problem = only(lint(write_item(tmp_path, toml=broken)))
    assert problem.file.endswith("test_item/item.toml")
    assert problem.line == line_of(broken, "version")
    assert "TOML syntax error" in problem.message
    with pytest.raises(ManifestInvalid):
        load_item(tmp_path / "test_item")


def test_duplicate_key_is_a_syntax_error(tmp_path):
    broken = GOOD.replace('kind = "print"', 'kind = "print"\nkind = "query"')
    problem = only(lint(write_item(tmp_path, toml=broken)))
    assert problem.line == line_of(broken, 'kind = "query"')


def test_unknown_top_level_key(tmp_path):
    broken = GOOD.replace('kind = "print"', 'kind = "print"\ncolour = "blue"')
    problem = only(lint(write_item(tmp_path, toml=broken)))
    assert problem.line == line_of(broken, "colour")
    assert "unknown key 'colour'" in problem.message
    assert "remove it" in problem.fix


def test_unknown_key_inside_a_field_points_at_that_field(tmp_path):
    broken = GOOD.replace("max = 3", "max = 3\nmaximum = 4")
    problem = only(lint(write_item(tmp_path, toml=broken)))
    assert problem.line == line_of(broken, "maximum")
    assert "fields[0]" in problem.message


def test_missing_english_text(tmp_path):
    broken = GOOD.replace('en = "Test certificate print"\n', "")
    problem = only(lint(write_item(tmp_path, toml=broken)))
    assert problem.line == line_of(broken, "[name]")
    assert "name has no en text" in problem.message
    assert "add en" in problem.fix


def test_missing_chinese_text_in_an_inline_table(tmp_path):
    broken = GOOD.replace('fee = { zh = "免费。", en = "Free." }', 'fee = { en = "Free." }')
    problem = only(lint(write_item(tmp_path, toml=broken)))
    assert problem.line == line_of(broken, "fee =")
    assert "zh" in problem.message


def test_unknown_device_class(tmp_path):
    broken = GOOD.replace('devices = ["a4_printer"]', 'devices = ["a4_printer", "laser"]')
    problem = only(lint(write_item(tmp_path, toml=broken)))
    assert problem.line == line_of(broken, "devices")
    assert "unknown device class 'laser'" in problem.message
    assert "a4_printer" in problem.fix and "receipt_printer" in problem.fix


def test_unknown_certificate_type_on_its_own_line(tmp_path):
    broken = GOOD.replace(
        'certificates = ["ssc_participation"]',
        'certificates = [\n    "ssc_participation",\n    "driving_licence",\n]',
    )
    problem = only(lint(write_item(tmp_path, toml=broken)))
    assert problem.line == line_of(broken, "driving_licence")
    assert "unknown certificate type 'driving_licence'" in problem.message
    assert "household_register" in problem.fix


def test_duplicate_field_ids_point_at_the_second(tmp_path):
    broken = GOOD.replace(
        "[guide]",
        '[[fields]]\nid = "copies"\ntype = "yes_no"\nlabel = { zh = "是否", en = "Yes?" }\n\n[guide]',
    )
    problem = only(lint(write_item(tmp_path, toml=broken)))
    assert problem.line == line_of(broken, 'id = "copies"', nth=2)
    assert "used twice" in problem.message


def test_unknown_field_type_is_refused_with_the_list(tmp_path):
    broken = GOOD.replace('type = "number"', 'type = "text"')
    problem = only(lint(write_item(tmp_path, toml=broken)))
    assert problem.line == line_of(broken, "[[fields]]")
    assert "'text'" in problem.message and "yes_no" in problem.fix


def test_id_must_be_the_folder_name(tmp_path):
    folder = write_item(tmp_path, "other_name", toml=GOOD)
    problem = only(lint(folder))
    assert problem.line == 1
    assert "folder name 'other_name'" in problem.message
    assert 'id = "other_name"' in problem.fix


def test_several_problems_are_reported_together(tmp_path):
    broken = GOOD.replace('kind = "print"', 'kind = "print"\ncolour = 1').replace('"a4_printer"]', '"fax"]')
    problems = lint(write_item(tmp_path, toml=broken))
    assert len(problems) == 2
    assert [p.line for p in problems] == sorted(p.line for p in problems)


def test_output_without_its_device(tmp_path):
    broken = GOOD.replace('devices = ["a4_printer"]\n', "")
    problem = only(lint(write_item(tmp_path, toml=broken)))
    assert problem.line == line_of(broken, "outputs")
    assert 'add "a4_printer" to devices' in problem.fix


def test_no_item_toml(tmp_path):
    (tmp_path / "empty_item").mkdir()
    problem = only(lint(tmp_path / "empty_item" / "item.toml"))
    assert problem.line == 0 and "no such file" in problem.message
    problems = lint(tmp_path)
    assert problems[0].file.endswith("item.toml") and "create item.toml" in problems[0].fix


# -- hooks.py ------------------------------------------------------------------------------

HOOKED = GOOD.replace('outputs = ["a4_pdf"]', 'outputs = ["a4_pdf"]\nhooks = ["validate"]')


def test_hooks_syntax_error(tmp_path):
    folder = write_item(tmp_path, toml=HOOKED, hooks="def validate(answers, ctx):\n    return [\n")
    problem = only(lint(folder))
    assert problem.file.endswith("hooks.py")
    assert problem.line in (2, 3)
    assert "syntax" in problem.message


def test_hooks_that_fail_to_import(tmp_path):
    source = "import os\n\nraise RuntimeError('boom')\n\ndef validate(answers, ctx):\n    return []\n"
    folder = write_item(tmp_path, toml=HOOKED, hooks=source)
    problem = only(lint(folder))
    assert problem.line == 3
    assert "fails to import: RuntimeError: boom" in problem.message
    with pytest.raises(HooksInvalid):
        load_item(folder)


def test_hooks_importing_a_missing_module(tmp_path):
    source = "def validate(answers, ctx):\n    return []\n\nimport no_such_module_here\n"
    problem = only(lint(write_item(tmp_path, toml=HOOKED, hooks=source)))
    assert problem.line == 4 and "ModuleNotFoundError" in problem.message


def test_unknown_hook_name(tmp_path):
    source = "def validate(answers, ctx):\n    return []\n\n\ndef before_print(answers, ctx):\n    return None\n"
    problem = only(lint(write_item(tmp_path, toml=HOOKED, hooks=source)))
    assert problem.line == 5
    assert "'before_print' is not a hook" in problem.message
    assert "_before_print" in problem.fix


def test_private_helpers_are_fine(tmp_path):
    source = "def _helper():\n    return []\n\n\ndef validate(answers, ctx):\n    return _helper()\n"
    assert lint(write_item(tmp_path, toml=HOOKED, hooks=source)) == []


def test_hook_with_wrong_parameters(tmp_path):
    problem = only(lint(write_item(tmp_path, toml=HOOKED, hooks="def validate(answers):\n    return []\n")))
    assert problem.line == 1 and "def validate(answers, ctx)" in problem.fix


def test_declared_hook_not_defined_and_defined_not_declared(tmp_path):
    source = "def render_result(result, ctx):\n    return None\n"
    problems = lint(write_item(tmp_path, toml=HOOKED, hooks=source))
    by_file = {Path(p.file).name: p for p in problems}
    assert by_file["item.toml"].line == line_of(HOOKED, "hooks =")
    assert "does not define it" in by_file["item.toml"].message
    assert by_file["hooks.py"].line == 1
    assert 'add "render_result" to hooks' in by_file["hooks.py"].fix


def test_declared_hook_without_hooks_py(tmp_path):
    problem = only(lint(write_item(tmp_path, toml=HOOKED)))
    assert problem.file.endswith("item.toml") and "no hooks.py" in problem.message


# -- locales/ --------------------------------------------------------------------------------


def test_missing_language_file(tmp_path):
    folder = write_item(tmp_path, locales={"zh_CN": '[items.test_item]\nhello = "你好"\n'})
    problem = only(lint(folder))
    assert problem.file.endswith("locales/en.toml") and problem.line == 0
    with pytest.raises(LocalesInvalid):
        load_item(folder)


def test_locale_keys_must_match(tmp_path):
    folder = write_item(
        tmp_path,
        locales={
            "zh_CN": '[items.test_item]\nhello = "你好"\nbye = "再见"\n',
            "en": '[items.test_item]\nhello = "Hello"\n',
        },
    )
    problem = only(lint(folder))
    assert problem.file.endswith("zh_CN.toml") and problem.line == 3
    assert "bye" in problem.message and "en.toml" in problem.fix


def test_locale_keys_stay_in_the_items_namespace(tmp_path):
    folder = write_item(
        tmp_path,
        locales={"zh_CN": '[app]\ntitle = "抢"\n', "en": '[app]\ntitle = "Grab"\n'},
    )
    problems = lint(folder)
    assert {p.line for p in problems} == {2}
    assert "[items.test_item]" in problems[0].fix


def test_placeholders_must_match(tmp_path):
    folder = write_item(
        tmp_path,
        locales={
            "zh_CN": '[items.test_item]\nage = "年满{age}周岁"\n',
            "en": '[items.test_item]\nage = "Aged {years}"\n',
        },
    )
    problem = only(lint(folder))
    assert problem.line == 2 and "placeholders" in problem.message


def test_strings_used_by_hooks_must_exist(tmp_path):
    source = (
        "from kiosk.items.hooks import FieldError\n\n\ndef validate(answers, ctx):\n"
        "    return [FieldError('copies', 'items.test_item.too_many')]\n"
    )
    problems = lint(write_item(tmp_path, toml=HOOKED, hooks=source))
    assert {(Path(p.file).name, p.line) for p in problems} == {("hooks.py", 5)}
    assert len(problems) == 2  # one per language


# -- folders of items and the command line -----------------------------------------------


def test_shared_item_code_across_folders(tmp_path):
    write_item(tmp_path, "first_item")
    write_item(tmp_path, "second_item")
    problem = only(lint(tmp_path))
    assert "also used by first_item" in problem.message
    assert problem.line == line_of(GOOD, "item_code")


def test_cli_lint_exit_codes_and_output(tmp_path, capsys):
    good = write_item(tmp_path, "good_item", code="TEST-0001")
    assert cli.main(["lint", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = write_item(tmp_path, "bad_item", GOOD.replace("test_item", "bad_item").replace("a4_printer\"]", "fax\"]"), code="TEST-2")
    assert cli.main(["lint", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad / 'item.toml'}:{line_of(GOOD, 'devices')}: unknown device class 'fax'" in out
    assert "    fix: use one of:" in out


def test_cli_list_shows_items_and_broken_ones(tmp_path, capsys):
    write_item(tmp_path, "good_item", code="TEST-0001")
    write_item(tmp_path, "bad_item", "id = ", code="TEST-2")
    assert cli.main(["list", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "good_item" in out and "bad_item" in out and "BROKEN" in out
    assert cli.main(["list", "--root", str(tmp_path), "--json"]) == 1
    assert '"good_item"' in capsys.readouterr().out


def test_cli_plugs_into_the_kiosk_parser():
    import argparse

    parser = argparse.ArgumentParser(prog="kiosk")
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["items", "lint", "x"])
    assert args.func is cli.cmd_lint and args.path == "x"
