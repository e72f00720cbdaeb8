"""The sandbox's stand-in for the 苏服办 app: HTML pages a tester opens on a phone or laptop.

`/sandbox/` lists the test citizens; `/sandbox/phone/<citizen_id>` shows that citizen's live
苏服码 as a QR code (inline SVG from segno) and renews it before it expires: a meta refresh
as the floor, a few lines of inline JS for the countdown. No build step, no external assets.
The code text is printed under the QR too, so it can be pasted into the scanner simulator.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import segno

from kiosk.platform.sandbox.store import Citizen
from kiosk.privacy import mask_name

REFRESH_MARGIN_S = 10  # renew this long before the code expires

_STYLE = """body{font-family:"WenQuanYi Micro Hei","Noto Sans CJK SC",sans-serif;margin:1em;
text-align:center;background:#f4f7fb;color:#111}
.card{background:#fff;border-radius:12px;padding:1em;max-width:420px;margin:auto;
box-shadow:0 2px 8px rgba(0,0,0,.15)}
h1{font-size:1.4em;margin:.2em 0;color:#0b5cab}.qr svg{width:80%;height:auto}
.code{font-family:monospace;font-size:.8em;word-break:break-all;color:#555}
.sandbox{color:#b00;font-size:.85em}table{margin:auto;text-align:left}
td,th{padding:.2em .6em}"""


def render_phone_page(citizen: Citizen, code: str, expires_in: float) -> str:
    refresh = max(int(expires_in - REFRESH_MARGIN_S), 1)
    svg = segno.make(code, micro=False, error="m").svg_inline(scale=6, border=2)
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{refresh}">
<title>苏服码（沙箱） Sandbox 苏服码</title><style>{_STYLE}</style></head>
<body><div class="card">
<h1>苏服码 · 沙箱</h1>
<p>{html.escape(mask_name(citizen.name))}（测试用户 {html.escape(citizen.citizen_id)}）</p>
<div class="qr">{svg}</div>
<p>请将二维码对准自助终端的扫码口。Show this code to the kiosk's scanner.</p>
<p><span id="left">{int(expires_in)}</span> 秒后失效，自动刷新。
Expires in <span id="left-en">{int(expires_in)}</span> s; renews itself.</p>
<p class="code">{html.escape(code)}</p>
<p class="sandbox">沙箱平台，仅供测试。每个码 {int(expires_in)} 秒内有效，只能使用一次。<br>
Sandbox platform, testing only. Each code is valid for {int(expires_in)} s and works once.</p>
</div>
<script>
var left = {int(expires_in)};
setInterval(function () {{
  left = Math.max(left - 1, 0);
  document.getElementById("left").textContent = left;
  document.getElementById("left-en").textContent = left;
  if (left <= {REFRESH_MARGIN_S}) {{ location.reload(); }}
}}, 1000);
</script>
</body></html>"""


def render_index(citizens: Sequence[Citizen]) -> str:
    rows = "".join(
        "<tr><td><a href=\"/sandbox/phone/{cid}\">{cid}</a></td><td>{name}</td>"
        "<td>{idn}</td><td>{city}</td></tr>".format(
            cid=html.escape(c.citizen_id),
            name=html.escape(c.name),
            idn=html.escape(c.id_number),
            city=html.escape(c.data.get("city", "")),
        )
        for c in citizens
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>沙箱平台测试用户 Sandbox test citizens</title><style>{_STYLE}</style></head>
<body><div class="card" style="max-width:760px">
<h1>沙箱平台测试用户 Sandbox test citizens</h1>
<p>点击编号打开该用户的苏服码。Open a citizen's 苏服码 by its id.</p>
<table><tr><th>编号 Id</th><th>姓名 Name</th><th>身份证号 ID number</th><th>城市 City</th></tr>
{rows}</table>
<p class="sandbox">全部为虚构的测试数据。All data here is fictional test data.</p>
</div></body></html>"""
