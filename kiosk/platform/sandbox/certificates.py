"""E-certificates (电子证照) of the sandbox: metadata per citizen and type, the A4 PDF, and
the verification page its QR code opens.

The PDF is one A4 page rendered with Pillow (Chinese text drawn into the image with the
WenQuanYi font, so no PDF font embedding is needed), saved as a PDF whose metadata title is
the certificate's title. Every page carries a red seal-like mark that says it is a sandbox
document, a diagonal "沙箱样本 SANDBOX" watermark, and a QR pointing at
`/verify/<licence_code>`. The sandbox signs the file with a detached Ed25519 signature (shown
on the verify page), not with an SM2 electronic seal (GB/T 38540) as a real issuer would.
Rendering is pure CPU work: the app runs it in an executor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import segno
from PIL import Image, ImageDraw, ImageFont, PdfParser

from kiosk.platform.api import CertificateType
from kiosk.privacy import mask_id_number, mask_name

DEFAULT_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
DPI = 150
PAGE = (1240, 1754)  # A4 at 150 dpi
MARGIN = 110
INK = (20, 20, 20)
SEAL_RED = (200, 20, 30)
RULE = (90, 90, 90)
SANDBOX_NOTICE = (
    "本文件由江苏政务服务沙箱平台生成，仅供开发测试，不具有法律效力。"
    "沙箱以 Ed25519 分离签名（见核验页），非 SM2 电子印章（GB/T 38540）。"
)
SANDBOX_NOTICE_EN = (
    "SANDBOX document for development and testing only; no legal effect. Signed with a "
    "detached Ed25519 signature (see the verify page), not an SM2 electronic seal."
)


@dataclass(frozen=True)
class CertificateSpec:
    type: CertificateType
    code: str  # short code inside licence codes
    title: str
    issuer: str  # with {city} / {district}
    issuer_suffix: str  # issuer code suffix
    item_code: str
    valid_days: int | None  # None: no end (or the ID card's own validity)
    needs: str | None  # the seed data a citizen must have for this type


SPECS: Mapping[CertificateType, CertificateSpec] = {
    spec.type: spec
    for spec in (
        CertificateSpec(CertificateType.SSC_PARTICIPATION, "RS01", "江苏省社会保险参保证明",
                        "{city}人力资源和社会保障局", "RS", "320000-SB-DY-0001", 90, "ssc"),
        CertificateSpec(CertificateType.SSC_RIGHTS_RECORD, "RS02", "社会保险个人权益记录",
                        "{city}人力资源和社会保障局", "RS", "320000-SB-DY-0002", None, "ssc"),
        CertificateSpec(CertificateType.HOUSING_FUND_DEPOSIT, "GJ01", "住房公积金缴存证明",
                        "{city}住房公积金管理中心", "GJJ", "320000-GJJ-DY-0001", 90,
                        "housing_fund"),
        CertificateSpec(CertificateType.REAL_ESTATE_INFO, "BD01", "不动产登记信息查询结果证明",
                        "{city}不动产登记中心", "BDC", "320000-BDC-CX-0001", 30, None),
        CertificateSpec(CertificateType.HOUSEHOLD_REGISTER, "HJ01", "户籍证明",
                        "{city}公安局{district}分局", "GA", "320000-GA-DY-0001", 90, None),
        CertificateSpec(CertificateType.ID_CARD_LICENCE, "SF01", "居民身份证电子证照",
                        "{city}公安局{district}分局", "GA", "320000-ZZ-DY-0001", None, None),
    )
}


def holds(data: Mapping[str, Any], type_: CertificateType) -> bool:
    """Whether a citizen has this certificate at all (no housing-fund account: no 缴存证明)."""
    needs = SPECS[type_].needs
    return needs is None or bool(data.get(needs))


def licence_code(
    citizen_id: str, type_: CertificateType, issued_on: dt.date, variant: str = ""
) -> str:
    """SBX-<type>-<YYYYMMDD>-<6 chars>: unique per citizen, type, day of issue and the
    parameters that shaped it (`variant`)."""
    key = f"{citizen_id}|{type_}|{issued_on}" + (f"|{variant}" if variant else "")
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"SBX-{SPECS[type_].code}-{issued_on:%Y%m%d}-{digest[:6].upper()}"


# -- parameters: the citizen's answers that shape a certificate ------------------------------

PURPOSES = {
    "school_enrolment": "子女入学",
    "home_purchase": "购房资格审核",
    "housing_fund_loan": "公积金贷款或提取",
    "housing_subsidy": "住房保障申请",
    "other": "其他个人事务",
}
PERIODS = (6, 12, 24, 36)


class ParameterError(ValueError):
    """A parameter the sandbox does not know, or a value it refuses (names the key only)."""


def _month_back(day: dt.date, months: int) -> str:
    index = day.year * 12 + day.month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def parameter_rows(params: Mapping[str, Any], issued_on: dt.date) -> Rows:
    """How the parameters read on the certificate's face; ParameterError if one is wrong."""
    rows: Rows = []
    for key, value in params.items():
        if key == "period":
            if str(value) not in {str(p) for p in PERIODS}:
                raise ParameterError("period: one of " + ", ".join(map(str, PERIODS)))
            months = int(value)
            rows.append(("证明期间", f"最近{months}个月（{_month_back(issued_on, months)}至"
                                     f"{_month_back(issued_on, 1)}）"))
        elif key == "year":
            if isinstance(value, bool) or not str(value).isdigit() or not (
                1980 <= int(value) < issued_on.year
            ):
                raise ParameterError("year: a past year from 1980")
            rows.append(("记录年度", f"{int(value)}年"))
        elif key == "purpose":
            if value not in PURPOSES:
                raise ParameterError("purpose: one of " + ", ".join(PURPOSES))
            rows.append(("用途", PURPOSES[value]))
        else:
            raise ParameterError(f"unknown parameter {key}")
    return rows


