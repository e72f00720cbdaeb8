"""Mutators shared by the fuzz targets: bytes, text and JSON-like trees.

Every function takes a `random.Random` and returns a new value, so a target's run is fixed
by its seed and any failing input can be generated again. The byte mutations are the usual
ones of coverage-blind fuzzers (bit flips, interesting values, inserted/deleted/duplicated
ranges, 16-bit length fields set to edge values); the tree mutations are the ones that break
JSON and TOML parsers in practice: deep nesting, huge and non-finite numbers, wrong types,
missing and unknown keys, very long and odd strings.
"""

from __future__ import annotations

import json
import os
import random
import string
from collections.abc import Callable, Sequence
from typing import Any

INTERESTING_BYTES = (
    0x00, 0x01, 0x02, 0x03, 0x0A, 0x0D, 0x10, 0x11, 0x20, 0x30, 0x39, 0x41, 0x5C, 0x60,
    0x61, 0x69, 0x6C, 0x7F, 0x80, 0x81, 0x90, 0x96, 0x9F, 0xAA, 0xC0, 0xFE, 0xFF,
)
INTERESTING_16 = (0, 1, 2, 3, 4, 0x7F, 0x80, 0xFF, 0x100, 0x3FF, 0x400, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
INTERESTING_INTS = (
    0, 1, -1, 2, 5, 7, 2**7, 2**8, 2**15, 2**16, 2**31 - 1, 2**31, -(2**31), 2**32, 2**53 + 1,
    2**63 - 1, 2**63, -(2**63), 2**64, 10**30, -(10**30), 10**400,
)
INTERESTING_FLOATS = (
    0.0, -0.0, 0.5, 1e-320, 1.7976931348623157e308, -1.7976931348623157e308, 1e16, 2.5e-7,
    float("inf"), float("-inf"), float("nan"),
)
# Characters that break text handling: controls, surrogate-range code points written as
# escapes by the JSON layer, BOM, non-characters, full-width, combining, RTL, CJK, astral.
ODD_CHARS = (
    "\x00", "\x01", "\x7f", "\x85", "\u2028", "\ufeff", "\ufffe", "\uffff", "\u3000", "\u0301",
    "\u202e", "é", "ß", "ﬃ", "名", "𠀀", "😀", "\\", '"', "'", "\n", "\r", "\t", " ",
)


# -- bytes ------------------------------------------------------------------------------------


def random_bytes(rng: random.Random, max_length: int = 64) -> bytes:
    return rng.randbytes(rng.randint(0, max_length))


def _set_u16(rng: random.Random, data: bytearray) -> None:
    if len(data) < 2:
        return
    at = rng.randrange(len(data) - 1)
    value = rng.choice(INTERESTING_16)
    if rng.random() < 0.3:  # near the real remaining length: off-by-one lengths
        value = max(0, min(0xFFFF, len(data) - at - 2 + rng.randint(-2, 2)))
    order = "big" if rng.random() < 0.7 else "little"
    data[at : at + 2] = value.to_bytes(2, order)


def _op_flip(rng: random.Random, data: bytearray) -> None:
    if data:
        at = rng.randrange(len(data))
        data[at] ^= 1 << rng.randrange(8)


def _op_byte(rng: random.Random, data: bytearray) -> None:
    if data:
        data[rng.randrange(len(data))] = rng.choice(INTERESTING_BYTES) if rng.random() < 0.6 else rng.randrange(256)


def _op_insert(rng: random.Random, data: bytearray) -> None:
    at = rng.randint(0, len(data))
    chunk = rng.randbytes(rng.randint(1, 8)) if rng.random() < 0.5 else bytes([rng.choice(INTERESTING_BYTES)]) * rng.randint(1, 16)
    data[at:at] = chunk


def _op_delete(rng: random.Random, data: bytearray) -> None:
    if data:
        at = rng.randrange(len(data))
        del data[at : at + rng.randint(1, 8)]


def _op_duplicate(rng: random.Random, data: bytearray) -> None:
    if data:
        at = rng.randrange(len(data))
        chunk = data[at : at + rng.randint(1, 32)]
        to = rng.randint(0, len(data))
        data[to:to] = chunk * rng.randint(1, 3)


def _op_truncate(rng: random.Random, data: bytearray) -> None:
    if data:
        del data[rng.randrange(len(data)) :]


def _op_append(rng: random.Random, data: bytearray) -> None:
    data += rng.randbytes(rng.randint(1, 16))


def _op_swap(rng: random.Random, data: bytearray) -> None:
    if len(data) >= 4:
        a, b = sorted(rng.sample(range(len(data)), 2))
        data[a], data[b] = data[b], data[a]


_BYTE_OPS: Sequence[Callable[[random.Random, bytearray], None]] = (
    _op_flip, _op_flip, _op_byte, _op_byte, _op_insert, _op_delete, _op_duplicate,
    _op_truncate, _op_append, _op_swap, _set_u16, _set_u16,
)


def mutate_bytes(rng: random.Random, data: bytes, rounds: int | None = None) -> bytes:
    """`data` with 1-4 (or `rounds`) random byte-level mutations."""
    out = bytearray(data)
    for _ in range(rounds if rounds is not None else rng.choice((1, 1, 1, 2, 2, 3, 4))):
        rng.choice(_BYTE_OPS)(rng, out)
    return bytes(out)


def splice(rng: random.Random, a: bytes, b: bytes) -> bytes:
    """The head of one input joined to the tail of another."""
    return a[: rng.randint(0, len(a))] + b[rng.randint(0, len(b)) :]


def chunks(rng: random.Random, data: bytes) -> list[bytes]:
    """`data` cut into the pieces a serial line might deliver it in (empty reads included)."""
    out = []
    pos = 0
    while pos < len(data):
        size = rng.choice((1, 1, 2, 3, 7, 64, 4096))
        if rng.random() < 0.05:
            out.append(b"")
        out.append(data[pos : pos + size])
        pos += size
    return out


# -- text -------------------------------------------------------------------------------------


def odd_text(rng: random.Random, max_length: int = 24) -> str:
    pieces = []
    for _ in range(rng.randint(0, max_length)):
        roll = rng.random()
        if roll < 0.35:
            pieces.append(rng.choice(ODD_CHARS))
        elif roll < 0.7:
            pieces.append(rng.choice(string.printable))
        elif roll < 0.85:
            pieces.append(chr(rng.randrange(0x4E00, 0x9FA6)))
        else:
            code = rng.randrange(0x110000)
            pieces.append(chr(code) if not 0xD800 <= code < 0xE000 else "\ufffd")
    return "".join(pieces)


def mutate_text(rng: random.Random, text: str) -> str:
    """`text` with a few character-level edits (insert odd characters, delete, repeat)."""
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        at = rng.randint(0, len(chars))
        if roll < 0.4:
            chars[at:at] = list(odd_text(rng, 4))
        elif roll < 0.7 and chars:
            del chars[at : at + rng.randint(1, 6)]
        elif roll < 0.85 and chars:
            chars[at:at] = chars[at : at + rng.randint(1, 8)] * rng.randint(2, 50)
        else:
            chars[at:at] = list(rng.choice(("[", "]", "{", "}", '"', "'", "=", ",", ":", "\n", "#", "\\", ".")))
    return "".join(chars)


# -- JSON-like trees ----------------------------------------------------------------------------


def deep(rng: random.Random, depth: int | None = None) -> Any:
    """A list/dict nested `depth` levels (default: up to 5000, deep enough for RecursionError)."""
    depth = depth if depth is not None else rng.choice((50, 300, 1100, 5000))
    value: Any = rng.choice((0, "x", None, []))
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"a": value}
    return value


