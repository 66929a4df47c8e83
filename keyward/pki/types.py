"""The vocabulary every certificate component shares: what to issue, and what came back.

Issuers (local CA, Azure Key Vault, Vault PKI, cert-manager), the validator and the
installers all speak these two types, so a renewal workflow can swap one backend for
another without changing anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

KeyType = Literal["ec-p256", "rsa-2048", "rsa-4096"]
Usage = Literal["client", "server", "both"]


@dataclass(frozen=True)
class CertificateSpec:
    """What a certificate must look like (from the settings of one named certificate)."""

    name: str
    common_name: str
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    #: client: EKU clientAuth (Temporal workers); server: serverAuth; both: both.
    usage: Usage = "client"
    lifetime: timedelta = timedelta(days=90)
    key_type: KeyType = "ec-p256"
    #: The rest of the subject's distinguished name (O and OU may repeat). An issued
    #: certificate must carry each one asked for (keyward.pki.validate); what is not asked
    #: for is not checked, since an issuer (a Vault role, cert-manager) may add its own.
    organization: tuple[str, ...] = ()
    organizational_unit: tuple[str, ...] = ()
    #: ISO 3166 alpha-2 (``"DE"``).
    country: str | None = None
    #: stateOrProvinceName.
    state: str | None = None
    locality: str | None = None


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and its key, PEM-encoded, as an issuer returns them."""

    #: The leaf first, then any intermediates (a chain, as servers send it).
    certificate_pem: bytes
    #: PKCS#8 PEM, unencrypted (it is written with mode 0600 and never logged).
    private_key_pem: bytes
    #: The issuing CA's certificate, for ``ca.crt`` and for validation.
    ca_pem: bytes | None = None
