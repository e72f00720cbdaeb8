"""Enrolment tokens: shape, randomness, forgiving typing, and no exceptions on junk."""

from __future__ import annotations

import hashlib
import re

from hypothesis import given
from hypothesis import strategies as st

from provisioning.tokens import looks_like_token, new_enrolment_token, token_hash


def test_a_new_token_is_kenr_plus_32_base32_chars_and_its_hash_is_sha256():
    token, digest = new_enrolment_token()
    assert re.fullmatch(r"kenr_[a-z2-7]{32}", token)
    assert digest == hashlib.sha256(token.encode()).hexdigest() == token_hash(token)
    assert looks_like_token(token)


def test_tokens_do_not_repeat_and_use_the_whole_alphabet():
    tokens = {new_enrolment_token()[0] for _ in range(500)}
    assert len(tokens) == 500
    used = set("".join(t[5:] for t in tokens))
    assert used == set("abcdefghijklmnopqrstuvwxyz234567")


def test_typing_is_forgiving_about_case_spaces_and_hyphens():
    token, digest = new_enrolment_token()
    body = token[5:]
    typed = "KENR_" + "-".join(body[i:i + 4] for i in range(0, 32, 4)).upper() + "  "
    assert looks_like_token(typed)
    assert token_hash(typed) == digest
    assert token_hash(" " + token) == digest


def test_junk_is_not_a_token():
    token, digest = new_enrolment_token()
    for junk in [None, 5, b"kenr_", "", "kenr_", token[:-1], token + "a", token[:-1] + "1",
                 token[:-1] + "0", "kenx_" + token[5:], "x" * 10_000]:
        assert not looks_like_token(junk), junk
    assert token_hash(token[:-1]) != digest


@given(st.text())
def test_looks_like_token_and_token_hash_never_raise(text):
    assert looks_like_token(text) in (True, False)
    assert len(token_hash(text)) == 64
