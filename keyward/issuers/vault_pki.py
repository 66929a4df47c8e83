"""The ``vault-pki`` issuer: certificates from a Vault PKI role (``<mount>/issue/<role>``).

Vault generates the key and decides its type from the *role*, not from the
request: ``key_type``/``key_bits`` on ``<mount>/roles/<role>`` must match the
specs issued through it (``ec``/256 for ``ec-p256``, ``rsa``/2048 for
``rsa-2048``, ``rsa``/4096 for ``rsa-4096``). The role likewise decides the
extended key usages (``server_flag``, ``client_flag``) and which names are
allowed. The issuer checks the returned key against ``spec.key_type`` and
refuses a mismatch as a permanent error: retrying the same role gives the same
kind of key.

The subject beyond the common name is the role's too. ``<mount>/issue/<role>`` takes a
``common_name`` and no O, OU, C, ST or L: Vault builds every subject it issues from the
role's ``organization``, ``ou``, ``country``, ``province``, ``locality``,
``street_address`` and ``postal_code`` lists (``GenerateCreationBundle`` in
``builtin/logical/pki/issuing/issue_common.go``), for ``issue`` and ``sign`` alike. A spec
that asks for any of them is therefore refused before Vault is called (the settings refuse
it at load), rather than issuing a certificate without them.

Failures Vault may recover from (sealed, 5xx, 429, connection trouble) are
retryable; refusals (a name the role does not allow, a missing role, a denied
token) are not. Messages carry Vault's own error text and never the token or
any key material.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import hvac
from cryptography import x509

from keyward.issuers.base import IssuerError
from keyward.pki.keys import PrivateKeyError, key_type_of, load_private_key
from keyward.pki.subject import asked_for
from keyward.pki.types import CertificateSpec, IssuedCertificate
from keyward.vault.errors import VaultError, vault_errors

#: How an operator sets what the role puts in the subject.
ROLE_SUBJECT_FIELDS_TEXT = ("vault write <mount>/roles/<role> organization=… ou=… country=… "
                            "province=… locality=…")


class VaultPkiIssuer:
    """Implements :class:`keyward.issuers.base.Issuer` with Vault's ``pki/issue/<role>``."""

    def __init__(self, client: hvac.Client, *, mount: str = "pki", role: str) -> None:
        self._client = client
        self._mount = mount.strip("/")
        self._role = role

    @property
    def name(self) -> str:
        return "vault-pki"

    def __repr__(self) -> str:
        # The client holds the token; keep it out of any repr that reaches a log.
        return f"VaultPkiIssuer(mount={self._mount!r}, role={self._role!r})"

    def issue(self, spec: CertificateSpec) -> IssuedCertificate:
        """A certificate and key for ``spec`` from the role; IssuerError when refused."""
        seconds = int(spec.lifetime.total_seconds())
        if seconds <= 0:
            raise IssuerError(f"spec {spec.name!r} has a non-positive lifetime", retryable=False)
        if wanted := asked_for(spec):
            labels = ", ".join(label for _, label, _ in wanted)
            raise IssuerError(
                f"spec {spec.name!r} asks for {labels} in the subject, which "
                f"{self._mount}/issue cannot set: the role's fields decide them "
                f"({ROLE_SUBJECT_FIELDS_TEXT})", retryable=False)
        params: dict[str, Any] = {
            "ttl": f"{seconds}s",
            "format": "pem",
            "private_key_format": "pkcs8",
        }
        if spec.dns_names:
            params["alt_names"] = ",".join(spec.dns_names)
        if spec.ip_addresses:
            params["ip_sans"] = ",".join(spec.ip_addresses)
        where = f"{self._mount}/issue/{self._role}"
        try:
            with vault_errors(f"PKI issue ({where})"):
                response = self._client.secrets.pki.generate_certificate(
                    name=self._role,
                    common_name=spec.common_name,
                    extra_params=params,
                    mount_point=self._mount,
                )
        except VaultError as error:
            raise IssuerError(f"Vault PKI refused {spec.name!r}: {error}",
                              retryable=error.retryable) from error
        return self._issued(spec, response, where)

    def _issued(self, spec: CertificateSpec, response: object, where: str) -> IssuedCertificate:
        data = response.get("data") if isinstance(response, Mapping) else None
        if not isinstance(data, Mapping):
            raise IssuerError(f"{where} answered without data", retryable=False)
        certificate = data.get("certificate")
        private_key = data.get("private_key")
        issuing_ca = data.get("issuing_ca")
        raw_chain = data.get("ca_chain") or []
        if not (isinstance(certificate, str) and isinstance(private_key, str)
                and isinstance(issuing_ca, str) and isinstance(raw_chain, list)
                and all(isinstance(item, str) for item in raw_chain)):
            raise IssuerError(f"{where} answered without certificate, private_key, "
                              "issuing_ca or ca_chain", retryable=False)
        key_pem = _pem_bytes(private_key)
        try:
            key_type = key_type_of(load_private_key(key_pem))
        except PrivateKeyError as error:
            raise IssuerError(f"{where} returned an unusable key: {error}",
                              retryable=False) from error
        if key_type != spec.key_type:
            raise IssuerError(
                f"role {self._role!r} on {self._mount!r} issues "
                f"{key_type or 'another kind of'} keys, spec {spec.name!r} asks for "
                f"{spec.key_type}: set the role's key_type/key_bits to match",
                retryable=False)
        chain = [_pem_bytes(item) for item in raw_chain] or [_pem_bytes(issuing_ca)]
        intermediates = [pem for pem in chain if not _self_signed(pem, where)]
        # The anchor is the root when Vault sent it, else the top of what it sent.
        roots = [pem for pem in chain if pem not in intermediates]
        ca_pem = roots[-1] if roots else chain[-1]
        return IssuedCertificate(
            certificate_pem=b"".join([_pem_bytes(certificate), *intermediates]),
            private_key_pem=key_pem,
            ca_pem=ca_pem,
        )


def _pem_bytes(text: str) -> bytes:
    """Vault's PEM strings end without a newline; files and bundles want one."""
    return text.strip().encode("ascii") + b"\n"


def _self_signed(pem: bytes, where: str) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise IssuerError(f"{where} returned a CA certificate that is not readable PEM",
                          retryable=False) from None
    return certificate.subject == certificate.issuer
