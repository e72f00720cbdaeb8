import re
from pathlib import Path

import pytest

from kiosk import i18n
from kiosk.i18n import Translator

ROOT = Path(__file__).resolve().parents[2]


def test_every_locale_has_the_same_keys():
    zh, en = (set(i18n.catalogue(loc)) for loc in i18n.LOCALES)
    assert zh - en == set(), "missing in en"
    assert en - zh == set(), "missing in zh_CN"


def test_placeholders_match_across_locales():
    zh, en = i18n.catalogue("zh_CN"), i18n.catalogue("en")
    for key in zh:
        assert i18n.placeholders(zh[key]) == i18n.placeholders(en[key]), key


def test_every_catalogue_folder_has_every_locale():
    for folder in i18n.catalogue_dirs():
        for loc in i18n.LOCALES:
            assert (folder / f"{loc}.toml").is_file(), f"{folder} lacks {loc}.toml"


def test_no_empty_strings():
    for loc in i18n.LOCALES:
        assert all(text.strip() for text in i18n.catalogue(loc).values()), loc


def test_every_key_the_screens_use_exists():
    used = set()
    for path in (ROOT / "screens").rglob("*.kv"):
        used |= set(re.findall(r'app\.t\(\s*"([a-z_.]+)"', path.read_text(encoding="utf-8")))
        for a, b in re.findall(r'app\.t\(\s*"([a-z_.]+)" if .+? else "([a-z_.]+)"', path.read_text()):
            used |= {a, b}
    assert used, "no keys found: the pattern is stale"
    assert used - set(i18n.catalogue("zh_CN")) == set()


def test_translate_and_format():
    t = Translator()
    assert t("attract.start") == "开始办理"
    assert t("attract.start", "en") == "Start"
    assert t("countdown.message", seconds=9).startswith("9 秒")
    t.locale = "en"
    assert t("countdown.message", seconds=9).startswith("In 9 seconds")


def test_missing_key_shows_the_key_not_a_crash(caplog):
    t = Translator()
    assert t("no.such.key") == "no.such.key"
    assert "missing translation no.such.key" in caplog.text


def test_unknown_locale_is_refused():
    with pytest.raises(ValueError, match="unknown locale"):
        Translator("fr")
