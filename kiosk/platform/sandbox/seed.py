"""The sandbox's test citizens: fictional people in Jiangsu cities with valid ID numbers
(check character computed, GB 11643), phones, addresses, social-security, housing-fund,
property and household data. Deterministic: the same list on every machine and every start.

Everything here is invented. The numbers are valid in shape only; docs/platform.md lists
the citizens so testers can pick one (and the ID-card simulator can carry the same data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiosk.identity.id_number import check_char


def make_id_number(region: str, birth: str, sequence: int) -> str:
    """Region code (6 digits) + birth date YYYYMMDD + 3-digit sequence + check character.
    The sequence's parity carries the sex (odd = male)."""
    first17 = f"{region}{birth}{sequence:03d}"
    return first17 + check_char(first17)


@dataclass(frozen=True)
class SeedCitizen:
    citizen_id: str  # the sandbox's handle, used in /sandbox/phone/<citizen_id>
    name: str
    id_number: str
    phone: str
    data: dict[str, Any] = field(default_factory=dict)  # everything else, stored as JSON


def _citizen(
    citizen_id: str,
    name: str,
    region: str,
    birth: str,
    sequence: int,
    phone: str,
    **data: Any,
) -> SeedCitizen:
    return SeedCitizen(citizen_id, name, make_id_number(region, birth, sequence), phone, data)


