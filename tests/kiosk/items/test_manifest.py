"""The item.toml model: shipped manifests, field types and their answers, consistency rules,
where errors are located, and junk thrown at the reader and the loader."""

from __future__ import annotations

import datetime as dt
import string
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.items.hooks import HOOK_PARAMS
from kiosk.items.loader import ItemError, load_item
from kiosk.items.manifest import (
    HOOK_NAMES,
    AnswerError,
    Manifest,
    ManifestError,
    check_manifest,
    key_lines,
    read_manifest,
)
from kiosk.items.registry import ITEMS_ROOT
from kiosk.items.testing import MINIMAL_TOML, write_item

TODAY = dt.date(2026, 3, 16)
GOOD = MINIMAL_TOML.format(id="test_item", code="TEST-0001")


def data(**changes):
    base = tomllib.loads(GOOD)
    base.update(changes)
    return base


def field(**spec):
    return Manifest.model_validate(data(fields=[{"id": "answer", "label": {"zh": "项", "en": "F"}, **spec}])).fields[0]


def test_every_shipped_manifest_validates():
    folders = sorted(p for p in ITEMS_ROOT.iterdir() if (p / "item.toml").is_file())
    assert len(folders) == 10
    for folder in folders:
        manifest = read_manifest((folder / "item.toml").read_bytes(), "item.toml", folder.name)
        assert manifest.id == folder.name
        assert manifest.guide.conditions and manifest.guide.fee.zh and manifest.guide.fee.en


def test_hook_names_agree_between_modules():
    assert tuple(HOOK_PARAMS) == HOOK_NAMES


@pytest.mark.parametrize(
    ("spec", "answer", "expected"),
    [
        ({"type": "choice", "options": [{"value": "a", "label": {"zh": "甲", "en": "A"}}]}, "a", "a"),
        ({"type": "date", "min_offset": 0}, "2026-03-16", "2026-03-16"),
        ({"type": "date"}, dt.date(2020, 1, 2), "2020-01-02"),
        ({"type": "month", "min_offset": 0, "max_offset": 2}, "2026-05", "2026-05"),
        ({"type": "year", "min_offset": -5, "max_offset": 0}, "2024", 2024),
        ({"type": "number", "min": 1, "max": 3}, "2", 2),
        ({"type": "number", "integer": False}, 2.5, 2.5),
        ({"type": "phone"}, "138-1234-5678", "13812345678"),
        ({"type": "id_number"}, "11010519491231002x", "11010519491231002X"),
        ({"type": "yes_no"}, "yes", True),
        ({"type": "yes_no"}, False, False),
        ({"type": "case_number"}, " sb2026-0001 ", "SB2026-0001"),
    ],
)
def test_answers_are_normalised(spec, answer, expected):
    assert field(**spec).parse(answer, TODAY) == expected


@pytest.mark.parametrize(
    ("spec", "answer", "key"),
    [
        ({"type": "choice", "options": [{"value": "a", "label": {"zh": "甲", "en": "A"}}]}, "b", "not_an_option"),
        ({"type": "date", "min_offset": 0}, "2026-03-15", "too_early"),
        ({"type": "date", "max_offset": 30}, "2026-05-01", "too_late"),
        ({"type": "date"}, "16/03/2026", "bad_date"),
        ({"type": "month", "min_offset": 0}, "2026-02", "too_early"),
        ({"type": "month", "max_offset": 2}, "2026-06", "too_late"),
        ({"type": "month"}, "2026-13", "bad_month"),
        ({"type": "year", "max_offset": -1}, 2026, "too_late"),
        ({"type": "year"}, True, "bad_year"),
        ({"type": "number", "min": 1}, 0, "too_small"),
        ({"type": "number", "max": 3}, "4", "too_large"),
        ({"type": "number"}, 1.5, "not_integer"),
        ({"type": "number"}, "一", "bad_number"),
        ({"type": "number"}, float("nan"), "bad_number"),
        ({"type": "phone"}, "12812345678", "bad_phone"),
        ({"type": "id_number"}, "110105194912310021", "bad_id_number"),
        ({"type": "yes_no"}, "maybe", "bad_yes_no"),
        ({"type": "case_number"}, "办件1234567", "bad_case_number"),
    ],
)
def test_bad_answers_have_a_citizen_message(spec, answer, key):
    with pytest.raises(AnswerError) as caught:
        field(**spec).parse(answer, TODAY)
    assert caught.value.message_key == f"items.answer.{key}"