def deep_json(rng: random.Random) -> str:
    """JSON text nested past any recursion limit (arrays, objects or both)."""
    depth = rng.choice((64, 256, 1001, 5000, 100_000))
    opener, closer = rng.choice((("[", "]"), ('{"a":', "}"), ('[{"a":', "}]")))
    return opener * depth + rng.choice(("1", "null", '"x"', "[]")) + closer * depth


def deep_toml(rng: random.Random, key: str = "a") -> str:
    """A TOML line nested deeply: arrays, inline tables, dotted keys or a table header."""
    depth = rng.choice((64, 400, 1001, 5000))
    kind = rng.randrange(4)
    if kind == 0:
        return f"{key} = " + "[" * depth + "1" + "]" * depth + "\n"
    if kind == 1:
        return f"{key} = " + "{ b = " * depth + "1" + " }" * depth + "\n"
    # Dotted keys stop at 1001 parts: tomllib itself takes quadratic time on them (20,000
    # parts: seconds), which would slow the run without finding anything new.
    depth = min(depth, 1001)
    if kind == 2:
        return ".".join([key] * depth) + ' = "x"\n'
    return "[" + ".".join([key] * depth) + ']\nb = "x"\n'


def wrong_value(rng: random.Random, like: Any = None, huge: bool = True) -> Any:
    """A value of a type or size the schema does not expect (`huge`: sometimes 300 kB)."""
    if isinstance(like, (int, float)) and not isinstance(like, bool) and rng.random() < 0.5:
        # Numbers get edge numbers most often: what overflows float(), timedelta, struct.
        return rng.choice(INTERESTING_INTS + INTERESTING_FLOATS)
    roll = rng.randrange(12)
    if roll == 0:
        return rng.choice(INTERESTING_INTS)
    if roll == 1:
        return rng.choice(INTERESTING_FLOATS)
    if roll == 2:
        return odd_text(rng)
    if roll == 3:  # sizes at the usual bounds; rarely one past a 256 KiB body limit
        size = 300_000 if huge and rng.random() < 0.02 else rng.choice((0, 1, 63, 64, 65, 255, 256, 257, 4096))
        return "x" * size
    if roll == 4:
        return None
    if roll == 5:
        return rng.random() < 0.5
    if roll == 6:
        return []
    if roll == 7:
        return {}
    if roll == 8:
        return [like] * rng.randint(2, 300) if like is not None else [1, "a", None]
    if roll == 9:
        return {"unknown": like, "": None}
    if roll == 10:  # moderately deep; deep_json/deep_toml write the stack-breaking ones
        return deep(rng, rng.choice((5, 40, 120)))
    if isinstance(like, str):
        return mutate_text(rng, like)
    if isinstance(like, int) and not isinstance(like, bool):
        return like + rng.choice((-1, 1, 2**31, -(2**63)))
    return str(like)


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for key, inner in value.items():
            out += _paths(inner, path + (key,))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            out += _paths(inner, path + (index,))
    return out


