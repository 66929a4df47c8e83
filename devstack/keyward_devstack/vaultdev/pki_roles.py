"""PKI roles: what ``roles/<name>`` stores, how a write is read, and the name rules.

A role write replaces the role (Vault's ``pathRoleCreate`` reads every field with
its default), so everything not sent gets Vault's default. ``issuer_ref`` names
the issuer ``issue/<role>`` and ``sign/<role>`` use (``default`` follows the
mount's default issuer); it is resolved at use, not at write, so it can name an
issuer that does not exist yet (the write then warns, as Vault does).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from keyward_devstack.vaultdev import fields
from keyward_devstack.vaultdev.durations import format_go
from keyward_devstack.vaultdev.errors import UserError
from keyward_devstack.vaultdev.pki_x509 import (
    EXT_KEY_USAGES,
    IPAddress,
    Subject,
    key_parameters,
    signature_bits,
)

#: Vault's default (and maximum) lease TTL when neither the role nor the mount sets one.
SYSTEM_MAX_TTL = 768 * 3600
#: Vault's default ``not_before_duration``: backdating for clock skew.
NOT_BEFORE_SECONDS = 30
DEFAULT_KEY_USAGE = ("DigitalSignature", "KeyAgreement", "KeyEncipherment")

HOSTNAME = re.compile(
    r"^(\*\.)?(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])\.?$"
)
_SUBJECT_FIELDS = ("ou", "organization", "country", "locality", "province", "street_address",
                   "postal_code")


@dataclass
class PkiRole:
    """A role as Vault stores it, with defaults resolved (``key_bits`` 0 becomes 2048/256)."""

    allowed_domains: list[str] = field(default_factory=list)
    allow_subdomains: bool = False
    allow_bare_domains: bool = False
    allow_any_name: bool = False
    allow_localhost: bool = True
    allow_ip_sans: bool = True
    allow_wildcard_certificates: bool = True
    enforce_hostnames: bool = True
    server_flag: bool = True
    client_flag: bool = True
    code_signing_flag: bool = False
    email_protection_flag: bool = False
    key_type: str = "rsa"
    key_bits: int = 2048
    signature_bits: int = 256
    key_usage: list[str] = field(default_factory=lambda: list(DEFAULT_KEY_USAGE))
    ext_key_usage: list[str] = field(default_factory=list)
    ext_key_usage_oids: list[str] = field(default_factory=list)
    ttl: int = 0
    max_ttl: int = 0
    not_before_duration: int = NOT_BEFORE_SECONDS
    use_csr_common_name: bool = True
    use_csr_sans: bool = True
    require_cn: bool = True
    no_store: bool = False
    generate_lease: bool = False
    basic_constraints_valid_for_non_ca: bool = False
    issuer_ref: str = "default"
    ou: list[str] = field(default_factory=list)
    organization: list[str] = field(default_factory=list)
    country: list[str] = field(default_factory=list)
    locality: list[str] = field(default_factory=list)
    province: list[str] = field(default_factory=list)
    street_address: list[str] = field(default_factory=list)
    postal_code: list[str] = field(default_factory=list)

    def subject(self, common_name: str) -> Subject:
        """The subject of a certificate issued under this role."""
        return Subject(common_name=common_name, ou=self.ou, organization=self.organization,
                       country=self.country, locality=self.locality, province=self.province,
                       street_address=self.street_address, postal_code=self.postal_code)

    def ext_key_usage_oids_all(self) -> list[x509.ObjectIdentifier]:
        """The EKU OIDs the flags, the named usages and the raw OIDs ask for."""
        names = []
        if self.server_flag:
            names.append("serverauth")
        if self.client_flag:
            names.append("clientauth")
        if self.code_signing_flag:
            names.append("codesigning")
        if self.email_protection_flag:
            names.append("emailprotection")
        names += [usage.strip().lower() for usage in self.ext_key_usage]
        oids = [EXT_KEY_USAGES[name] for name in names if name in EXT_KEY_USAGES]
        oids += [_oid(text) for text in self.ext_key_usage_oids]
        return oids


def _oid(text: str) -> x509.ObjectIdentifier:
    try:
        return x509.ObjectIdentifier(text)
    except ValueError:
        raise UserError(f"{text} is not a valid OID") from None


def role_from_request(data: Mapping[str, Any]) -> PkiRole:
    """A role from a write, every field not sent at Vault's default."""
    key_type, key_bits = key_parameters(fields.string(data, "key_type", "rsa"),
                                        fields.integer(data, "key_bits"), allow_any=True)
    lists = {name: fields.string_list(data, name) or [] for name in _SUBJECT_FIELDS}
    key_usage = fields.string_list(data, "key_usage")
    role = PkiRole(
        allowed_domains=fields.string_list(data, "allowed_domains") or [],
        allow_subdomains=fields.boolean(data, "allow_subdomains"),
        allow_bare_domains=fields.boolean(data, "allow_bare_domains"),
        allow_any_name=fields.boolean(data, "allow_any_name"),
        allow_localhost=fields.boolean(data, "allow_localhost", True),
        allow_ip_sans=fields.boolean(data, "allow_ip_sans", True),
        allow_wildcard_certificates=fields.boolean(data, "allow_wildcard_certificates", True),
        enforce_hostnames=fields.boolean(data, "enforce_hostnames", True),
        server_flag=fields.boolean(data, "server_flag", True),
        client_flag=fields.boolean(data, "client_flag", True),
        code_signing_flag=fields.boolean(data, "code_signing_flag"),
        email_protection_flag=fields.boolean(data, "email_protection_flag"),
        key_type=key_type,
        key_bits=key_bits,
        signature_bits=signature_bits(key_type, key_bits,
                                      fields.integer(data, "signature_bits")),
        key_usage=list(DEFAULT_KEY_USAGE) if key_usage is None else key_usage,
        ext_key_usage=fields.string_list(data, "ext_key_usage") or [],
        ext_key_usage_oids=fields.string_list(data, "ext_key_usage_oids") or [],
        ttl=fields.duration(data, "ttl"),
        max_ttl=fields.duration(data, "max_ttl"),
        not_before_duration=fields.duration(data, "not_before_duration", NOT_BEFORE_SECONDS),
        use_csr_common_name=fields.boolean(data, "use_csr_common_name", True),
        use_csr_sans=fields.boolean(data, "use_csr_sans", True),
        require_cn=fields.boolean(data, "require_cn", True),
        no_store=fields.boolean(data, "no_store"),
        generate_lease=fields.boolean(data, "generate_lease"),
        basic_constraints_valid_for_non_ca=fields.boolean(
            data, "basic_constraints_valid_for_non_ca"),
        issuer_ref=_issuer_ref(fields.string(data, "issuer_ref", "default")),
        **lists,
    )
    if role.max_ttl and role.ttl > role.max_ttl:
        raise UserError('"ttl" value must be less than "max_ttl" value')
    if fields.boolean(data, "allow_glob_domains"):
        raise UserError("allow_glob_domains is not supported by the keyward dev vault")
    for usage in role.ext_key_usage:
        if usage.strip().lower() not in EXT_KEY_USAGES:
            raise UserError(f"invalid ext_key_usage: {usage}")
    role.ext_key_usage_oids_all()  # refuse malformed OIDs at write time
    return role