def test_bounds_become_message_parameters():
    with pytest.raises(AnswerError) as caught:
        field(type="number", max=3).parse(9, TODAY)
    assert caught.value.params == {"max": "3"}


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"certificates": []}, "lists none"),
        ({"outputs": ["screen"]}, "must output a4_pdf"),
        ({"identity": {"sources": ["ssc"], "min_assurance": "high"}}, "no citizen could reach"),
        ({"identity": {"sources": ["ssc", "ssc"]}}, "listed twice"),
        ({"devices": ["a4_printer", "a4_printer"]}, "listed twice"),
        ({"certificate_field": "copies"}, "not a choice field"),
        ({"query_by": "case_number"}, "exactly one case_number field"),
        ({"identity": {"sources": ["code"], "required": False}}, "only an item queried by case number"),
        ({"optional_outputs": ["a4_pdf"]}, "both outputs and optional_outputs"),
        ({"id": "journey"}, "reserved"),
        ({"kind": "submit", "outputs": ["a4_pdf"]}, "show or print the case number"),
    ],
)
def test_consistency_rules(changes, fragment):
    with pytest.raises(ManifestError) as caught:
        check_manifest(data(**changes), GOOD, "item.toml", None)
    assert any(fragment in p.message for p in caught.value.problems), caught.value.problems


def test_key_lines_follow_tables_arrays_and_inline_tables():
    text = (
        'id = "x"\n'  # 1
        "[name]\n"  # 2
        'zh = "名"\n'  # 3
        "[[fields]]\n"  # 4
        'id = "a"\n'  # 5
        "[[fields]]\n"  # 6
        "label = { zh = \"标\", en = 'L' }\n"  # 7
        "[[fields.options]]\n"  # 8
        'value = """multi\n'  # 9
        'line"""\n'  # 10
        "tags = [\n"  # 11
        '  "one", # comment\n'  # 12
        '  "two",\n'  # 13
        "]\n"
    )
    tomllib.loads(text)
    lines = key_lines(text)
    assert lines[("name", "zh")] == 3
    assert lines[("fields", 0, "id")] == 5
    assert lines[("fields", 1, "label", "en")] == 7
    assert lines[("fields", 1, "options", 0)] == 8
    assert lines[("fields", 1, "options", 0, "tags", 1)] == 13


def test_non_utf8_manifest(tmp_path):
    folder = write_item(tmp_path)
    (folder / "item.toml").write_bytes(GOOD.encode("utf-8") + b'\nx = "\xff"\n')
    with pytest.raises(ItemError) as caught:
        load_item(folder)
    assert "UTF-8" in caught.value.problems[0].message
    assert caught.value.problems[0].line == GOOD.count("\n") + 2


# -- junk in, typed errors out ---------------------------------------------------------------

_toml_ish = st.text(alphabet=string.printable + "名称证明[]{}=\"'#", max_size=300)


@settings(max_examples=150, deadline=None)
@given(_toml_ish)
def test_junk_text_gives_only_manifest_errors(text):
    try:
        read_manifest(text, "item.toml", "test_item")
    except ManifestError as exc:
        assert all(p.line >= 1 and p.fix for p in exc.problems)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=10,
)
_keys = st.sampled_from(
    ["id", "version", "name", "category", "item_code", "kind", "identity", "devices", "certificates",
     "fields", "guide", "outputs", "hooks", "commitment", "zzz"]
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=8), st.dictionaries(st.sampled_from(list(tomllib.loads(GOOD))), _values, max_size=3))
def test_junk_structures_give_only_manifest_errors(junk, overrides):
    for candidate in (junk, data(**overrides)):
        try:
            check_manifest(candidate, GOOD, "item.toml", "test_item")
        except ManifestError as exc:
            assert exc.problems and all(p.fix for p in exc.problems)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200), st.binary(max_size=100))
def test_junk_files_give_only_item_errors(tmp_path, manifest_bytes, hooks_bytes):
    folder = write_item(tmp_path)
    (folder / "item.toml").write_bytes(manifest_bytes)
    (folder / "hooks.py").write_bytes(hooks_bytes)
    with pytest.raises(ItemError):
        load_item(folder)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=string.printable, max_size=120))
def test_junk_hooks_give_only_item_errors(tmp_path, source):
    folder = write_item(tmp_path, toml=GOOD.replace('outputs = ["a4_pdf"]', 'outputs = ["a4_pdf"]\nhooks = ["validate"]'))
    (folder / "hooks.py").write_text(source)
    try:
        load_item(folder)
    except ItemError as exc:
        assert exc.problems


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[\n  " + ",\n  ".join(_toml_value(v) for v in value) + "\n]"
    return "{ " + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + " }"


_bare = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=6)
_toml_values = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(),
        st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_bare, inner, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_bare, _toml_values, min_size=1, max_size=6))
def test_key_lines_finds_every_top_level_key_of_valid_toml(document):
    text = "".join(f"{key} = {_toml_value(value)}\n" for key, value in document.items())
    assert tomllib.loads(text) == document
    lines = key_lines(text)
    expected = [i for i, line in enumerate(text.splitlines(), 1) if line and not line.startswith((" ", "]"))]
    assert [lines[(key,)] for key in document] == expected
