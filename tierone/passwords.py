"""Temporary passwords: random, readable aloud, and meeting Entra's complexity rule
(three of four character classes) by construction."""

from __future__ import annotations

import secrets

# No look-alike characters (0/O, 1/l/I), so a person can type what they read.
_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_LOWER = "abcdefghijkmnopqrstuvwxyz"
_DIGITS = "23456789"
_ALPHABET = _UPPER + _LOWER + _DIGITS


def temporary_password(groups: int = 4, group_size: int = 4) -> str:
    """E.g. 'Kp7m-Rt4x-Qw9z-Hb3n': 16 random characters (~90 bits) plus hyphens."""
    while True:
        chars = [secrets.choice(_ALPHABET) for _ in range(groups * group_size)]
        if any(c in _UPPER for c in chars) and any(c in _LOWER for c in chars) and any(c in _DIGITS for c in chars):
            return "-".join("".join(chars[i : i + group_size]) for i in range(0, len(chars), group_size))
