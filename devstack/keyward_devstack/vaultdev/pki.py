"""The PKI secrets engine: a root CA, roles, and certificates issued under them.

A faithful subset of Vault's ``builtin/logical/pki``, enough for keyward's
``vault-pki`` issuer and its contract tests:

* ``root/generate/internal`` (and ``exported``) creates a self-signed root;
  when the mount already has one, the new issuer is added and the first stays
  the default, as in Vault 1.11+;
* ``roles/<name>`` writes (replacing the role, with Vault's defaults for what
  is not sent) and reads roles;
* ``issue/<role>`` checks the common name and every SAN against the role
  (``allowed_domains``, ``allow_subdomains``, ``allow_bare_domains``,
  ``allow_localhost``, ``allow_any_name``, ``allow_ip_sans``), generates a key
  of the role's type, sets serverAuth/clientAuth from ``server_flag`` and
  ``client_flag``, and caps the TTL at the role's ``max_ttl`` with Vault's
  warning;
* ``ca/pem`` and ``ca`` answer with the default issuer's certificate as a bare
  body, not JSON.

Not implemented: intermediates, ``sign/<role>``, CRLs and revocation, glob
domains, wildcard and email names, URI and other SANs, ``format`` other than
``pem``. Requests for them fail with a 400 (or 404 for paths) that says so.

The mount's state (issuer keys included) lives in its own file in the data
directory, ``pki-<mount uuid>.json``, written like ``state.json``: atomically
and readable by the owner only. Keying the file by the mount's UUID means a
mount disabled and enabled again at the same path starts empty, as in Vault.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyward_devstack.vaultdev import fields
from keyward_devstack.vaultdev.durations import format_go
from keyward_devstack.vaultdev.errors import bad_request, internal_error, not_found
from keyward_devstack.vaultdev.protocol import Call, Operation, Reply
from keyward_devstack.vaultdev.routing import NAME, Route, dispatch
from keyward_devstack.vaultdev.state import SecretsMount, Store, write_private

#: Vault's default (and maximum) lease TTL when neither the role nor the mount sets one.
SYSTEM_MAX_TTL = 768 * 3600
#: Vault's default ``not_before_duration``: backdating for clock skew.
NOT_BEFORE = timedelta(seconds=30)

ERR_CN_REQUIRED = (
    'the common_name field is required, or must be provided in a CSR with "use_csr_common_name" '
    'set to true, unless "require_cn" is set to false'
)

_RSA_BITS = (2048, 3072, 4096, 8192)
_EC_CURVES: dict[int, ec.EllipticCurve] = {
    224: ec.SECP224R1(),
    256: ec.SECP256R1(),
    384: ec.SECP384R1(),
    521: ec.SECP521R1(),
}
_HOSTNAME = re.compile(
    r"^(\*\.)?(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])\.?$"
)
_PRIVATE_KEY_FORMATS = frozenset({"", "der", "pem", "pkcs8"})


@dataclass
class PkiIssuer:
    """A CA this mount signs with: its certificate and key, PEM."""

    issuer_id: str
    key_id: str
    name: str
    certificate: str
    private_key: str


@dataclass
class PkiRole:
    """A role as Vault stores it, with defaults resolved (``key_bits`` 0 becomes 2048/256)."""

    allowed_domains: list[str] = field(default_factory=list)
    allow_subdomains: bool = False
    allow_bare_domains: bool = False
    allow_any_name: bool = False
    allow_localhost: bool = True
    allow_ip_sans: bool = True
    enforce_hostnames: bool = True
    server_flag: bool = True
    client_flag: bool = True
    key_type: str = "rsa"
    key_bits: int = 2048
    ttl: int = 0
    max_ttl: int = 0


@dataclass
class PkiState:
    """Everything one PKI mount stores."""

    issuers: dict[str, PkiIssuer] = field(default_factory=dict)
    default_issuer: str = ""
    roles: dict[str, PkiRole] = field(default_factory=dict)


@dataclass
class BodyReply(Reply):
    """An answer sent as a bare body instead of Vault's JSON envelope (``ca/pem``)."""

    body: bytes = b""
    content_type: str = "application/pem-file"


def state_path(data_dir: Path, mount: SecretsMount) -> Path:
    """The file one PKI mount's state is kept in."""
    return data_dir / f"pki-{mount.uuid}.json"