def _get(value: Any, path: tuple) -> Any:
    for part in path:
        value = value[part]
    return value


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        copy[head] = _replace(value[head], rest, new)
        return copy
    copy_list = list(value)
    copy_list[head] = _replace(value[head], rest, new)
    return copy_list


def _delete(value: Any, path: tuple) -> Any:
    if not path:
        return value
    parent = _get(value, path[:-1])
    if isinstance(parent, dict):
        new_parent = {k: v for k, v in parent.items() if k != path[-1]}
    else:
        new_parent = [v for i, v in enumerate(parent) if i != path[-1]]
    return _replace(value, path[:-1], new_parent)


def mutate_tree(
    rng: random.Random, value: Any, rounds: int | None = None, huge: bool = True
) -> Any:
    """A JSON-like tree with 1-3 structural mutations: a node replaced by a wrong value,
    deleted, duplicated into a list, or given an unknown sibling."""
    for _ in range(rounds if rounds is not None else rng.choice((1, 1, 2, 3))):
        paths = _paths(value)
        path = rng.choice(paths)
        node = _get(value, path)
        roll = rng.random()
        if roll < 0.55:
            value = _replace(value, path, wrong_value(rng, node, huge))
        elif roll < 0.7 and path:
            value = _delete(value, path)
        elif roll < 0.85 and isinstance(node, dict):
            extra = dict(node)
            extra[rng.choice(("extra", "", "id", "__proto__", odd_text(rng, 6)))] = wrong_value(rng, huge=huge)
            value = _replace(value, path, extra)
        elif isinstance(node, list) and node:
            value = _replace(value, path, node + [rng.choice(node)] * rng.randint(1, 40))
        else:
            value = _replace(value, path, wrong_value(rng, node, huge))
    return value


def to_json(rng: random.Random, tree: Any) -> bytes:
    """JSON bytes of a (mutated) tree, NaN/Infinity included; a tree nested too deeply for
    the encoder becomes deeply nested JSON text instead."""
    try:
        return json.dumps(tree, allow_nan=True, ensure_ascii=rng.random() < 0.5).encode(
            "utf-8", "surrogatepass"
        )
    except RecursionError:
        return deep_json(rng).encode()


def scratch_dir() -> str | None:
    """Where targets that write files work: tmpfs when there is one (the bundle store fsyncs
    every file, which costs milliseconds on a disk and nothing in memory), else the default."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