CITIZENS: tuple[SeedCitizen, ...] = (
    _citizen(
        "c01", "张伟", "320102", "19850312", 31, "13951021385",
        city="南京市", district="玄武区", region_code="320102", nation="汉",
        address="江苏省南京市玄武区北京东路71号3幢1202室",
        household={
            "police_station": "南京市公安局玄武分局北京东路派出所",
            "relation": "户主", "household_no": "320102012345", "native_place": "江苏南京",
        },
        id_card={"issuer": "南京市公安局玄武分局", "valid_from": "2015-04-20",
                 "valid_to": "2035-04-20"},
        ssc={
            "agency": "南京市社会保险管理中心", "employer": "南京紫金山软件有限公司",
            "start": "2008-07", "status": "参保缴费", "base": 12800.0, "flexible": False,
        },
        housing_fund={
            "centre": "南京住房公积金管理中心", "account": "320100208765431",
            "employer": "南京紫金山软件有限公司", "opened": "2008-08", "base": 12800.0,
            "rate": 0.12, "balance": 186420.55, "balance_month": "2025-12", "status": "正常缴存",
        },
        properties=[{
            "cert_no": "苏(2016)南京市不动产权第0087213号",
            "location": "南京市玄武区北京东路71号3幢1202室", "area_m2": 89.62,
            "use": "住宅", "registered_on": "2016-05-17", "share": "单独所有",
        }],
    ),
    _citizen(
        "c02", "王秀英", "320213", "19521105", 42, "13861578802",
        city="无锡市", district="梁溪区", region_code="320213", nation="汉",
        address="江苏省无锡市梁溪区中山路218号2单元502室",
        household={
            "police_station": "无锡市公安局梁溪分局崇安寺派出所",
            "relation": "户主", "household_no": "320213004521", "native_place": "江苏无锡",
        },
        id_card={"issuer": "无锡市公安局梁溪分局", "valid_from": "2012-09-03",
                 "valid_to": "长期"},
        ssc={
            "agency": "无锡市社会保险基金管理中心", "employer": "无锡第二棉纺织厂",
            "start": "1992-01", "status": "退休", "retired_on": "2007-11",
            "pension_monthly": 3862.40, "base": 0.0, "flexible": False,
        },
        housing_fund=None,
        properties=[{
            "cert_no": "苏(2018)无锡市不动产权第0150932号",
            "location": "无锡市梁溪区中山路218号2单元502室", "area_m2": 64.35,
            "use": "住宅", "registered_on": "2018-03-09", "share": "共同共有",
        }],
    ),
    _citizen(
        "c03", "李娜", "320508", "19910823", 26, "15062237716",
        city="苏州市", district="姑苏区", region_code="320508", nation="汉",
        address="江苏省苏州市姑苏区人民路1580号7幢301室",
        household={
            "police_station": "苏州市公安局姑苏分局察院场派出所",
            "relation": "户主", "household_no": "320508107733", "native_place": "江苏苏州",
        },
        id_card={"issuer": "苏州市公安局姑苏分局", "valid_from": "2019-10-11",
                 "valid_to": "2039-10-11"},
        ssc={
            "agency": "苏州市社会保险基金管理中心", "employer": "苏州姑苏医疗器械有限公司",
            "start": "2013-07", "status": "参保缴费", "base": 9350.0, "flexible": False,
        },
        housing_fund={
            "centre": "苏州市住房公积金管理中心", "account": "320500113390267",
            "employer": "苏州姑苏医疗器械有限公司", "opened": "2013-08", "base": 9350.0,
            "rate": 0.10, "balance": 72318.20, "balance_month": "2025-12", "status": "正常缴存",
        },
        properties=[],
    ),
    _citizen(
        "c04", "陈建国", "320402", "19680130", 49, "13775106624",
        city="常州市", district="天宁区", region_code="320402", nation="汉",
        address="江苏省常州市天宁区延陵中路99号4幢602室",
        household={
            "police_station": "常州市公安局天宁分局天宁寺派出所",
            "relation": "户主", "household_no": "320402009817", "native_place": "江苏常州",
        },
        id_card={"issuer": "常州市公安局天宁分局", "valid_from": "2010-06-08",
                 "valid_to": "长期"},
        ssc={
            "agency": "常州市社会保险管理中心", "employer": "灵活就业人员",
            "start": "1988-09", "status": "参保缴费", "base": 4494.0, "flexible": True,
        },
        housing_fund=None,
        properties=[{
            "cert_no": "苏(2019)常州市不动产权第0034521号",
            "location": "常州市天宁区延陵中路99号4幢602室", "area_m2": 102.48,
            "use": "住宅", "registered_on": "2019-08-26", "share": "共同共有",
        }],
    ),
    _citizen(
        "c05", "欧阳明轩", "320303", "20010618", 53, "18851973340",
        city="徐州市", district="云龙区", region_code="320303", nation="汉",
        address="江苏省徐州市云龙区和平路56号12幢1单元801室",
        household={
            "police_station": "徐州市公安局云龙分局彭城派出所",
            "relation": "子", "household_no": "320303021184", "native_place": "江苏徐州",
        },
        id_card={"issuer": "徐州市公安局云龙分局", "valid_from": "2018-07-02",
                 "valid_to": "2028-07-02"},
        ssc={
            "agency": "徐州市社会保险基金管理中心", "employer": "徐州云龙数字科技有限公司",
            "start": "2023-09", "status": "参保缴费", "base": 6200.0, "flexible": False,
        },
        housing_fund={
            "centre": "徐州市住房公积金管理中心", "account": "320300301258846",
            "employer": "徐州云龙数字科技有限公司", "opened": "2023-10", "base": 6200.0,
            "rate": 0.08, "balance": 23113.60, "balance_month": "2025-12", "status": "正常缴存",
        },
        properties=[],
    ),
    _citizen(
        "c06", "刘静", "321002", "19791202", 68, "13952719035",
        city="扬州市", district="广陵区", region_code="321002", nation="回",
        address="江苏省扬州市广陵区文昌中路256号2幢703室",
        household={
            "police_station": "扬州市公安局广陵分局汶河派出所",
            "relation": "配偶", "household_no": "321002055602", "native_place": "江苏扬州",
        },
        id_card={"issuer": "扬州市公安局广陵分局", "valid_from": "2021-01-15",
                 "valid_to": "2041-01-15"},
        ssc={
            "agency": "扬州市社会保险基金管理中心", "employer": "扬州市广陵区文昌实验小学",
            "start": "2001-09", "status": "参保缴费", "base": 10450.0, "flexible": False,
        },
        housing_fund={
            "centre": "扬州市住房公积金管理中心", "account": "321000118842093",
            "employer": "扬州市广陵区文昌实验小学", "opened": "2001-10", "base": 10450.0,
            "rate": 0.12, "balance": 154207.81, "balance_month": "2025-12", "status": "正常缴存",
        },
        properties=[{
            "cert_no": "苏(2017)扬州市不动产权第0062719号",
            "location": "扬州市广陵区文昌中路256号2幢703室", "area_m2": 118.20,
            "use": "住宅", "registered_on": "2017-11-02", "share": "共同共有",
        }],
    ),
    _citizen(
        "c07", "周子涵", "320106", "19960409", 84, "15895820417",
        city="南京市", district="鼓楼区", region_code="320106", nation="汉",
        address="江苏省南京市鼓楼区中山北路105号6幢402室",
        household={
            "police_station": "南京市公安局鼓楼分局湖南路派出所",
            "relation": "户主", "household_no": "320106066391", "native_place": "江苏南京",
        },
        id_card={"issuer": "南京市公安局鼓楼分局", "valid_from": "2020-05-06",
                 "valid_to": "2030-05-06"},
        ssc={
            "agency": "南京市社会保险管理中心", "employer": "南京鼓楼文化传媒有限公司",
            "start": "2019-07", "status": "参保缴费", "base": 8600.0, "flexible": False,
        },
        housing_fund={
            "centre": "南京住房公积金管理中心", "account": "320100306642175",
            "employer": "南京鼓楼文化传媒有限公司", "opened": "2019-08", "base": 8600.0,
            "rate": 0.08, "balance": 61544.08, "balance_month": "2025-12", "status": "正常缴存",
        },
        properties=[],
    ),
)
