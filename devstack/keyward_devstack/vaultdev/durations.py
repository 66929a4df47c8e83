"""Vault's duration parameters: parsing them and printing them like Go does.

Vault accepts a TTL as a number of seconds (``3600`` or ``"3600"``) or as a Go
duration string (``"1h"``, ``"90m"``, ``"1h30m"``), plus a ``d`` suffix for
days. Warnings it sends quote durations the way Go prints them (``"1h0m0s"``),
so the same formatting is reproduced for faithful messages.
"""

from __future__ import annotations

import re

_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # Go accepts the micro sign as a unit
    "μs": 1e-6,  # and the Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_SEGMENT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")
_PLAIN_INTEGER = re.compile(r"[+-]?\d+")


class DurationError(ValueError):
    """The value is not a duration Vault would accept."""


def parse_seconds(value: object) -> int:
    """Whole seconds in ``value``, accepting what Vault's TypeDurationSecond does."""
    if isinstance(value, bool):
        raise DurationError(f"cannot parse {value!r} as a duration")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if not isinstance(value, str):
        raise DurationError(f"cannot parse {value!r} as a duration")
    text = value.strip()
    if text == "":
        return 0
    if _PLAIN_INTEGER.fullmatch(text):
        return int(text)
    return _parse_go_duration(text)


def _parse_go_duration(text: str) -> int:
    sign = 1
    body = text
    if body[:1] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    position = 0
    total = 0.0
    while position < len(body):
        segment = _SEGMENT.match(body, position)
        if segment is None:
            raise DurationError(f'time: invalid duration "{text}"')
        total += float(segment.group(1)) * _UNIT_SECONDS[segment.group(2)]
        position = segment.end()
    if position == 0:
        raise DurationError(f'time: invalid duration "{text}"')
    return sign * int(total)


def format_go(seconds: float) -> str:
    """Print a duration the way Go's ``time.Duration.String`` does."""
    whole = int(seconds)
    if whole == 0:
        return "0s"
    sign = "-" if whole < 0 else ""
    whole = abs(whole)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"
