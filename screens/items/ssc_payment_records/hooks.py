"""社保缴费记录查询: ask for one year, show one line per month with base, amounts and status.

The platform answers one row per month: `month`, `base`, `<insurance>_personal` and
`<insurance>_employer` for each insurance the citizen pays into (pension, medical,
unemployment, work_injury, maternity), and `status` in the platform's words (已到账 /
未到账 / 欠费) or as a code. The screen shows the personal and employer totals per month,
money with two decimals, the status in the citizen's language, and what they paid in all.
"""

from kiosk.items.hooks import ResultLine, ResultTable, ScreenResult

# The platform's status words, and the codes a gateway may send instead.
_STATUS_CODES = {"已到账": "paid", "未到账": "unpaid", "欠费": "arrears",
                 "paid": "paid", "unpaid": "unpaid", "arrears": "arrears"}


def build_application(answers, ctx):
    return {"year": answers["year"]}


def _money(value):
    return f"{float(value):,.2f}"


def _part(row, side):
    return sum(float(value) for key, value in row.items() if key.endswith(f"_{side}"))


def _status(ctx, value):
    code = _STATUS_CODES.get(str(value))
    return ctx.t(f"items.ssc_payment_records.status.{code}") if code else str(value)


def render_result(result, ctx):
    t = ctx.t
    rows = tuple(
        (
            str(row.get("month", "")),
            _money(row.get("base", 0)),
            _money(_part(row, "personal")),
            _money(_part(row, "employer")),
            _status(ctx, row.get("status", "")),
        )
        for row in result.rows
    )
    paid = sum(
        _part(row, "personal")
        for row in result.rows
        if _STATUS_CODES.get(str(row.get("status"))) == "paid"
    )
    lines = (
        ResultLine(t("items.ssc_payment_records.months"), str(len({r[0] for r in rows}))),
        ResultLine(t("items.ssc_payment_records.total_personal"), _money(paid)),
    )
    columns = tuple(
        t(f"items.ssc_payment_records.column.{key}")
        for key in ("month", "base", "personal", "employer", "status")
    )
    note = "" if rows else t("items.result.empty")
    return ScreenResult(ctx.item.name.get(ctx.locale), lines, ResultTable(columns, rows), note)
