"""社保缴费记录查询: ask for one year, show one line per month with base, amount and status.

The platform answers rows of `month`, `insurance` (险种 code), `base`, `personal`,
`employer` and `status`; the screen shows money with two decimals and the 险种 and status
in words, and a total of what the citizen paid.
"""

from kiosk.items.hooks import ResultLine, ResultTable, ScreenResult

_INSURANCE = ("pension", "medical", "unemployment", "work_injury", "maternity")
_STATUSES = ("paid", "unpaid", "arrears")


def build_application(answers, ctx):
    return {"year": answers["year"]}


def _money(value):
    return f"{float(value):,.2f}"


def _word(ctx, group, value, known):
    return ctx.t(f"items.ssc_payment_records.{group}.{value}") if value in known else str(value)


def render_result(result, ctx):
    t = ctx.t
    rows = tuple(
        (
            str(row.get("month", "")),
            _word(ctx, "insurance", row.get("insurance"), _INSURANCE),
            _money(row.get("base", 0)),
            _money(row.get("personal", 0)),
            _word(ctx, "status", row.get("status"), _STATUSES),
        )
        for row in result.rows
    )
    paid = sum(float(row.get("personal", 0)) for row in result.rows if row.get("status") == "paid")
    lines = (
        ResultLine(t("items.ssc_payment_records.months"), str(len({r[0] for r in rows}))),
        ResultLine(t("items.ssc_payment_records.total_personal"), _money(paid)),
    )
    columns = tuple(
        t(f"items.ssc_payment_records.column.{key}")
        for key in ("month", "insurance", "base", "personal", "status")
    )
    note = "" if rows else t("items.result.empty")
    return ScreenResult(ctx.item.name.get(ctx.locale), lines, ResultTable(columns, rows), note)
