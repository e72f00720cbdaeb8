"""The simulated world around a kiosk: the sandbox platform's test citizens, carrying the
same data on a simulated ID card and 社保卡, and showing a live 苏服码 to the simulated
scanner. Used by `kiosk journey`, the demo, the end-to-end tests and the benchmarks.

Every identification goes through the real driver path (pty + pyserial for the SAM,
pyscard + pcscd + vpcd for the 社保卡, the serial scanner for the code) and, for a code, the
platform's real verification.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import aiohttp

from drivers.idcard.card import NATIONS
from drivers.sim.sam import SimCard, resident_card
from drivers.sim.ssc_card import TestCitizen
from kiosk import identify
from kiosk.identity.model import Identity, IdentitySource
from kiosk.platform.sandbox.seed import CITIZENS, SeedCitizen
from kiosk.services import Services

VIAS = tuple(source.value for source in IdentitySource)  # code, idcard, ssc
_NATION_CODES = {name.removesuffix("族"): code for code, name in NATIONS.items()}


class SimulationError(RuntimeError):
    pass


def citizen(citizen_id: str) -> SeedCitizen:
    for c in CITIZENS:
        if c.citizen_id == citizen_id:
            return c
    known = ", ".join(c.citizen_id for c in CITIZENS)
    raise SimulationError(f"no sandbox citizen {citizen_id!r} (known: {known})")


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def id_card_of(c: SeedCitizen) -> SimCard:
    card = c.data.get("id_card") or {}
    number = c.id_number
    return resident_card(
        label=c.citizen_id,
        name=c.name,
        sex_code="1" if int(number[16]) % 2 else "2",
        nation_code=_NATION_CODES.get(c.data.get("nation", "汉"), "01"),
        birth=dt.datetime.strptime(number[6:14], "%Y%m%d").date(),
        address=c.data.get("address", ""),
        number=number,
        authority=card.get("issuer", "公安局"),
        valid_from=_date(card.get("valid_from", "2020-01-01")),
        valid_to=None if card.get("valid_to") == "长期" else _date(card.get("valid_to", "2040-01-01")),
    )


def ssc_card_of(c: SeedCitizen) -> TestCitizen:
    number = c.id_number
    return TestCitizen(
        key=c.citizen_id,
        name=c.name,
        sex="1" if int(number[16]) % 2 else "2",
        nation=_NATION_CODES.get(c.data.get("nation", "汉"), "01"),
        birth_place=number[:6],
        birth_date=dt.datetime.strptime(number[6:14], "%Y%m%d").date(),
        sequence=number[14:17],
        card_number=f"A{number[:6]}{number[14:17]}"[:9],
        card_region=number[:4] + "00",
    )


async def fresh_code(services: Services, citizen_id: str) -> str:
    """What the citizen's phone shows now (the sandbox's phone page asks the same)."""
    base = services.sandbox.url if services.sandbox else services.config.platform.url
    url = f"{base.rstrip('/')}/sandbox/citizens/{citizen_id}/code"  # only a sandbox has it
    async with aiohttp.ClientSession() as session, session.post(url) as answer:
        if answer.status != 200:
            raise SimulationError(f"sandbox refused a code for {citizen_id}: HTTP {answer.status}")
        return (await answer.json())["code"]


async def identify_citizen(
    services: Services, citizen_id: str, via: str, *, item_code: str, timeout: float = 10.0
) -> Identity:
    """The citizen identifies at the kiosk the way `via` says, through the real drivers."""
    c = citizen(citizen_id)
    devices = services.devices.devices
    if via == "idcard":
        reader = devices["id_card"]
        reader.simulator.insert_card(id_card_of(c))
        try:
            card = await asyncio.wait_for(reader.read_card(), timeout)
        finally:
            reader.simulator.remove_card()
        return identify.from_id_card(card)
    if via == "ssc":
        reader = devices["ssc"]
        sim_card = reader.sim_card
        await asyncio.to_thread(sim_card.remove)
        # pcscd polls the slot every 400 ms: until it has seen the old card leave, the
        # reader would still report "present" and read half a swap.
        deadline = asyncio.get_running_loop().time() + timeout
        while await reader.card_present():
            if asyncio.get_running_loop().time() > deadline:
                raise SimulationError("the previous card never left the reader")
            await asyncio.sleep(0.05)
        sim_card.set_holder(ssc_card_of(c))
        sim_card.insert()
        try:
            await reader.wait_for_card(timeout)
            card = await reader.read_card()
        finally:
            await asyncio.to_thread(sim_card.remove)
        return identify.from_ssc_card(card)
    if via == "code":
        scanner = devices["qr"]
        code = await fresh_code(services, citizen_id)
        reading = asyncio.create_task(scanner.read(timeout))
        await asyncio.sleep(0)
        scanner.simulator.scan(code)
        scan = await reading
        return await services.platform.verify_code(scan.text, item_code=item_code)
    raise SimulationError(f"via must be one of {', '.join(VIAS)}")


IDENTIFYING_DEVICE = {"idcard": "id_card", "ssc": "ssc", "code": "qr"}
SOURCE_OF_VIA = {
    "code": IdentitySource.SUFU_CODE,
    "idcard": IdentitySource.ID_CARD,
    "ssc": IdentitySource.SSC,
}
