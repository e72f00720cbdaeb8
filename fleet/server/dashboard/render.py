"""The Jinja2 environment: templates in fleet/server/templates, autoescaped, with the filters
the pages share (labels, China-time timestamps, ages, sizes) and the security headers every
dashboard response carries.

Times are shown in China Standard Time (UTC+8, no daylight saving), the time ops and branch
staff read on their watches; the full timestamp is in the `<time datetime>` attribute.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web

from fleet.server.dashboard import labels

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = TEMPLATES / "static"
CHINA = dt.timezone(dt.timedelta(hours=8), "CST")

# No script runs on these pages; styles and images come from this server (PNG screenshots
# are served by it too); forms post only to it; no other site may frame it.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def china_time(ts: float | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if ts is None:
        return "—"
    return dt.datetime.fromtimestamp(ts, CHINA).strftime(fmt)


def iso_time(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")


def age(ts: float | None, now: float | None = None) -> str:
    """"3 分钟前 / 3 min ago" style; the future (a kiosk clock ahead) reads "in ..."."""
    if ts is None:
        return "—"
    delta = (time.time() if now is None else now) - ts
    ahead = delta < 0
    s = abs(delta)
    if s < 60:
        zh, en = f"{s:.0f} 秒", f"{s:.0f} s"
    elif s < 3600:
        zh, en = f"{s / 60:.0f} 分钟", f"{s / 60:.0f} min"
    elif s < 86400:
        zh, en = f"{s / 3600:.1f} 小时", f"{s / 3600:.1f} h"
    else:
        zh, en = f"{s / 86400:.1f} 天", f"{s / 86400:.1f} d"
    return f"{zh}后 / in {en}" if ahead else f"{zh}前 / {en} ago"


def size(n: int | None) -> str:
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def percent(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def width_class(part: int, whole: int) -> str:
    """A bar segment's width as a class `w-0`..`w-100` (percent of `whole`): the stylesheet
    defines them, so bars need no inline style and the CSP can forbid inline styles."""
    if whole <= 0 or part <= 0:
        return "w-0"
    return f"w-{max(1, min(100, round(100 * part / whole)))}"


def query_string(base: dict[str, Any], **changes: Any) -> str:
    """`?a=1&b=2` from the current filters with some changed; empty values are dropped."""
    merged = {**base, **changes}
    pairs = [(k, str(v)) for k, v in merged.items()
             if v not in (None, "") and not (k == "page" and v == 1)]
    return "?" + urlencode(pairs) if pairs else "?"


def setup_templates(app: web.Application) -> jinja2.Environment:
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(label=lambda code, table: labels.label(table, code),
                       zh=lambda code, table: labels.zh(table, code), ts=china_time, iso=iso_time,
                       age=age, size=size, percent=percent, width=width_class)
    env.globals.update(qs=query_string, labels=labels)
    return env


def render(template: str, request: web.Request, context: dict[str, Any], *,
           status: int = 200) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers.update(SECURITY_HEADERS)
    return response