def variant_of(params: Mapping[str, Any]) -> str:
    """A short stable name for a set of parameters ('' for none)."""
    if not params:
        return ""
    canonical = "&".join(f"{k}={params[k]}" for k in sorted(params))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def metadata(
    *,
    citizen_id: str,
    id_number: str,
    data: Mapping[str, Any],
    type_: CertificateType,
    issued_on: dt.date,
    verify_base_url: str,
    variant: str = "",
) -> dict[str, Any]:
    """GB/T 36903-style metadata (simplified) for a certificate issued today."""
    spec = SPECS[type_]
    code = licence_code(citizen_id, type_, issued_on, variant)
    if spec.type is CertificateType.ID_CARD_LICENCE:
        valid_to = data["id_card"]["valid_to"]
        valid_until = None if valid_to == "长期" else valid_to
    elif spec.valid_days is None:
        valid_until = None
    else:
        valid_until = (issued_on + dt.timedelta(days=spec.valid_days)).isoformat()
    title = spec.title
    if type_ is CertificateType.REAL_ESTATE_INFO and not data.get("properties"):
        title = "不动产登记信息查询结果证明（无房证明）"
    return {
        "licence_code": code,
        "type": str(type_),
        "title": title,
        "holder_id_number": id_number,
        "issuer_name": spec.issuer.format(city=data["city"], district=data["district"]),
        "issuer_code": f"SBX{data['region_code']}{spec.issuer_suffix}",
        "item_code": spec.item_code,
        "region_code": data["region_code"],
        "status": "issued",
        "issued_on": issued_on.isoformat(),
        "valid_until": valid_until,
        "verify_url": f"{verify_base_url.rstrip('/')}/verify/{code}",
    }


# -- face content per type ---------------------------------------------------------------------

Rows = list[tuple[str, str]]


def _date_cn(text: str) -> str:
    day = dt.date.fromisoformat(text)
    return f"{day.year}年{day.month}月{day.day}日"