def _issuer_ref(text: str) -> str:
    value = text.strip()
    if not value or value.lower() == "default":
        return "default"
    return value


def role_view(role: PkiRole) -> dict[str, Any]:
    """``ToResponseData``: the role as ``roles/<name>`` reads it back."""
    return {
        "ttl": role.ttl,
        "max_ttl": role.max_ttl,
        "allow_localhost": role.allow_localhost,
        "allowed_domains": list(role.allowed_domains),
        "allowed_domains_template": False,
        "allow_bare_domains": role.allow_bare_domains,
        "allow_token_displayname": False,
        "allow_subdomains": role.allow_subdomains,
        "allow_glob_domains": False,
        "allow_wildcard_certificates": role.allow_wildcard_certificates,
        "allow_any_name": role.allow_any_name,
        "allowed_uri_sans_template": False,
        "enforce_hostnames": role.enforce_hostnames,
        "allow_ip_sans": role.allow_ip_sans,
        "server_flag": role.server_flag,
        "client_flag": role.client_flag,
        "code_signing_flag": role.code_signing_flag,
        "email_protection_flag": role.email_protection_flag,
        "use_csr_common_name": role.use_csr_common_name,
        "use_csr_sans": role.use_csr_sans,
        "key_type": role.key_type,
        "key_bits": role.key_bits,
        "signature_bits": role.signature_bits,
        "use_pss": False,
        "key_usage": list(role.key_usage),
        "ext_key_usage": list(role.ext_key_usage),
        "ext_key_usage_oids": list(role.ext_key_usage_oids),
        "ou": list(role.ou),
        "organization": list(role.organization),
        "country": list(role.country),
        "locality": list(role.locality),
        "province": list(role.province),
        "street_address": list(role.street_address),
        "postal_code": list(role.postal_code),
        "no_store": role.no_store,
        "no_store_metadata": False,
        "allowed_other_sans": [],
        "allowed_serial_numbers": [],
        "allowed_user_ids": [],
        "allowed_uri_sans": [],
        "require_cn": role.require_cn,
        "cn_validations": ["email", "hostname"],
        "policy_identifiers": [],
        "basic_constraints_valid_for_non_ca": role.basic_constraints_valid_for_non_ca,
        "not_before_duration": role.not_before_duration,
        "not_after": "",
        "issuer_ref": role.issuer_ref,
        "generate_lease": role.generate_lease,
    }


