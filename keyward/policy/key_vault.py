"""What Azure Key Vault accepts in a certificate policy's validity and lifetime action.

Pure rules, so the settings refuse at load what the issuer (and Key Vault after it) would
refuse mid-renewal, in the same words. Key Vault counts validity in whole months, and a
lifetime action is AutoRenew (only for certificates Key Vault signs itself: issuer
``Self`` or a partner CA, never a CSR merged from an outside CA) or EmailContacts,
triggered by exactly one of ``lifetime_percentage`` (1-99) or ``days_before_expiry``
(1 up to 27 per month of validity).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Final, Literal

Action = Literal["AutoRenew", "EmailContacts"]
ACTIONS: Final[tuple[Action, ...]] = ("AutoRenew", "EmailContacts")

#: The average Gregorian month, for converting a lifetime into Key Vault's whole months.
_AVERAGE_MONTH: Final = timedelta(days=365.25 / 12)
#: Key Vault accepts ``days_before_expiry`` up to ``validity_in_months * 27``.
TRIGGER_DAYS_PER_MONTH: Final = 27


def validity_in_months(lifetime: timedelta) -> int:
    """Key Vault's ``validity_in_months`` for a wanted lifetime: average months, rounded up.

    Key Vault only knows whole calendar months, so a 90-day spec becomes 3 months, a year
    12, and a one-hour test certificate 1. Rounding up keeps the certificate from being
    shorter than asked, except by the day or two a run of short calendar months (February)
    can lose against the average; renewal timing reads the real ``notAfter`` anyway.
    """
    if lifetime <= timedelta(0):
        raise ValueError(f"a certificate lifetime must be positive, not {lifetime}")
    return max(1, math.ceil(lifetime / _AVERAGE_MONTH))


def lifetime_action_problem(*, signed_by_key_vault: bool, action: str | None,
                            percentage: int | None, days: int | None,
                            months: int | None = None,
                            names: tuple[str, str, str] = (
                                "lifetime_action", "lifetime_percentage",
                                "days_before_expiry"),
                            ) -> tuple[str, str] | None:
    """``(setting, problem)`` for a lifetime action Key Vault would refuse, else None.

    ``names`` are the words for the action and its two triggers where the caller reads
    them (the issuer's arguments, or the ``azure_…`` settings); ``setting`` is one of them.
    ``months`` (the validity) bounds ``days_before_expiry`` when it is known.
    """
    action_name, percentage_name, days_name = names
    if action is None:
        if percentage is not None:
            return percentage_name, f"{percentage_name} needs {action_name}"
        if days is not None:
            return days_name, f"{days_name} needs {action_name}"
        return None
    if action not in ACTIONS:
        return action_name, f"{action_name} must be AutoRenew or EmailContacts, not {action!r}"
    if action == "AutoRenew" and not signed_by_key_vault:
        return action_name, ("Key Vault can only auto-renew certificates it signs (Self or a "
                             "partner CA), not ones merged from an external CA")
    if (percentage is None) == (days is None):
        return action_name, f"give exactly one of {percentage_name} and {days_name}"
    if percentage is not None and not 1 <= percentage <= 99:
        return percentage_name, f"{percentage_name} must be 1-99, not {percentage}"
    if days is not None and days < 1:
        return days_name, f"{days_name} must be at least 1, not {days}"
    if days is not None and months is not None and days > months * TRIGGER_DAYS_PER_MONTH:
        return days_name, (f"{days_name}={days} exceeds what Key Vault accepts for a "
                           f"{months}-month certificate ({months * TRIGGER_DAYS_PER_MONTH})")
    return None
