"""Lease arithmetic and the token settings auth-method roles share.

:func:`calculate_ttl` is a port of Vault's ``framework.CalculateTTL``: a
lifetime comes from the requested increment, else the backend's TTL, else the
system default (768h); it is capped by the backend's ``max_ttl``, the
token's ``explicit_max_ttl`` and the system maximum, all measured from the
original issue time, and periodic tokens get their period every time. When a
cap applies, Vault says so in a warning, reproduced word for word.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from keyward_devstack.vaultdev import fields
from keyward_devstack.vaultdev.durations import format_go
from keyward_devstack.vaultdev.errors import bad_request
from keyward_devstack.vaultdev.state import TokenSettings

#: Vault's built-in default and maximum lease TTL: 768 hours.
SYSTEM_DEFAULT_TTL = 768 * 3600
SYSTEM_MAX_TTL = 768 * 3600


def calculate_ttl(
    *,
    increment: int,
    backend_ttl: int,
    period: int,
    backend_max_ttl: int,
    explicit_max_ttl: int,
    start: float,
    now: float,
) -> tuple[int, list[str]]:
    """The TTL Vault grants, with the warnings it attaches when capping it."""
    warnings: list[str] = []
    now, start = float(int(now)), float(int(start))
    max_ttl = SYSTEM_MAX_TTL
    if 0 < backend_max_ttl < max_ttl:
        max_ttl = backend_max_ttl
    if 0 < explicit_max_ttl < max_ttl:
        max_ttl = explicit_max_ttl
    max_valid_time: float | None
    if period > 0:
        if period > max_ttl:
            warnings.append(
                f'period of "{format_go(period)}" exceeded the effective max_ttl of '
                f'"{format_go(max_ttl)}"; period value is capped accordingly'
            )
            period = max_ttl
        ttl = period
        max_valid_time = start + explicit_max_ttl if explicit_max_ttl > 0 else None
    else:
        ttl = increment if increment > 0 else backend_ttl if backend_ttl > 0 else SYSTEM_DEFAULT_TTL
        max_valid_time = start + max_ttl
    if max_valid_time is not None:
        max_valid_ttl = int(max_valid_time - now)
        if max_valid_ttl < 0:
            raise bad_request("past the max TTL, cannot renew")
        if ttl > max_valid_ttl:
            warnings.append(
                f'TTL of "{format_go(ttl)}" exceeded the effective max_ttl of '
                f'"{format_go(max_valid_ttl)}"; TTL value is capped accordingly'
            )
            ttl = max_valid_ttl
    return ttl, warnings


def sanitize_policies(policies: Iterable[str], *, add_default: bool) -> list[str]:
    """Vault's ``policyutil.SanitizePolicies``: lowercase, sorted, ``root`` alone."""
    cleaned = {policy.strip().lower() for policy in policies if policy.strip()}
    if "root" in cleaned:
        return ["root"]
    if add_default:
        cleaned.add("default")
    return sorted(cleaned)


def parse_token_settings(data: Mapping[str, Any], current: TokenSettings) -> TokenSettings:
    """Apply a role's ``token_*`` parameters (and their deprecated aliases)."""

    def pick(name: str, alias: str | None = None) -> str | None:
        return fields.first_present(data, name, *([alias] if alias else []))

    settings = TokenSettings(**vars(current))
    if key := pick("token_ttl", "ttl"):
        settings.ttl = fields.duration(data, key)
    if key := pick("token_max_ttl", "max_ttl"):
        settings.max_ttl = fields.duration(data, key)
    if key := pick("token_explicit_max_ttl"):
        settings.explicit_max_ttl = fields.duration(data, key)
    if key := pick("token_period", "period"):
        settings.period = fields.duration(data, key)
    if key := pick("token_policies", "policies"):
        settings.policies = fields.string_list(data, key) or []
    if key := pick("token_no_default_policy"):
        settings.no_default_policy = fields.boolean(data, key)
    if key := pick("token_num_uses"):
        settings.num_uses = fields.integer(data, key)
    if key := pick("token_type"):
        settings.token_type = fields.string(data, key)
    if settings.max_ttl > 0 and settings.ttl > settings.max_ttl:
        raise bad_request("'token_ttl' cannot be greater than 'token_max_ttl'")
    return settings


def token_settings_view(settings: TokenSettings) -> dict[str, Any]:
    """The ``token_*`` fields of a role as Vault reads them back."""
    return {
        "token_ttl": settings.ttl,
        "token_max_ttl": settings.max_ttl,
        "token_explicit_max_ttl": settings.explicit_max_ttl,
        "token_period": settings.period,
        "token_policies": list(settings.policies),
        "token_no_default_policy": settings.no_default_policy,
        "token_num_uses": settings.num_uses,
        "token_type": settings.token_type,
        "token_bound_cidrs": [],
        "policies": list(settings.policies),
        "ttl": settings.ttl,
        "max_ttl": settings.max_ttl,
        "period": settings.period,
    }
