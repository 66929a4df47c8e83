"""Pieces the PKI engine's handlers share: answer shapes, warnings, request fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from keyward_devstack.vaultdev import fields
from keyward_devstack.vaultdev.durations import format_go
from keyward_devstack.vaultdev.errors import UserError, bad_request, internal_error
from keyward_devstack.vaultdev.pki_roles import SYSTEM_MAX_TTL, PkiRole, requested_names
from keyward_devstack.vaultdev.pki_store import ISSUANCE, PkiIssuer, PkiStore
from keyward_devstack.vaultdev.pki_x509 import (
    PrivateKey,
    Subject,
    SubjectAltNames,
    Urls,
    certificate_pem,
)
from keyward_devstack.vaultdev.protocol import Call, Reply

ERR_CN_REQUIRED = (
    'the common_name field is required, or must be provided in a CSR with "use_csr_common_name" '
    'set to true, unless "require_cn" is set to false'
)
ERR_FORMAT = 'the "format" path parameter must be "pem", "der", or "pem_bundle"'
WARN_NO_AIA = (
    "This mount hasn't configured any authority information access (AIA) fields; this may make "
    "it harder for systems to find missing certificates in the chain or to validate revocation "
    "status of certificates. Consider updating /config/urls or the newly generated issuer with "
    "this information."
)
WARN_NO_SUBJECT = (
    "This issuer certificate was generated without a Subject; this makes it likely that issuing "
    "leaf certs with this certificate will cause TLS validation libraries to reject this "
    "certificate."
)
_PRIVATE_KEY_FORMATS = frozenset({"", "der", "pem", "pkcs8"})


@dataclass
class BodyReply(Reply):
    """An answer sent as a bare body instead of Vault's JSON envelope (``ca/pem``)."""

    body: bytes = b""
    content_type: str = "application/pem-file"


def raw(body: bytes, content_type: str) -> BodyReply:
    """A bare answer; Vault sends 204 with no body when there is nothing to send."""
    if not body:
        return BodyReply(status=204)
    return BodyReply(body=body, content_type=content_type)


def moment(call: Call) -> datetime:
    """The request's time as an aware datetime."""
    return datetime.fromtimestamp(call.now, UTC)


def output_format(data: Mapping[str, Any], message: str = ERR_FORMAT) -> str:
    """``getFormat``: ``pem``, ``der`` or ``pem_bundle``, else a 400 with ``message``."""
    value = fields.string(data, "format", "pem")
    if value not in ("pem", "der", "pem_bundle"):
        raise bad_request(message)
    return value


def wants_pkcs8(data: Mapping[str, Any]) -> bool:
    """Whether ``private_key_format`` asks for PKCS#8 (refusing values Vault refuses)."""
    value = fields.string(data, "private_key_format")
    if value not in _PRIVATE_KEY_FORMATS:
        raise bad_request(f'invalid private_key_format "{value}"')
    return value == "pkcs8"


def issuer_ref(data: Mapping[str, Any], match_ref: str | None) -> str:
    """``GetIssuerRef``: the path's reference, else the ``issuer_ref`` field (``default``)."""
    value = (match_ref if match_ref is not None
             else fields.string(data, "issuer_ref", "default")).strip()
    return "default" if value.lower() == "default" else value


def signing_issuer(store: PkiStore, reference: str
                   ) -> tuple[PkiIssuer, x509.Certificate, PrivateKey]:
    """The issuer to sign with; Vault fails a bad one as an error of its own (HTTP 500)."""
    try:
        return store.signing_issuer(reference, ISSUANCE)
    except UserError as exc:
        raise internal_error(
            f"could not fetch the CA certificate (was one set?): {exc.message}") from None


def urls_for(store: PkiStore, issuer: PkiIssuer | None) -> Urls:
    """The AIA URLs a certificate from ``issuer`` carries: the issuer's own, else the mount's."""
    if issuer is not None and issuer.aia is not None:
        return Urls(issuer.aia.issuing_certificates, issuer.aia.crl_distribution_points,
                    issuer.aia.ocsp_servers)
    config = store.state.urls
    return Urls(config.issuing_certificates, config.crl_distribution_points,
                config.ocsp_servers)


def chain_pems(issuer: PkiIssuer) -> list[str]:
    """An issuer's CA chain as API fields carry PEM (no trailing newline)."""
    return [item.strip() for item in issuer.ca_chain]


def ca_subject(data: Mapping[str, Any], common_name: str) -> Subject:
    """The subject fields of a CA request (``ou``, ``organization``, ``country``...)."""
    def values(name: str) -> list[str]:
        return fields.string_list(data, name) or []

    return Subject(common_name=common_name, ou=values("ou"),
                   organization=values("organization"), country=values("country"),
                   locality=values("locality"), province=values("province"),
                   street_address=values("street_address"), postal_code=values("postal_code"),
                   serial_number=fields.string(data, "serial_number"))


#: The role Vault builds for CA requests: any name, IP SANs allowed, no host-name rule.
_CA_ROLE = PkiRole(allow_any_name=True, enforce_hostnames=False, allow_ip_sans=True)


def ca_names(data: Mapping[str, Any], common_name: str) -> SubjectAltNames:
    """The SANs of a CA request: ``alt_names``, ``ip_sans``, ``uri_sans`` and a host-like CN."""
    try:
        dns, ips = requested_names(_CA_ROLE, common_name, data,
                                   exclude_cn=fields.boolean(data, "exclude_cn_from_sans"))
    except UserError as exc:
        raise bad_request(exc.message) from None
    return SubjectAltNames(dns=dns, ips=ips, uris=fields.string_list(data, "uri_sans") or [])


def capped_ttl(requested: int) -> tuple[int, list[str]]:
    """A CA's TTL: requested, else the mount's; beyond the mount's maximum it is capped."""
    ttl = requested or SYSTEM_MAX_TTL
    if ttl > SYSTEM_MAX_TTL:
        return SYSTEM_MAX_TTL, [
            f'TTL "{format_go(ttl)}" is longer than permitted maxTTL '
            f'"{format_go(SYSTEM_MAX_TTL)}", so maxTTL is being used'
        ]
    return ttl, []


def not_supported(what: str) -> UserError:
    """A request for something outside this dev server's subset."""
    return UserError(f"{what} is not supported by the keyward dev vault")


def issuer_pem(certificate: x509.Certificate) -> str:
    """An issuing CA as API fields carry it."""
    return certificate_pem(certificate)