def _sex_cn(id_number: str) -> str:
    return "男" if int(id_number[16]) % 2 else "女"


def _birth_cn(id_number: str) -> str:
    return f"{id_number[6:10]}年{int(id_number[10:12])}月{int(id_number[12:14])}日"


def _ssc_participation(name: str, idn: str, data: Mapping[str, Any]) -> tuple[Rows, list[str]]:
    ssc = data["ssc"]
    kinds = "养老、医疗" if ssc.get("flexible") else "养老、医疗、失业、工伤、生育"
    status = ssc["status"] + ("（领取养老金）" if ssc.get("retired_on") else "")
    rows = [("姓名", name), ("公民身份号码", idn), ("社会保障号码", idn),
            ("参保地", f"{data['city']}{data['district']}"), ("参保单位", ssc["employer"]),
            ("参保险种", kinds), ("首次参保年月", ssc["start"]), ("参保状态", status)]
    body = [f"兹证明{name}（公民身份号码 {idn}）自{ssc['start']}起在{data['city']}参加社会保险，"
            f"当前参保状态为“{status}”。", "特此证明。"]
    return rows, body


def _ssc_rights(name: str, idn: str, data: Mapping[str, Any]) -> tuple[Rows, list[str]]:
    ssc = data["ssc"]
    rows = [("姓名", name), ("社会保障号码", idn), ("参保单位", ssc["employer"]),
            ("经办机构", ssc["agency"]), ("首次参保年月", ssc["start"]),
            ("当前缴费基数（元）", f"{ssc.get('base', 0):.2f}"),
            ("人员类别", "灵活就业人员" if ssc.get("flexible") else
             ("退休人员" if ssc.get("retired_on") else "在职职工"))]
    if ssc.get("pension_monthly"):
        rows.append(("月养老金（元）", f"{ssc['pension_monthly']:.2f}"))
    body = ["本记录反映截至打印之日参保人的社会保险缴费及权益情况，"
            "如有疑问请向经办机构咨询。"]
    return rows, body


def _housing_fund(name: str, idn: str, data: Mapping[str, Any]) -> tuple[Rows, list[str]]:
    fund = data["housing_fund"]
    share = fund["base"] * fund["rate"]
    rows = [("姓名", name), ("证件号码", idn), ("缴存单位", fund["employer"]),
            ("个人账号", fund["account"]), ("开户年月", fund["opened"]),
            ("缴存基数（元）", f"{fund['base']:.2f}"),
            ("缴存比例", f"单位 {fund['rate']:.0%} / 个人 {fund['rate']:.0%}"),
            ("月缴存额（元）", f"{share * 2:.2f}"), ("账户状态", fund["status"])]
    body = [f"兹证明{name}在{fund['centre']}缴存住房公积金，缴存情况如上。", "特此证明。"]
    return rows, body


def _real_estate(name: str, idn: str, data: Mapping[str, Any]) -> tuple[Rows, list[str]]:
    properties = data.get("properties") or []
    rows = [("权利人", name), ("证件号码", idn), ("查询范围", f"{data['city']}行政区域"),
            ("登记记录数", str(len(properties)))]
    for i, p in enumerate(properties, 1):
        rows += [(f"不动产权证号 {i}", p["cert_no"]), ("坐落", p["location"]),
                 ("建筑面积", f"{p['area_m2']:.2f} 平方米"),
                 ("用途 / 共有情况", f"{p['use']} / {p['share']}"),
                 ("登记日期", _date_cn(p["registered_on"]))]
    if properties:
        body = [f"经查询{data['city']}不动产登记信息系统，权利人名下有上列不动产登记记录。"]
    else:
        body = [f"经查询{data['city']}不动产登记信息系统，截至出具之日，"
                f"未发现{name}名下有住房等不动产登记记录（无房证明）。"]
    return rows, body