def load_state(path: Path) -> PkiState:
    """The mount's state, empty if it was never saved."""
    if not path.exists():
        return PkiState()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return PkiState(
            issuers={key: PkiIssuer(**value) for key, value in document["issuers"].items()},
            default_issuer=document["default_issuer"],
            roles={key: PkiRole(**value) for key, value in document["roles"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise internal_error(f"cannot read PKI state {path.name}: {exc!r}") from None


class PkiBackend:
    """The endpoints of one PKI mount."""

    def __init__(self, store: Store, mount: SecretsMount) -> None:
        self._path = state_path(store.data_dir, mount)
        self._state = load_state(self._path)

    def handle(self, call: Call) -> Reply | None:
        """Serve one request addressed to this mount."""
        read, update = Operation.READ, Operation.UPDATE
        routes = [
            Route(re.compile("root/generate/(?P<kind>internal|exported)"), {update: self._root}),
            Route(re.compile(f"roles/(?P<name>{NAME})"), {read: self._read_role,
                                                          update: self._write_role}),
            Route(re.compile(f"issue/(?P<name>{NAME})"), {update: self._issue}),
            Route(re.compile("ca(?P<pem>/pem)?"), {read: self._ca}),
        ]
        return dispatch(routes, call)

    def _save(self) -> None:
        payload = json.dumps(dataclasses.asdict(self._state), indent=1, sort_keys=True)
        write_private(self._path, payload.encode("utf-8"))

    # the CA ------------------------------------------------------------------------

    def _root(self, call: Call, match: re.Match[str]) -> Reply:
        common_name = fields.string(call.data, "common_name")
        if not common_name:
            raise bad_request(ERR_CN_REQUIRED)
        key_type, key_bits = _key_parameters(
            fields.string(call.data, "key_type", "rsa"), fields.integer(call.data, "key_bits")
        )
        ttl = fields.duration(call.data, "ttl") or SYSTEM_MAX_TTL
        now = datetime.fromtimestamp(call.now, UTC)
        key = _generate_key(key_type, key_bits)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - NOT_BEFORE)
            .not_valid_after(now + timedelta(seconds=ttl))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        issuer = PkiIssuer(
            issuer_id=str(uuid.uuid4()),
            key_id=str(uuid.uuid4()),
            name=fields.string(call.data, "issuer_name"),
            certificate=_pem(certificate),
            private_key=_key_pem(key, pkcs8=True),
        )
        self._state.issuers[issuer.issuer_id] = issuer
        if not self._state.default_issuer:
            self._state.default_issuer = issuer.issuer_id
        self._save()
        data: dict[str, Any] = {
            "certificate": issuer.certificate,
            "issuing_ca": issuer.certificate,
            "serial_number": _serial(certificate),
            "expiration": int(certificate.not_valid_after_utc.timestamp()),
            "issuer_id": issuer.issuer_id,
            "issuer_name": issuer.name,
            "key_id": issuer.key_id,
            "key_name": "",
        }
        if match["kind"] == "exported":
            data["private_key"] = _key_pem(key, pkcs8=False)
            data["private_key_type"] = key_type
        return Reply(data=data)

    def _ca(self, call: Call, match: re.Match[str]) -> Reply:
        issuer = self._state.issuers.get(self._state.default_issuer)
        if issuer is None:
            # Vault answers 204 with no body when the mount has no CA yet.
            return BodyReply(status=204)
        if match["pem"]:
            return BodyReply(body=issuer.certificate.encode("ascii"))
        der = x509.load_pem_x509_certificate(issuer.certificate.encode("ascii")).public_bytes(
            serialization.Encoding.DER
        )
        return BodyReply(body=der, content_type="application/pkix-cert")

    # roles -------------------------------------------------------------------------

    def _write_role(self, call: Call, match: re.Match[str]) -> Reply:
        data = call.data
        key_type, key_bits = _key_parameters(
            fields.string(data, "key_type", "rsa"), fields.integer(data, "key_bits")
        )
        role = PkiRole(
            allowed_domains=fields.string_list(data, "allowed_domains") or [],
            allow_subdomains=fields.boolean(data, "allow_subdomains"),
            allow_bare_domains=fields.boolean(data, "allow_bare_domains"),
            allow_any_name=fields.boolean(data, "allow_any_name"),
            allow_localhost=fields.boolean(data, "allow_localhost", True),
            allow_ip_sans=fields.boolean(data, "allow_ip_sans", True),
            enforce_hostnames=fields.boolean(data, "enforce_hostnames", True),
            server_flag=fields.boolean(data, "server_flag", True),
            client_flag=fields.boolean(data, "client_flag", True),
            key_type=key_type,
            key_bits=key_bits,
            ttl=fields.duration(data, "ttl"),
            max_ttl=fields.duration(data, "max_ttl"),
        )
        if role.max_ttl and role.ttl > role.max_ttl:
            raise bad_request('"ttl" value must be less than "max_ttl" value')
        self._state.roles[match["name"]] = role
        self._save()
        return Reply(data=_role_view(role))

    def _read_role(self, call: Call, match: re.Match[str]) -> Reply:
        role = self._state.roles.get(match["name"])
        if role is None:
            raise not_found()
        return Reply(data=_role_view(role))

    # issuing -----------------------------------------------------------------------

    def _issue(self, call: Call, match: re.Match[str]) -> Reply:
        data = call.data
        role = self._state.roles.get(match["name"])
        if role is None:
            raise bad_request(f"unknown role: {match['name']}")
        issuer = self._state.issuers.get(self._state.default_issuer)
        if issuer is None:
            raise bad_request("no default issuer currently configured")
        output_format = fields.string(data, "format", "pem")
        if output_format != "pem":
            raise bad_request(
                f'format "{output_format}" is not supported by the keyward dev vault (only pem)'
            )
        key_format = fields.string(data, "private_key_format")
        if key_format not in _PRIVATE_KEY_FORMATS:
            raise bad_request(f'invalid private_key_format "{key_format}"')
        common_name = fields.string(data, "common_name")
        if not common_name:
            raise bad_request(ERR_CN_REQUIRED)
        dns_names, ips = self._names(role, common_name, data)
        ca_certificate = x509.load_pem_x509_certificate(issuer.certificate.encode("ascii"))
        ca_key = serialization.load_pem_private_key(issuer.private_key.encode("ascii"), None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise internal_error("issuer key is of an unsupported type")
        now = datetime.fromtimestamp(call.now, UTC)
        ttl, warnings = _ttl(role, fields.duration(data, "ttl"))
        not_after = now + timedelta(seconds=ttl)
        if not_after > ca_certificate.not_valid_after_utc:
            raise bad_request(
                f"cannot satisfy request, as TTL would result in notAfter of {_go_time(not_after)} "
                "that is beyond the expiration of the CA certificate at "
                f"{_go_time(ca_certificate.not_valid_after_utc)}"
            )
        key = _generate_key(role.key_type, role.key_bits)
        leaf = _sign_leaf(key, role, common_name, dns_names=dns_names, ips=ips,
                          ca_certificate=ca_certificate, ca_key=ca_key, now=now,
                          not_after=not_after)
        return Reply(
            data={
                "certificate": _pem(leaf),
                "issuing_ca": issuer.certificate,
                "ca_chain": [issuer.certificate],
                "private_key": _key_pem(key, pkcs8=key_format == "pkcs8"),
                "private_key_type": role.key_type,
                "serial_number": _serial(leaf),
                "expiration": int(not_after.timestamp()),
            },
            warnings=warnings,
        )

    @staticmethod
    def _names(
        role: PkiRole, common_name: str, data: Any
    ) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
        """The DNS and IP SANs, in Vault's order of checks and with its error texts."""
        # Vault puts a host-name-shaped CN into the DNS SANs (exclude_cn_from_sans=false).
        dns_names = [common_name] if _HOSTNAME.match(common_name) else []
        for name in sorted(set(fields.string_list(data, "alt_names") or [])):
            if "@" in name:
                raise bad_request(
                    f"email address {name} is not supported by the keyward dev vault"
                )
            if _HOSTNAME.match(name):
                dns_names.append(name)
        if not _name_allowed(role, common_name):
            raise bad_request(f"common name {common_name} not allowed by this role")
        for name in dns_names:
            if not _name_allowed(role, name):
                raise bad_request(f"subject alternate name {name} not allowed by this role")
        ip_texts = fields.string_list(data, "ip_sans") or []
        if ip_texts and not role.allow_ip_sans:
            raise bad_request(
                "IP Subject Alternative Names are not allowed in this role, "
                f"but was provided [{' '.join(ip_texts)}]"
            )
        ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        for text in ip_texts:
            try:
                ips.append(ipaddress.ip_address(text))
            except ValueError:
                raise bad_request(f'the value "{text}" is not a valid IP address') from None
        return list(dict.fromkeys(dns_names)), list(dict.fromkeys(ips))


def _name_allowed(role: PkiRole, name: str) -> bool:
    """Vault's ``ValidateNames`` for one plain host name (no wildcard, no email)."""
    if name.startswith("*") or "@" in name:
        return False  # wildcards and emails are outside this dev server's subset
    if role.enforce_hostnames and not _HOSTNAME.match(name):
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


def _ttl(role: PkiRole, requested: int) -> tuple[int, list[str]]:
    """The certificate's TTL: requested, else the role's, capped at ``max_ttl``."""
    ttl = requested or role.ttl or SYSTEM_MAX_TTL
    max_ttl = role.max_ttl or SYSTEM_MAX_TTL
    if ttl > max_ttl:
        return max_ttl, [
            f'TTL "{format_go(ttl)}" is longer than permitted maxTTL "{format_go(max_ttl)}", '
            "so maxTTL is being used"
        ]
    return ttl, []


def _key_parameters(key_type: str, key_bits: int) -> tuple[str, int]:
    """Validate a key type and size as Vault's ``certutil.ValidateKeyTypeLength`` does."""
    if key_type == "rsa":
        bits = key_bits or 2048
        if bits not in _RSA_BITS:
            raise bad_request(f"unsupported bit length for RSA key: {bits}")
        return key_type, bits
    if key_type == "ec":
        bits = key_bits or 256
        if bits not in _EC_CURVES:
            raise bad_request(f"unsupported bit length for EC key: {bits}")
        return key_type, bits
    if key_type in ("ed25519", "any"):
        raise bad_request(f"key_type {key_type} is not supported by the keyward dev vault")
    raise bad_request(f"unknown key type {key_type}")


def _generate_key(key_type: str, key_bits: int) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(_EC_CURVES[key_bits])
    return rsa.generate_private_key(public_exponent=65537, key_size=key_bits)


def _sign_leaf(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    role: PkiRole,
    common_name: str,
    *,
    dns_names: list[str],
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
    ca_certificate: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    now: datetime,
    not_after: datetime,
) -> x509.Certificate:
    usages: list[x509.ObjectIdentifier] = []
    if role.server_flag:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if role.client_flag:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    ca_ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(now - NOT_BEFORE, ca_certificate.not_valid_before_utc))
        .not_valid_after(not_after)
        # Vault's role default key_usage: DigitalSignature, KeyAgreement, KeyEncipherment.
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ip) for ip in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )


