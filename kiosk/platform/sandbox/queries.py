"""Answers of the sandbox's query items: 社保缴费记录 (a year's monthly rows), 公积金账户余额
and 办件进度. Pure functions of a citizen's seed data (or a case) and the day; amounts are
strings with two decimals (display-ready, no float rounding surprises on screen).

Contribution rates are illustrative Jiangsu-like values, not any city's legal rates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from kiosk.platform.api import CaseState
from kiosk.platform.sandbox.cases import NOTES

# (employer, personal) shares of the contribution base
EMPLOYEE_RATES: Mapping[str, tuple[Decimal, Decimal]] = {
    "pension": (Decimal("0.16"), Decimal("0.08")),
    "medical": (Decimal("0.07"), Decimal("0.02")),
    "unemployment": (Decimal("0.005"), Decimal("0.005")),
    "injury": (Decimal("0.004"), Decimal("0")),
}
# 灵活就业: the person pays pension and medical alone
FLEXIBLE_RATES: Mapping[str, tuple[Decimal, Decimal]] = {
    "pension": (Decimal("0"), Decimal("0.20")),
    "medical": (Decimal("0"), Decimal("0.08")),
}
BASE_GROWTH = Decimal("0.95")  # each earlier year's base is 5% lower
CENT = Decimal("0.01")


class QueryInputError(ValueError):
    """The query's parameters are not acceptable (the message names the parameter)."""


class NoSuchRecord(LookupError):
    """The citizen has no record of this kind (no housing-fund account, ...)."""


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _month(text: str) -> tuple[int, int]:
    year, month = text.split("-")
    return int(year), int(month)


def _months_between(start: tuple[int, int], end: tuple[int, int]) -> int:
    """Whole months from start to end (end exclusive)."""
    return (end[0] - start[0]) * 12 + (end[1] - start[1])


def mask_account(account: str) -> str:
    return account[:4] + "*" * max(len(account) - 8, 0) + account[-4:]


def ssc_payments(data: Mapping[str, Any], params: Mapping[str, Any], today: dt.date) -> tuple[
    dict[str, Any], list[dict[str, Any]]
]:
    """社保缴费记录: the contributions of one year, month by month, up to last month."""
    year = params.get("year", today.year)
    if isinstance(year, str) and year.isdigit():
        year = int(year)
    if not isinstance(year, int) or isinstance(year, bool) or not 1980 <= year <= today.year:
        raise QueryInputError("year: a year from 1980 to this year")
    ssc = data.get("ssc")
    if not ssc:
        raise NoSuchRecord("ssc")
    flexible = bool(ssc.get("flexible"))
    rates = FLEXIBLE_RATES if flexible else EMPLOYEE_RATES
    start = _month(ssc["start"])
    end = _month(ssc["retired_on"]) if ssc.get("retired_on") else (today.year, today.month)
    base = Decimal(str(ssc.get("base", 0))) * BASE_GROWTH ** (today.year - year)
    base = base.quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    rows: list[dict[str, Any]] = []
    employer_total = personal_total = Decimal(0)
    for month in range(1, 13):
        ym = (year, month)
        if ym < start or _months_between(ym, end) <= 0 or base <= 0:
            continue
        row: dict[str, Any] = {"month": f"{year}-{month:02d}", "base": _money(base)}
        for kind, (employer_rate, personal_rate) in rates.items():
            employer_part, personal_part = base * employer_rate, base * personal_rate
            row[f"{kind}_employer"] = _money(employer_part)
            row[f"{kind}_personal"] = _money(personal_part)
            employer_total += employer_part.quantize(CENT, rounding=ROUND_HALF_UP)
            personal_total += personal_part.quantize(CENT, rounding=ROUND_HALF_UP)
        row["status"] = "已到账"
        rows.append(row)
    summary = {
        "year": year,
        "months": len(rows),
        "agency": ssc["agency"],
        "employer": ssc["employer"],
        "flexible_employment": flexible,
        "insured_status": ssc["status"],
        "employer_total": _money(employer_total),
        "personal_total": _money(personal_total),
    }
    return summary, rows


def housing_fund_balance(data: Mapping[str, Any], today: dt.date) -> tuple[
    dict[str, Any], list[dict[str, Any]]
]:
    """公积金账户余额: the balance after the deposits up to last month, and the last six."""
    fund = data.get("housing_fund")
    if not fund:
        raise NoSuchRecord("housing_fund")
    base = Decimal(str(fund["base"]))
    rate = Decimal(str(fund["rate"]))
    share = (base * rate).quantize(CENT, rounding=ROUND_HALF_UP)  # employer = personal
    monthly = share * 2
    since = _month(fund["balance_month"])
    last_full = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    months = max(_months_between(since, last_full), 0)
    balance = Decimal(str(fund["balance"])) + monthly * months
    rows = []
    year, month = last_full
    for _ in range(6):
        rows.append({
            "month": f"{year}-{month:02d}", "kind": "汇缴", "employer": _money(share),
            "personal": _money(share), "total": _money(monthly),
        })
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    summary = {
        "account": mask_account(fund["account"]),
        "centre": fund["centre"],
        "employer": fund["employer"],
        "status": fund["status"],
        "base": _money(base),
        "rate": f"{int(rate * 100)}%",
        "monthly_deposit": _money(monthly),
        "balance": _money(balance),
        "as_of_month": f"{last_full[0]}-{last_full[1]:02d}",
    }
    return summary, rows


def case_progress(
    case_number: str,
    item_name: str,
    state: str,
    received_at: float,
    updated_at: float,
    history: tuple[tuple[str, float, str], ...],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """办件进度: the case's state and its history, newest last."""
    summary = {
        "case_number": case_number,
        "item": item_name,
        "state": state,
        "state_text": NOTES.get(CaseState(state), state),
        "received_at": received_at,
        "updated_at": updated_at,
    }
    rows = [{"state": s, "at": at, "note": note} for s, at, note in history]
    return summary, rows