def _household(name: str, idn: str, data: Mapping[str, Any]) -> tuple[Rows, list[str]]:
    hh = data["household"]
    rows = [("姓名", name), ("性别", _sex_cn(idn)), ("民族", data["nation"]),
            ("出生日期", _birth_cn(idn)), ("公民身份号码", idn), ("与户主关系", hh["relation"]),
            ("籍贯", hh["native_place"]), ("住址", data["address"]),
            ("户籍登记机关", hh["police_station"])]
    body = [f"兹证明{name}的户籍登记在{hh['police_station']}辖区，登记信息如上。",
            "本证明仅证明户籍登记事实。"]
    return rows, body


def _id_card(name: str, idn: str, data: Mapping[str, Any]) -> tuple[Rows, list[str]]:
    card = data["id_card"]
    valid_to = card["valid_to"] if card["valid_to"] == "长期" else _date_cn(card["valid_to"])
    rows = [("姓名", name), ("性别", _sex_cn(idn)), ("民族", data["nation"]),
            ("出生", _birth_cn(idn)), ("住址", data["address"]), ("公民身份号码", idn),
            ("签发机关", card["issuer"]),
            ("有效期限", f"{_date_cn(card['valid_from'])} — {valid_to}")]
    body = ["本电子证照为沙箱演示数据，不含照片。"]
    return rows, body


FACES: Mapping[CertificateType, Callable[[str, str, Mapping[str, Any]], tuple[Rows, list[str]]]] = {
    CertificateType.SSC_PARTICIPATION: _ssc_participation,
    CertificateType.SSC_RIGHTS_RECORD: _ssc_rights,
    CertificateType.HOUSING_FUND_DEPOSIT: _housing_fund,
    CertificateType.REAL_ESTATE_INFO: _real_estate,
    CertificateType.HOUSEHOLD_REGISTER: _household,
    CertificateType.ID_CARD_LICENCE: _id_card,
}


# -- rendering -------------------------------------------------------------------------------


