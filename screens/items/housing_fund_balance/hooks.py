"""公积金账户余额查询: the SDK's rendering, with money in yuan and the account status in words.

The platform's summary has `balance`, `monthly_deposit`, `base` (the deposit base), `status`
in the centre's words (正常缴存 / 封存 / 销户) or as a code (normal / sealed / closed), and
`as_of_month` (the last month deposited).
"""

from kiosk.items.hooks import ResultLine, ScreenResult

# summary key → the label key it is shown under, in this order
_ORDER = (
    ("balance", "balance"),
    ("monthly_deposit", "monthly_deposit"),
    ("base", "deposit_base"),
    ("status", "status"),
    ("as_of_month", "last_deposit_month"),
)
_MONEY = ("balance", "monthly_deposit", "base")
_STATUS_CODES = {"正常缴存": "normal", "正常": "normal", "封存": "sealed", "销户": "closed",
                 "normal": "normal", "sealed": "sealed", "closed": "closed"}


def _value(ctx, key, value):
    if key in _MONEY:
        return f"{float(value):,.2f}"
    if key == "status" and str(value) in _STATUS_CODES:
        return ctx.t(f"items.housing_fund_balance.status.{_STATUS_CODES[str(value)]}")
    return str(value)


def render_result(result, ctx):
    lines = tuple(
        ResultLine(ctx.t(f"items.housing_fund_balance.summary.{label}"), _value(ctx, key, result.summary[key]))
        for key, label in _ORDER
        if key in result.summary
    )
    note = ctx.t("items.housing_fund_balance.as_of") if lines else ctx.t("items.result.empty")
    return ScreenResult(ctx.item.name.get(ctx.locale), lines, None, note)
