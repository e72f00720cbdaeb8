"""Fixtures for every item folder's tests (screens/items/<item_id>/tests/), from the SDK's
testing kit (kiosk.items.testing):

- `kit`: in-memory fakes around a real journey engine — for rules and edge cases;
- `kiosk_services`: the real sandbox platform, outbox and simulated devices, opened once per
  test module — for whole journeys (`run_journey`, tests marked `@kiosk_loop`);
- `kiosk_devices`: which simulators `kiosk_services` starts; override it in a module.

Item folders are not Python packages: pytest imports each test module by its file name,
which is why it is `test_<item_id>.py`.
"""

from kiosk.items.testing import kiosk_devices, kiosk_services, kit

__all__ = ["kiosk_devices", "kiosk_services", "kit"]
