"""Workflow inputs derived from settings, in one place for schedules, ledger and CLI."""

from __future__ import annotations

from datetime import timedelta

from keyward.config import Settings
from keyward.contracts.ledger import LedgerInput
from keyward.contracts.rotation import RotateKeyInput
from keyward.policy.cadence import Cadence, rotation_cadence, version_budget

#: Payloads may still be encrypted under the old version for as long as an envelope
#: data key lives after the rotation; this margin covers clock skew and slow writers.
GRACE_MARGIN_SECONDS = 300


def namespaces_using(settings: Settings, key: str) -> list[str]:
    """Namespaces whose payloads a Transit key encrypts, or encrypted before a remapping.

    Those ``codec.keys`` maps to it, those listing it in ``codec.previous_keys`` (their old
    histories still hold it), and either ``rotation.namespaces[key]`` or, when that is not
    set, the namespace named like the key (an unmapped namespace uses its own name).
    """
    codec = settings.codec
    mapped = {ns for ns, k in codec.keys.items() if k == key}
    mapped |= {ns for ns, keys in codec.previous_keys.items() if key in keys}
    explicit = settings.rotation.namespaces.get(key)
    if explicit is not None:
        mapped |= set(explicit)
    elif key not in codec.keys:
        mapped.add(key)  # a namespace named like the key uses it unless remapped
    return sorted(mapped)


def cadence_for(settings: Settings, key: str, rate_per_day: float) -> Cadence:
    del key  # one policy for all keys today; the key is here for per-key settings later
    rotation = settings.rotation
    return rotation_cadence(rate_per_day, safety_factor=rotation.safety_factor,
                            max_key_age=timedelta(days=rotation.max_key_age_days))


def rotate_input(settings: Settings, key: str, *, reason: str,
                 min_version_age: timedelta = timedelta(0)) -> RotateKeyInput:
    """The complete input schedules, the ledger and ``starter.py`` send.

    The worker takes the protective fields (mount, namespaces, floor, buffers, grace,
    trimming) from its own settings again, through this same function
    (``ResolveRotationInput``): what arrives in an input is never trusted for them.
    """
    rotation = settings.rotation
    grace = int(settings.codec.datakey_max_age_seconds) + GRACE_MARGIN_SECONDS
    return RotateKeyInput(
        key=key, mount=settings.vault.transit_mount, reason=reason,
        min_version_age_seconds=int(min_version_age.total_seconds()),
        raise_decryption_floor=rotation.raise_decryption_floor,
        namespaces=namespaces_using(settings, key),
        retention_buffer_seconds=int(rotation.retention_buffer_hours * 3600),
        encryption_grace_seconds=grace,
        trim_archived_versions=rotation.trim_archived_versions,
        settings_from="input",
    )


def ledger_input(settings: Settings, key: str) -> LedgerInput:
    return LedgerInput(key=key, mount=settings.vault.transit_mount,
                       budget=version_budget(settings.rotation.safety_factor),
                       rotate_at=settings.rotation.ledger_rotate_at,
                       rotation=rotate_input(settings, key, reason="budget"))
