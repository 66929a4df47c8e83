"""Every side effect a workflow needs, as activity classes that receive their clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hvac

from activities.authorities import CaRotationActivities
from activities.certificates import CertificateActivities
from activities.rotation_settings import RotationSettingsActivities
from activities.temporal_history import TemporalHistoryActivities
from activities.transit_keys import TransitKeyActivities
from keyward.config import Settings
from keyward.issuers.factory import issuer_factory


def build_activities(*, vault: hvac.Client, settings: Settings) -> list[Callable[..., Any]]:
    """The bound activity methods the worker registers, built around shared clients."""
    transit = TransitKeyActivities(vault)
    history = TemporalHistoryActivities(scan_limit=settings.rotation.history_scan_limit)
    certificates = CertificateActivities(settings, issuer_factory(vault))
    rotation = RotationSettingsActivities(settings)
    authorities = CaRotationActivities(settings)
    return [transit.read_transit_key, transit.rotate_transit_key, transit.set_decryption_floor,
            history.describe_history_window, history.rewrap_schedule_inputs,
            certificates.inspect, certificates.issue_and_install, certificates.verify,
            rotation.resolve,
            authorities.plan, authorities.stage, authorities.publish, authorities.activate,
            authorities.verify_leaves]


__all__ = ["build_activities"]