def sign_verbatim_role(data: Mapping[str, Any], role: PkiRole | None) -> PkiRole:
    """``SignVerbatimRoleWithOpts``: any name, any key, the CSR's values, the role's TTLs."""
    key_usage = fields.string_list(data, "key_usage")
    entry = PkiRole(
        allow_any_name=True, allow_localhost=True, allow_ip_sans=True, enforce_hostnames=False,
        key_type="any", key_bits=0, signature_bits=0, use_csr_common_name=True,
        use_csr_sans=True, server_flag=False, client_flag=False,
        key_usage=list(DEFAULT_KEY_USAGE) if key_usage is None else key_usage,
        ext_key_usage=fields.string_list(data, "ext_key_usage") or [],
        ext_key_usage_oids=fields.string_list(data, "ext_key_usage_oids") or [],
    )
    if role is not None:
        entry.ttl = role.ttl or entry.ttl
        entry.max_ttl = role.max_ttl or entry.max_ttl
        entry.no_store = role.no_store
        entry.issuer_ref = role.issuer_ref
        if role.not_before_duration:
            entry.not_before_duration = role.not_before_duration
    return entry


def leaf_ttl(role: PkiRole, requested: int) -> tuple[int, list[str]]:
    """The certificate's TTL: requested, else the role's, capped at ``max_ttl``."""
    ttl = requested or role.ttl or SYSTEM_MAX_TTL
    max_ttl = role.max_ttl or SYSTEM_MAX_TTL
    if ttl > max_ttl:
        return max_ttl, [
            f'TTL "{format_go(ttl)}" is longer than permitted maxTTL "{format_go(max_ttl)}", '
            "so maxTTL is being used"
        ]
    return ttl, []


def requested_names(
    role: PkiRole, common_name: str, data: Mapping[str, Any], *,
    csr_dns: list[str] | None = None, csr_ips: list[IPAddress] | None = None,
    exclude_cn: bool = False,
) -> tuple[list[str], list[IPAddress]]:
    """The DNS and IP SANs of a request, checked against the role in Vault's order.

    ``csr_dns``/``csr_ips`` are the CSR's own SANs, used instead of ``alt_names`` and
    ``ip_sans`` when the role has ``use_csr_sans``.
    """
    # Vault puts a host-name-shaped CN into the DNS SANs (exclude_cn_from_sans=false).
    dns_names = [common_name] if common_name and not exclude_cn \
        and HOSTNAME.match(common_name) else []
    if csr_dns is not None:
        alt_names = list(csr_dns)
    else:
        alt_names = sorted(set(fields.string_list(data, "alt_names") or []))
    for name in alt_names:
        if "@" in name:
            raise UserError(f"email address {name} is not supported by the keyward dev vault")
        if HOSTNAME.match(name):
            dns_names.append(name)
    if common_name and not name_allowed(role, common_name):
        raise UserError(f"common name {common_name} not allowed by this role")
    for name in dns_names:
        if not name_allowed(role, name):
            raise UserError(f"subject alternate name {name} not allowed by this role")
    if csr_ips is not None:
        ips = list(csr_ips)
        ip_texts = [str(ip) for ip in ips]
    else:
        ip_texts = fields.string_list(data, "ip_sans") or []
        ips = []
        for text in ip_texts:
            try:
                ips.append(ipaddress.ip_address(text))
            except ValueError:
                raise UserError(f'the value "{text}" is not a valid IP address') from None
    if ip_texts and not role.allow_ip_sans:
        raise UserError(
            "IP Subject Alternative Names are not allowed in this role, "
            f"but was provided [{' '.join(ip_texts)}]"
        )
    return list(dict.fromkeys(dns_names)), list(dict.fromkeys(ips))


def name_allowed(role: PkiRole, name: str) -> bool:
    """Vault's ``ValidateNames`` for one plain host name (no glob, no email)."""
    if "@" in name:
        return False  # emails are outside this dev server's subset
    if name.startswith("*"):
        if not role.allow_wildcard_certificates:
            return False
        if not role.allow_any_name:
            return False  # wildcard matching against allowed_domains is not implemented
    if role.enforce_hostnames and not HOSTNAME.match(name):
        return False
    if role.allow_any_name:
        return True
    lowered = name.lower()
    if role.allow_localhost:
        if lowered in ("localhost", "localdomain"):
            return True
        if role.allow_subdomains and lowered.endswith((".localhost", ".localdomain")):
            return True
    for allowed in role.allowed_domains:
        domain = allowed.lower()
        if role.allow_bare_domains and lowered == domain:
            return True
        if role.allow_subdomains and lowered.endswith(f".{domain}"):
            return True
    return False
