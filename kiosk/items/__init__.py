"""The item SDK (DESIGN §6): an item is a folder `screens/items/<item_id>/` with a declarative
`item.toml`, optional `hooks.py` and `locales/`, and its own tests.

- `manifest`: the item.toml model, typed answer fields, problems with file/line/fix;
- `loader`: load one folder (hooks imported by path); `registry`: all items, and which to
  offer a citizen now; `lint`: everything wrong with a folder; `hooks`: the hooks API;
- `cli`: `kiosk items lint|list`. The journey engine that runs an item is `kiosk.journey`.
"""
