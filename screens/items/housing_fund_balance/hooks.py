"""公积金账户余额查询: the SDK's rendering, with money in yuan and the account status in words.

The platform's summary has `balance`, `monthly_deposit`, `deposit_base`, `status`
(normal 正常 / sealed 封存 / closed 销户) and `last_deposit_month`.
"""

from kiosk.items.hooks import ResultLine, ScreenResult

_ORDER = ("balance", "monthly_deposit", "deposit_base", "status", "last_deposit_month")
_MONEY = ("balance", "monthly_deposit", "deposit_base")
_STATUSES = ("normal", "sealed", "closed")


def _value(ctx, key, value):
    if key in _MONEY:
        return f"{float(value):,.2f}"
    if key == "status" and value in _STATUSES:
        return ctx.t(f"items.housing_fund_balance.status.{value}")
    return str(value)


def render_result(result, ctx):
    lines = tuple(
        ResultLine(ctx.t(f"items.housing_fund_balance.summary.{key}"), _value(ctx, key, result.summary[key]))
        for key in _ORDER
        if key in result.summary
    )
    note = ctx.t("items.housing_fund_balance.as_of") if lines else ctx.t("items.result.empty")
    return ScreenResult(ctx.item.name.get(ctx.locale), lines, None, note)
