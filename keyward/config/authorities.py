"""The ``[certificate_authorities.<name>]`` tables: CAs keyward rotates.

A CA table names the CA files the ``local-ca`` issuers sign with (``ca_cert``/``ca_key``:
the same paths a certificate's ``ca_cert``/``ca_key`` give, which is how keyward knows the
leaves each CA signs), the subject and lifetime of a successor, the trust bundles every
process that trusts the CA reads, how long the new bundle soaks before issuance switches,
and how long the old CA stays trusted after the switch. Everything that decides when trust
is withdrawn is here, in the operator's settings, never in a workflow's input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator

from keyward.cloud.names import check_namespace_name
from keyward.config.section import settings_class
from keyward.config.values import ConfigPath, MaybePath, NonEmpty, Positive, checked_by
from keyward.errors import KeywardError

KeyType = Literal["ec-p256", "rsa-2048", "rsa-4096"]


def _distinct(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    if len(set(paths)) != len(paths):
        raise ValueError("each trust bundle is listed once")
    return paths


def _cloud_names(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            check_namespace_name(name)
        except KeywardError as exc:
            return str(exc)
    return None


@settings_class("")
class CertificateAuthoritySettings:
    """One CA that ``RotateCertificateAuthority`` may replace."""

    #: Where the CA lives: "local" (keyward's CA files). Vault PKI and Azure Key Vault CAs
    #: are not rotated by keyward yet.
    backend: Literal["local"] = "local"
    #: The active CA: what ``issuer = "local-ca"`` certificates with the same paths sign with.
    ca_cert: ConfigPath
    ca_key: ConfigPath
    #: The successor's subject common name (the old CA's is kept when unset).
    common_name: NonEmpty | None = None
    lifetime_days: Positive = 3650.0
    key_type: KeyType = "ec-p256"
    #: PEM files every process that trusts this CA reads (the Temporal server's
    #: ``clientCaFiles``, the worker's ``temporal.tls_server_ca``, the codec server's
    #: ``tls_client_ca``, a gateway's client CA): each gets old + new during a rotation.
    trust_bundles: Annotated[tuple[ConfigPath, ...], AfterValidator(_distinct)] = ()
    #: Temporal Cloud namespaces (``<name>.<account>``) whose accepted client CAs trust this
    #: CA: each gets the successor added, and later the old CA removed, through the Cloud
    #: Ops API of the ``[cloud]`` section (its key needs Namespace Admin on them).
    trust_cloud_namespaces: Annotated[tuple[str, ...], checked_by(_cloud_names)] = ()
    #: How long the old + new bundle is given to reach every process before issuance
    #: switches to the new CA (reload intervals, config-map propagation, rollouts).
    soak_seconds: Positive = 600.0
    #: After the switch the old CA stays trusted for the longest lifetime of a leaf it
    #: signed plus this, so no leaf still in use is ever untrusted.
    grace_hours: Positive = 24.0
    #: Staged successor, the replaced CA and the archive of old key material (never
    #: deleted). Default: ``rotation/`` beside ``ca_cert``.
    state_dir: MaybePath = None

    @property
    def state_directory(self) -> Path:
        return self.state_dir if self.state_dir is not None else self.ca_cert.parent / "rotation"
