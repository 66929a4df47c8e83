"""Every side effect a workflow needs, as activity classes that receive their clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hvac

from activities.authorities import CaRotationActivities
from activities.certificates import CertificateActivities
from activities.cloud_namespaces import CloudNamespaceActivities
from activities.rotation_settings import RotationSettingsActivities
from activities.temporal_history import TemporalHistoryActivities
from activities.transit_keys import TransitKeyActivities
from keyward.config import Settings
from keyward.issuers.factory import issuer_factory


def build_activities(*, vault: hvac.Client, settings: Settings) -> list[Callable[..., Any]]:
    """The bound activity methods the worker registers, built around shared clients.

    The Cloud namespace activities only when ``cloud.api_key_file`` is set: without an API
    key they could do nothing but fail, and a worker that is not meant to touch Temporal
    Cloud should not answer to their names at all.
    """
    transit = TransitKeyActivities(vault)
    history = TemporalHistoryActivities(scan_limit=settings.rotation.history_scan_limit)
    certificates = CertificateActivities(
        settings, issuer_factory(vault, authorities=settings.certificate_authorities))
    rotation = RotationSettingsActivities(settings)
    authorities = CaRotationActivities(settings, vault=vault)
    registered: list[Callable[..., Any]] = [
        transit.read_transit_key, transit.rotate_transit_key, transit.set_decryption_floor,
        history.describe_history_window, history.rewrap_schedule_inputs,
        certificates.inspect, certificates.issue_and_install, certificates.verify,
        rotation.resolve,
        authorities.plan, authorities.stage, authorities.publish, authorities.activate,
        authorities.verify_leaves]
    if settings.cloud.api_key_file is not None:
        cloud = CloudNamespaceActivities(settings.cloud)
        registered += [cloud.read_namespace, cloud.add_client_ca, cloud.set_codec_server]
    return registered


__all__ = ["build_activities"]