class _Fonts:
    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self._cache: dict[int, ImageFont.FreeTypeFont] = {}

    def __call__(self, size: int) -> ImageFont.FreeTypeFont:
        if size not in self._cache:
            self._cache[size] = ImageFont.truetype(self.path, size)
        return self._cache[size]


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Break Chinese (and mixed) text by width, character by character."""
    lines, line = [], ""
    for char in text:
        if font.getlength(line + char) > width and line:
            lines.append(line)
            line = char
        else:
            line += char
    if line:
        lines.append(line)
    return lines


def _watermark(page: Image.Image, fonts: _Fonts) -> None:
    layer = Image.new("RGBA", page.size, (0, 0, 0, 0))
    text = "沙箱样本 SANDBOX"
    font = fonts(96)
    tile = Image.new("RGBA", (int(font.getlength(text)) + 40, 140), (0, 0, 0, 0))
    ImageDraw.Draw(tile).text((20, 10), text, font=font, fill=(150, 150, 150, 40))
    tile = tile.rotate(35, expand=True)
    for x, y in ((80, 300), (160, 1000)):
        layer.alpha_composite(tile, (x, y))
    page.alpha_composite(layer)


def _seal(fonts: _Fonts, radius: int = 125) -> Image.Image:
    """A round red mark in the style of an official seal, saying it is a sandbox one."""
    size = radius * 2 + 20
    seal = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(seal)
    c = size // 2
    red = SEAL_RED + (215,)
    draw.ellipse((c - radius, c - radius, c + radius, c + radius), outline=red, width=7)
    star_r = radius * 0.28
    points = []
    for i in range(10):
        r = star_r if i % 2 == 0 else star_r * 0.4
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((c + r * math.cos(angle), c + r * math.sin(angle)))
    draw.polygon(points, fill=red)
    arc_text = "江苏政务服务沙箱平台测试专用章"
    font = fonts(int(radius * 0.2))
    span = math.radians(250)
    start = -math.pi / 2 - span / 2
    for i, char in enumerate(arc_text):
        angle = start + span * (i + 0.5) / len(arc_text)
        glyph = Image.new("RGBA", (font.size * 2, font.size * 2), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((font.size // 2, font.size // 2), char, font=font, fill=red)
        glyph = glyph.rotate(-math.degrees(angle) - 90, expand=False,
                             resample=Image.Resampling.BICUBIC)
        r = radius * 0.76
        x = c + r * math.cos(angle) - glyph.width / 2
        y = c + r * math.sin(angle) - glyph.height / 2
        seal.alpha_composite(glyph, (int(x), int(y)))
    small = fonts(int(radius * 0.16))
    for text, dy in (("非正式文件", 0.42), ("SANDBOX", 0.62)):
        w = small.getlength(text)
        draw.text((c - w / 2, c + radius * dy - small.size / 2), text, font=small, fill=red)
    return seal


def _qr(url: str, box: int) -> Image.Image:
    buffer = io.BytesIO()
    segno.make(url, micro=False, error="m").save(buffer, kind="png", scale=8, border=2)
    buffer.seek(0)
    return Image.open(buffer).convert("RGBA").resize((box, box), Image.Resampling.NEAREST)


def _pdf_text(text: str) -> PdfParser.PdfBinary:
    """A PDF text string as hex UTF-16BE. Pillow writes plain strings as literals without
    escaping CR, so 不 (U+4E0D) would read back as 上 (U+4E0A); hex strings are safe."""
    return PdfParser.PdfBinary(PdfParser.encode_text(text))


def render_pdf(
    *,
    name: str,
    id_number: str,
    data: Mapping[str, Any],
    meta: Mapping[str, Any],
    font_path: Path = DEFAULT_FONT,
    params: Mapping[str, Any] | None = None,
) -> bytes:
    """The certificate as a one-page A4 PDF (title in the PDF metadata too); the rows say
    the parameters it was issued for (period, year, purpose)."""
    type_ = CertificateType(meta["type"])
    rows, body = FACES[type_](name, id_number, data)
    rows = rows + parameter_rows(params or {}, dt.date.fromisoformat(meta["issued_on"]))
    fonts = _Fonts(font_path)
    page = Image.new("RGBA", PAGE, (255, 255, 255, 255))
    draw = ImageDraw.Draw(page)
    width = PAGE[0] - 2 * MARGIN
    y = MARGIN

    title_font = fonts(52)
    title = meta["title"]
    tw = title_font.getlength(title)
    draw.text(((PAGE[0] - tw) / 2, y), title, font=title_font, fill=INK)
    y += 80
    sub = fonts(22)
    draw.text((MARGIN, y), f"证照编号 Licence code: {meta['licence_code']}", font=sub, fill=RULE)
    y += 34
    draw.line((MARGIN, y, PAGE[0] - MARGIN, y), fill=INK, width=3)
    y += 30

    label_font, value_font = fonts(28), fonts(28)
    label_w = 300
    for label, value in rows:
        lines = _wrap(value, value_font, width - label_w - 30)
        h = max(len(lines), 1) * 40 + 20
        draw.rectangle((MARGIN, y, PAGE[0] - MARGIN, y + h), outline=RULE, width=2)
        draw.line((MARGIN + label_w, y, MARGIN + label_w, y + h), fill=RULE, width=2)
        draw.text((MARGIN + 16, y + 14), label, font=label_font, fill=INK)
        for i, line in enumerate(lines):
            draw.text((MARGIN + label_w + 16, y + 14 + i * 40), line, font=value_font, fill=INK)
        y += h
    y += 40
    text_font = fonts(30)
    for paragraph in body:
        for line in _wrap("　　" + paragraph, text_font, width):
            draw.text((MARGIN, y), line, font=text_font, fill=INK)
            y += 46
        y += 8

    # issuer, date and seal at the lower right
    issued = _date_cn(meta["issued_on"])
    sign_y = max(y + 60, 1080)
    issuer_font = fonts(30)
    for i, text in enumerate((meta["issuer_name"] + "（沙箱）", issued)):
        w = issuer_font.getlength(text)
        draw.text((PAGE[0] - MARGIN - w, sign_y + i * 50), text, font=issuer_font, fill=INK)
    if meta.get("valid_until"):
        text = f"有效期至 Valid until: {meta['valid_until']}"
        draw.text((MARGIN, sign_y + 10), text, font=sub, fill=RULE)
    seal = _seal(fonts)  # over the issuer's name, as a seal is stamped
    centre_x = PAGE[0] - MARGIN - issuer_font.getlength(meta["issuer_name"] + "（沙箱）") / 2
    page.alpha_composite(seal, (int(centre_x - seal.width / 2), sign_y + 40 - seal.height // 2))

    # verification QR and the sandbox notice at the bottom
    qr_box = 210
    qr_y = PAGE[1] - MARGIN - qr_box - 40
    page.alpha_composite(_qr(meta["verify_url"], qr_box), (MARGIN, qr_y))
    note_x = MARGIN + qr_box + 30
    note_w = PAGE[0] - MARGIN - note_x
    ny = qr_y + 6
    draw.text((note_x, ny), "扫码核验 Scan to verify", font=fonts(26), fill=INK)
    ny += 42
    for notice, font in ((SANDBOX_NOTICE, fonts(21)), (SANDBOX_NOTICE_EN, fonts(19))):
        for line in _wrap(notice, font, note_w):
            draw.text((note_x, ny), line, font=font, fill=SEAL_RED)
            ny += 30
    _watermark(page, fonts)

    buffer = io.BytesIO()
    page.convert("RGB").save(
        buffer,
        "PDF",
        resolution=DPI,
        title=_pdf_text(meta["title"]),
        author=_pdf_text(meta["issuer_name"]),
        subject=_pdf_text(f"{meta['title']} {meta['licence_code']} (sandbox)"),
        keywords=_pdf_text("sandbox; 沙箱; Ed25519 detached signature; not SM2"),
        creator="kiosk sandbox platform",
        producer="Pillow",
        quality=85,
    )
    return buffer.getvalue()


def render_verify_page(
    meta: Mapping[str, Any] | None,
    *,
    holder_name: str = "",
    sha256: str = "",
    key_id: str = "",
    signature_valid: bool = False,
) -> str:
    """`/verify/<licence_code>`: what the QR on the paper opens (masked holder data)."""
    if meta is None:
        body = ("<h1>未找到该证照 Certificate not found</h1>"
                "<p>请核对证照编号。Check the licence code.</p>")
    else:
        status = ("有效 Valid" if meta["status"] == "issued" else meta["status"])
        signature = ("签名有效 Signature valid" if signature_valid
                     else "签名无效 Signature INVALID")
        rows: Sequence[tuple[str, str]] = (
            ("证照名称 Title", meta["title"]),
            ("证照编号 Licence code", meta["licence_code"]),
            ("持证人 Holder", f"{mask_name(holder_name)}　{mask_id_number(meta['holder_id_number'])}"),
            ("发证机关 Issuer", meta["issuer_name"]),
            ("颁发日期 Issued on", meta["issued_on"]),
            ("有效期至 Valid until", meta["valid_until"] or "长期 No end"),
            ("状态 Status", status),
            ("文件 SHA-256", sha256),
            ("Ed25519 签名 Signature", f"{signature}（key {key_id}）"),
        )
        cells = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
        )
        body = f"<h1>电子证照核验 Certificate verification</h1><table>{cells}</table>"
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>电子证照核验（沙箱） Certificate verification (sandbox)</title>
<style>body{{font-family:sans-serif;margin:1.5em;line-height:1.5}}
th{{text-align:left;padding-right:1em;vertical-align:top}}
.sandbox{{color:#b00;border:2px solid #b00;padding:.5em}}</style></head>
<body>{body}
<p class="sandbox">沙箱平台：仅供开发测试，不具有法律效力；签名算法为 Ed25519，非 SM2。<br>
Sandbox platform: for development and testing only; signatures are Ed25519, not SM2.</p>
</body></html>"""