def _role_view(role: PkiRole) -> dict[str, Any]:
    return {
        "allowed_domains": list(role.allowed_domains),
        "allow_subdomains": role.allow_subdomains,
        "allow_bare_domains": role.allow_bare_domains,
        "allow_any_name": role.allow_any_name,
        "allow_localhost": role.allow_localhost,
        "allow_ip_sans": role.allow_ip_sans,
        "allow_glob_domains": False,
        "allow_wildcard_certificates": True,
        "enforce_hostnames": role.enforce_hostnames,
        "server_flag": role.server_flag,
        "client_flag": role.client_flag,
        "code_signing_flag": False,
        "email_protection_flag": False,
        "key_type": role.key_type,
        "key_bits": role.key_bits,
        "signature_bits": 256,
        "key_usage": ["DigitalSignature", "KeyAgreement", "KeyEncipherment"],
        "ext_key_usage": [],
        "ttl": role.ttl,
        "max_ttl": role.max_ttl,
        "not_before_duration": int(NOT_BEFORE.total_seconds()),
        "issuer_ref": "default",
        "no_store": False,
        "require_cn": True,
    }


def _pem(certificate: x509.Certificate) -> str:
    # Vault's PEM fields carry no trailing newline.
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii").rstrip("\n")


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, *, pkcs8: bool) -> str:
    """PKCS#8, or the key's own format (PKCS#1 for RSA, SEC 1 for EC) as Vault's default."""
    formats = serialization.PrivateFormat
    key_format = formats.PKCS8 if pkcs8 else formats.TraditionalOpenSSL
    encoded = key.private_bytes(serialization.Encoding.PEM, key_format,
                                serialization.NoEncryption())
    return encoded.decode("ascii").rstrip("\n")


def _serial(certificate: x509.Certificate) -> str:
    """A serial number as Vault prints it: lower-case hex bytes joined by colons."""
    raw = format(certificate.serial_number, "x")
    raw = raw if len(raw) % 2 == 0 else f"0{raw}"
    return ":".join(raw[index : index + 2] for index in range(0, len(raw), 2))


def _go_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
