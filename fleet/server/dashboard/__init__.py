"""The ops dashboard: server-rendered pages on the fleet server (no JavaScript build step).

`setup(app)` is called by `fleet.server.app.create_app` (through `_default_extensions`)
after the API routes are added. It adds the Jinja2 environment (fleet/server/templates), the
stylesheet as a static route, and the pages:

    /login, /logout          cookie session (HttpOnly, SameSite=Strict, Secure over https)
    /                        overview: states, degraded kiosks, open alerts, who must act
    /kiosks, /kiosks/<id>    list with filters (50 a page), detail with commands and revoke
    /alerts                  open / acknowledged / resolved, acknowledge
    /stats                   usage and ratings (好差评) per item, site or region
    /map                     kiosks by region and state; links the GeoJSON

Handlers read the same app keys as the API (fleet/server/context.py) and call its read and
action layers (queries.py, ops.py), so roles and region scopes are enforced identically.
See docs/dashboard.md.
"""

from __future__ import annotations

from aiohttp import web

from fleet.server.dashboard import actions, pages
from fleet.server.dashboard.render import STATIC, setup_templates

STATIC_PREFIX = "/static/dashboard"


def setup(app: web.Application) -> None:
    env = setup_templates(app)
    r = app.router
    r.add_get("/login", actions.login_page, name="dashboard_login")
    r.add_post("/login", actions.login)
    r.add_post("/logout", actions.logout, name="dashboard_logout")
    r.add_get("/", pages.overview, name="dashboard_overview")
    r.add_get("/kiosks", pages.kiosk_list, name="dashboard_kiosks")
    r.add_get("/kiosks/{device_id}", pages.kiosk_detail, name="dashboard_kiosk")
    r.add_get("/kiosks/{device_id}/commands/{command_id}/screenshot.png", pages.screenshot,
              name="dashboard_screenshot")
    r.add_post("/kiosks/{device_id}/commands", actions.send_command)
    r.add_post("/kiosks/{device_id}/revoke", actions.revoke)
    r.add_get("/alerts", pages.alert_list, name="dashboard_alerts")
    r.add_post("/alerts/{alert_id}/ack", actions.acknowledge)
    r.add_get("/stats", pages.stats, name="dashboard_stats")
    r.add_get("/map", pages.fleet_map, name="dashboard_map")
    static = r.add_static(STATIC_PREFIX, STATIC, name="dashboard_static", append_version=True)
    env.globals["css_url"] = str(static.url_for(filename="dashboard.css"))
