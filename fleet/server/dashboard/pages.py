"""The dashboard's pages (GET): overview, kiosk list and detail, alerts, statistics, map.

Each page reads through fleet/server/queries.py (the API's own read layer, so a page and its
JSON twin agree) plus two grouped roll-ups (rollups.py), always with the viewer's region
scope. Filters are GET query parameters validated by the API's query models; a bad filter
shows the page with the message and status 400 instead of a stack trace. Lists are
paginated in SQL, 50 rows a page.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from fleet.server import api_models as m
from fleet.server import queries
from fleet.server.context import DB
from fleet.server.dashboard import labels, rollups
from fleet.server.dashboard.access import Viewer, error_page, page
from fleet.server.dashboard.render import render
from fleet.server.rules import RULES
from fleet.server.schema import RATING_LEVELS

PAGE_SIZE = 50
MAX_PAGE = 100_000
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _ctx(viewer: Viewer, page_name: str, request: web.Request, **values: Any) -> dict[str, Any]:
    notice = request.query.get("notice", "")
    return {"viewer": viewer, "page": page_name, "now": viewer.now,
            "notice": notice if notice in labels.NOTICES else "", **values}


def _filters(request: web.Request, names: tuple[str, ...]) -> dict[str, str]:
    return {k: request.query.get(k, "").strip() for k in names if request.query.get(k, "").strip()}


def _page_number(request: web.Request) -> int:
    raw = request.query.get("page", "1")
    return min(max(int(raw), 1), MAX_PAGE) if raw.isdigit() and len(raw) < 8 else 1


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', 'invalid')}"


def _pages(total: int, page_no: int) -> dict[str, int]:
    last = max(1, -(-total // PAGE_SIZE))
    return {"page": min(page_no, last), "last": last, "total": total,
            "first_row": (min(page_no, last) - 1) * PAGE_SIZE + 1 if total else 0,
            "last_row": min(min(page_no, last) * PAGE_SIZE, total)}


@page
async def overview(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    db = request.app[DB]
    summary = await queries.overview(db, viewer.user)
    by_rule = await rollups.open_alerts_by_rule(db, viewer.user)
    newest = await queries.list_alerts(db, viewer.user, m.AlertQuery(status="open", limit=10))
    worst = await queries.list_kiosks(db, viewer.user, m.KioskQuery(alert="any", limit=10))
    return render("overview.html", request, _ctx(
        viewer, "overview", request, summary=summary, by_rule=by_rule, newest=newest,
        worst=worst))


KIOSK_FILTERS = ("region", "site_type", "state", "health", "alert")


@page
async def kiosk_list(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    filters = _filters(request, KIOSK_FILTERS)
    page_no = _page_number(request)
    error = ""
    try:
        query = m.KioskQuery.model_validate(
            {**filters, "limit": PAGE_SIZE, "offset": (page_no - 1) * PAGE_SIZE})
    except ValidationError as exc:
        error = _validation_message(exc)
        query = m.KioskQuery(limit=PAGE_SIZE)
    result = await queries.list_kiosks(request.app[DB], viewer.user, query)
    return render("kiosks.html", request, _ctx(
        viewer, "kiosks", request, filters=filters, result=result, error=error,
        pages=_pages(result.total, page_no), rules=RULES), status=400 if error else 200)


@page
async def kiosk_detail(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    device_id = request.match_info["device_id"]
    detail = (await queries.kiosk_detail(request.app[DB], viewer.user, device_id)
              if _IDENT.match(device_id) else None)
    if detail is None:
        return error_page(request, 404, "没有这台终端，或不在您的管辖区域内",
                          "no such kiosk, or not in your regions", viewer)
    return render("kiosk.html", request, _ctx(
        viewer, "kiosks", request, d=detail, commands=labels.COMMANDS))


@page
async def screenshot(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """A screenshot command's PNG, for the <img> on the kiosk page (same scope checks)."""
    device_id, command_id = request.match_info["device_id"], request.match_info["command_id"]
    cmd = (await queries.command_detail(request.app[DB], viewer.user, command_id)
           if _IDENT.match(command_id) else None)
    if cmd is None or cmd.device_id != device_id or cmd.name != "screenshot" or not cmd.data:
        raise web.HTTPNotFound(text="no such screenshot")
    try:
        png = base64.b64decode(str(cmd.data.get("png_base64", "")), validate=True)
    except (binascii.Error, ValueError):
        png = b""
    if not png.startswith(_PNG_MAGIC):
        raise web.HTTPNotFound(text="the kiosk's result is not a PNG image")
    return web.Response(body=png, content_type="image/png", headers={
        "Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'"})


ALERT_STATUS = ("open", "acknowledged", "resolved", "all")


@page
async def alert_list(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    filters = _filters(request, ("status", "severity", "actor", "region", "rule"))
    status = filters.get("status", "open")
    page_no = _page_number(request)
    error = ""
    if status not in ALERT_STATUS:
        error, status = "status: open | acknowledged | resolved | all", "open"
    base: dict[str, Any] = {"status": "open" if status in ("open", "acknowledged") else status}
    if status in ("open", "acknowledged"):
        base["acked"] = status == "acknowledged"
    try:
        query = m.AlertQuery.model_validate(
            {**{k: v for k, v in filters.items() if k != "status"}, **base,
             "limit": PAGE_SIZE, "offset": (page_no - 1) * PAGE_SIZE})
    except ValidationError as exc:
        error = _validation_message(exc)
        query = m.AlertQuery.model_validate({**base, "limit": PAGE_SIZE})
    result = await queries.list_alerts(request.app[DB], viewer.user, query)
    filters["status"] = status
    return render("alerts.html", request, _ctx(
        viewer, "alerts", request, filters=filters, status=status, result=result, error=error,
        pages=_pages(result.total, page_no), statuses=ALERT_STATUS, rules=RULES),
        status=400 if error else 200)


@page
async def stats(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    filters = _filters(request, ("group_by", "from_day", "to_day", "region"))
    error = ""
    try:
        query = m.StatsQuery.model_validate(filters)
    except ValidationError as exc:
        error = _validation_message(exc)
        query = m.StatsQuery()
    result = await queries.stats(request.app[DB], viewer.user, query)
    most = max((r.completed + r.abandoned + r.failed for r in result.rows), default=0)
    return render("stats.html", request, _ctx(
        viewer, "stats", request, filters=filters, result=result, error=error,
        most=most, levels=RATING_LEVELS), status=400 if error else 200)


@page
async def fleet_map(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Kiosks by region: a region × state table, then the kiosks (of one region, when one is
    chosen) with their state and coordinates, 50 a page."""
    db = request.app[DB]
    regions = await rollups.kiosks_by_region(db, viewer.user)
    region = request.query.get("region", "").strip()
    page_no = _page_number(request)
    error = ""
    try:
        query = m.KioskQuery(region=region or None, limit=PAGE_SIZE,
                             offset=(page_no - 1) * PAGE_SIZE)
    except ValidationError as exc:
        error, region = _validation_message(exc), ""
        query = m.KioskQuery(limit=PAGE_SIZE)
    kiosks = await queries.list_kiosks(db, viewer.user, query)
    return render("map.html", request, _ctx(
        viewer, "map", request, regions=regions, region=region, kiosks=kiosks, error=error,
        pages=_pages(kiosks.total, page_no)), status=400 if error else 200)
