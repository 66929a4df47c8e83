"""What one PKI mount stores, and the issuer bookkeeping Vault does around it.

Vault 1.11+ keeps *keys* and *issuers* apart: a key is private key material, an
issuer is a CA certificate that may or may not have its key in the mount (an
imported parent has none). A mount holds any number of both; one issuer is the
*default* (``config/issuers``), used wherever a path or role says ``default``.
Importing dedupes (the same key or certificate twice is one entry), links an
issuer to the key whose public half it carries, and makes the first issuer with a
key the default. Every issuer carries a ``ca_chain``: itself, then its parents
among the mount's issuers (or its ``manual_chain``).

Storage: the mount's state (keys included) is one JSON document,
``pki-<mount uuid>.json``; issued certificates live one file each under
``pki-<mount uuid>.certs/`` so that issuing writes one small file instead of
rewriting every certificate the mount ever issued. Both are written atomically
and readable by the owner only. Keying by the mount's UUID means a mount disabled
and enabled again at the same path starts empty, as in Vault.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keyward_devstack.vaultdev.durations import DurationError, parse_seconds
from keyward_devstack.vaultdev.errors import UserError, internal_error
from keyward_devstack.vaultdev.pki_roles import PkiRole
from keyward_devstack.vaultdev.pki_x509 import (
    PrivateKey,
    build_crl,
    certificate_pem,
    key_type_of,
    load_certificate,
    load_private_key,
    normalize_serial,
    public_key_of,
    same_public_key,
    self_signed,
    serial_text,
    signature_algorithm_name,
    storage_key_pem,
    verified_by,
)
from keyward_devstack.vaultdev.routing import NAME
from keyward_devstack.vaultdev.state import SecretsMount, ensure_private_dir, write_private

#: Issuer usages in Vault's order (``IssuerUsage.Names()`` sorts by bit value).
USAGES = ("read-only", "issuing-certificates", "crl-signing", "ocsp-signing")
ISSUANCE = "issuing-certificates"
CRL_SIGNING = "crl-signing"
LEAF_NOT_AFTER_BEHAVIORS = ("err", "always_enforce_err", "truncate", "permit")
#: Vault's ``nameMatcher`` for issuer and key names (``framework.GenericNameRegex``).
_NAME_MATCHER = re.compile(NAME)
#: A serial in its storage form, as the certificate files are named.
_SERIAL_FILE = re.compile("[0-9a-f][0-9a-f-]*")


@dataclass
class PkiKey:
    """Private key material the mount holds (PKCS#8 PEM)."""

    key_id: str
    name: str
    key_type: str
    private_key: str


@dataclass
class Aia:
    """An issuer's own authority information access URLs (overriding ``config/urls``)."""

    issuing_certificates: list[str] = field(default_factory=list)
    crl_distribution_points: list[str] = field(default_factory=list)
    delta_crl_distribution_points: list[str] = field(default_factory=list)
    ocsp_servers: list[str] = field(default_factory=list)
    enable_templating: bool = False


@dataclass
class PkiIssuer:
    """A CA certificate of the mount; ``key_id`` is empty when its key is elsewhere."""

    issuer_id: str
    name: str
    key_id: str
    #: PEM with one trailing newline, as Vault stores (and reads back) issuers.
    certificate: str
    serial_number: str
    ca_chain: list[str] = field(default_factory=list)
    manual_chain: list[str] = field(default_factory=list)
    usage: list[str] = field(default_factory=lambda: list(USAGES))
    leaf_not_after_behavior: str = "err"
    revocation_signature_algorithm: str = ""
    revoked: bool = False
    revocation_time: int = 0
    revocation_time_rfc3339: str = ""
    aia: Aia | None = None

    def x509(self) -> x509.Certificate:
        """The issuer's certificate."""
        return load_certificate(self.certificate)


@dataclass
class Revocation:
    """A revoked certificate: when, and which issuer of the mount signed it."""

    revocation_time: int
    revocation_time_rfc3339: str
    issuer_id: str = ""


@dataclass
class UrlConfig:
    """``config/urls``: the mount-wide AIA URLs."""

    issuing_certificates: list[str] = field(default_factory=list)
    crl_distribution_points: list[str] = field(default_factory=list)
    ocsp_servers: list[str] = field(default_factory=list)
    enable_templating: bool = False


@dataclass
class CrlConfig:
    """``config/crl`` with Vault's defaults (durations kept as the strings sent)."""

    expiry: str = "72h"
    disable: bool = False
    ocsp_disable: bool = False
    ocsp_expiry: str = "12h"
    auto_rebuild: bool = False
    auto_rebuild_grace_period: str = "12h"
    enable_delta: bool = False
    delta_rebuild_interval: str = "15m"
    cross_cluster_revocation: bool = False
    unified_crl: bool = False
    unified_crl_on_existing_paths: bool = False


@dataclass
class PkiState:
    """Everything one PKI mount stores besides its issued certificates."""

    issuers: dict[str, PkiIssuer] = field(default_factory=dict)
    keys: dict[str, PkiKey] = field(default_factory=dict)
    roles: dict[str, PkiRole] = field(default_factory=dict)
    default_issuer: str = ""
    default_follows_latest_issuer: bool = False
    default_key: str = ""
    #: Revoked certificates by colon-separated serial.
    revoked: dict[str, Revocation] = field(default_factory=dict)
    urls: UrlConfig = field(default_factory=UrlConfig)
    crl: CrlConfig = field(default_factory=CrlConfig)
    crl_number: int = 0
    #: The last built CRL of each issuer that signs CRLs, PEM.
    crls: dict[str, str] = field(default_factory=dict)


class IssuerNotFound(UserError):
    """An issuer reference that names no issuer (or ``default`` with none set)."""


def state_path(data_dir: Path, mount: SecretsMount) -> Path:
    """The file one PKI mount's state is kept in."""
    return data_dir / f"pki-{mount.uuid}.json"


def certs_dir(data_dir: Path, mount: SecretsMount) -> Path:
    """The directory one PKI mount's issued certificates are kept in."""
    return data_dir / f"pki-{mount.uuid}.certs"


def remove_mount_data(data_dir: Path, mount: SecretsMount) -> None:
    """Forget a disabled mount: its keys, issuers and certificates."""
    state_path(data_dir, mount).unlink(missing_ok=True)
    shutil.rmtree(certs_dir(data_dir, mount), ignore_errors=True)


class PkiStore:
    """One mount's state and certificates, with Vault's issuer and key bookkeeping."""

    def __init__(self, data_dir: Path, mount: SecretsMount) -> None:
        self._path = state_path(data_dir, mount)
        self._certs = certs_dir(data_dir, mount)
        self.state = _load(self._path)

    def save(self) -> None:
        """Write the state atomically; called after every change."""
        payload = json.dumps(dataclasses.asdict(self.state), indent=1, sort_keys=True)
        write_private(self._path, payload.encode("utf-8"))

    # certificates ---------------------------------------------------------------------

    def store_certificate(self, certificate: x509.Certificate) -> None:
        """Keep an issued certificate under its serial (``certs/<serial>``)."""
        ensure_private_dir(self._certs)
        name = normalize_serial(serial_text(certificate.serial_number))
        write_private(self._certs / f"{name}.pem",
                      certificate.public_bytes(serialization.Encoding.PEM))

    def certificate(self, serial: str) -> x509.Certificate | None:
        """A stored certificate by serial (colons or hyphens), or None."""
        name = normalize_serial(serial)
        if _SERIAL_FILE.fullmatch(name) is None:
            return None  # not a serial Vault could have stored (and not a path either)
        path = self._certs / f"{name}.pem"
        try:
            return x509.load_pem_x509_certificate(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise internal_error(f"error fetching certificate {serial}: {exc}") from None

    def serials(self) -> list[str]:
        """Every stored serial, colon-separated, in Vault's storage (hyphen) order."""
        if not self._certs.is_dir():
            return []
        names = sorted(path.stem for path in self._certs.glob("*.pem"))
        return [name.replace("-", ":") for name in names]

    def delete_certificate(self, serial: str) -> None:
        """Forget a stored certificate (tidy)."""
        (self._certs / f"{normalize_serial(serial)}.pem").unlink(missing_ok=True)

    # references ---------------------------------------------------------------------

    def resolve_issuer(self, reference: str) -> PkiIssuer:
        """The issuer ``reference`` names: ``default``, an issuer ID, or an issuer name."""
        if reference.lower() == "default":
            issuer = self.state.issuers.get(self.state.default_issuer)
            if issuer is None:
                raise IssuerNotFound("no default issuer currently configured")
            return issuer
        if reference in self.state.issuers:
            return self.state.issuers[reference]
        for issuer in self.state.issuers.values():
            if issuer.name == reference:
                return issuer
        raise IssuerNotFound(f"unable to find PKI issuer for reference: {reference}")

    def resolve_key(self, reference: str) -> PkiKey:
        """The key ``reference`` names: ``default``, a key ID, or a key name."""
        if reference.lower() == "default":
            key = self.state.keys.get(self.state.default_key)
            if key is None:
                raise UserError("no default key currently configured")
            return key
        if reference in self.state.keys:
            return self.state.keys[reference]
        for key in self.state.keys.values():
            if key.name == reference:
                return key
        raise UserError(f"unable to find PKI key for reference: {reference}")

    def checked_issuer_name(self, raw: object, *, current: PkiIssuer | None = None) -> str:
        """``getIssuerName``: the new name, refused when reserved, malformed or in use."""
        if not isinstance(raw, str):
            return ""
        name = raw.strip()
        if not name:
            raise UserError("expected non-empty issuer name")
        if name.lower() == "default":
            raise UserError("reserved keyword 'default' can not be used as issuer name")
        if not _valid_name(name):
            raise UserError("issuer name contained invalid characters")
        taken = [issuer for issuer in self.state.issuers.values() if issuer.name == name]
        if taken and taken[0] is not current:
            raise UserError("issuer name already in use")
        return name

    def checked_key_name(self, raw: object) -> str:
        """``getKeyName``: the new key's name, refused when reserved, malformed or in use."""
        if not isinstance(raw, str):
            return ""
        name = raw.strip()
        if not name:
            return ""
        if name.lower() == "default":
            raise UserError("reserved keyword 'default' can not be used as key name")
        if not _valid_name(name):
            raise UserError("key name contained invalid characters")
        if any(key.name == name for key in self.state.keys.values()):
            raise UserError("key name already in use")
        return name

    # imports --------------------------------------------------------------------------

    def import_key(self, key: PrivateKey, name: str = "") -> tuple[PkiKey, bool]:
        """``importKey``: the mount's entry for ``key`` (and whether it existed already)."""
        public = key.public_key()
        for existing in self.state.keys.values():
            if same_public_key(load_private_key(existing.private_key).public_key(), public):
                return existing, True
        if name and any(entry.name == name for entry in self.state.keys.values()):
            raise UserError(f"an existing key is using the requested key name value: {name}")
        entry = PkiKey(key_id=str(uuid.uuid4()), name=name, key_type=key_type_of(key),
                       private_key=storage_key_pem(key))
        had_keys = bool(self.state.keys)
        self.state.keys[entry.key_id] = entry
        for issuer in sorted(self.state.issuers.values(), key=lambda item: item.issuer_id):
            if not issuer.key_id and same_public_key(public_key_of(issuer.x509()), public):
                issuer.key_id = entry.key_id
                if self.state.default_issuer not in self.state.issuers:
                    self.state.default_issuer = issuer.issuer_id
        if not had_keys or self.state.default_key not in self.state.keys:
            self.state.default_key = entry.key_id
        return entry, False

    def import_issuer(self, certificate: x509.Certificate, name: str = "",
                      ) -> tuple[PkiIssuer, bool]:
        """``importIssuer``: the mount's entry for a CA certificate (and if it existed)."""
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
            is_ca = constraints.value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise UserError("Refusing to import non-CA certificate")
        public = public_key_of(certificate)
        pem = certificate_pem(certificate) + "\n"
        for existing in self.state.issuers.values():
            if existing.certificate == pem:
                return existing, True
        if name and any(entry.name == name for entry in self.state.issuers.values()):
            raise UserError(f"another issuer is using the requested name: {name}")
        usage = list(USAGES)
        try:
            key_usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
            crl_sign = key_usage.crl_sign
        except x509.ExtensionNotFound:
            crl_sign = False
        if not crl_sign:
            usage.remove(CRL_SIGNING)
        key_id = next((key.key_id for key in self.state.keys.values()
                       if same_public_key(load_private_key(key.private_key).public_key(),
                                          public)), "")
        issuer = PkiIssuer(issuer_id=str(uuid.uuid4()), name=name, key_id=key_id,
                           certificate=pem, serial_number=serial_text(certificate.serial_number),
                           usage=usage)
        had_issuers = bool(self.state.issuers)
        self.state.issuers[issuer.issuer_id] = issuer
        self.rebuild_chains()
        default_set = self.state.default_issuer in self.state.issuers
        if (not had_issuers or not default_set) and key_id:
            self.state.default_issuer = issuer.issuer_id
        return issuer, False

    def record_signature_algorithm(self, issuer: PkiIssuer) -> None:
        """A freshly generated root signs its CRLs the way it signed itself (Vault does)."""
        issuer.revocation_signature_algorithm = signature_algorithm_name(issuer.x509())

    def delete_issuer(self, issuer: PkiIssuer) -> bool:
        """Remove an issuer (its key stays); True when it was the default."""
        was_default = self.state.default_issuer == issuer.issuer_id
        del self.state.issuers[issuer.issuer_id]
        self.state.crls.pop(issuer.issuer_id, None)
        if was_default:
            self.state.default_issuer = ""
        self.rebuild_chains()
        return was_default

    def delete_all(self) -> None:
        """``DELETE root``: every issuer and key goes, and with them the CRLs."""
        self.state.issuers.clear()
        self.state.keys.clear()
        self.state.crls.clear()
        self.state.default_issuer = ""
        self.state.default_key = ""

    # chains ----------------------------------------------------------------------------

    def rebuild_chains(self) -> None:
        """Every issuer's ``ca_chain``: itself, then its parents within the mount.

        A ``manual_chain`` wins; otherwise parents are found breadth first by name and
        signature, so an intermediate imported with its root reads back [int, root].
        """
        issuers = sorted(self.state.issuers.values(), key=lambda item: item.issuer_id)
        parsed = {issuer.issuer_id: issuer.x509() for issuer in issuers}
        for issuer in issuers:
            issuer.manual_chain = [ref for ref in issuer.manual_chain
                                   if ref in self.state.issuers]
            if issuer.manual_chain:
                issuer.ca_chain = [self.state.issuers[ref].certificate
                                   for ref in issuer.manual_chain]
                continue
            chain = [issuer.issuer_id]
            queue = [issuer.issuer_id]
            while queue:
                current = queue.pop(0)
                if self_signed(parsed[current]):
                    continue
                for candidate in issuers:
                    if candidate.issuer_id in chain:
                        continue
                    if verified_by(parsed[current], parsed[candidate.issuer_id]):
                        chain.append(candidate.issuer_id)
                        queue.append(candidate.issuer_id)
            issuer.ca_chain = [self.state.issuers[ref].certificate for ref in chain]

    # signing ----------------------------------------------------------------------------

    def signing_issuer(self, reference: str, usage: str
                       ) -> tuple[PkiIssuer, x509.Certificate, PrivateKey]:
        """``fetchCAInfo``: the issuer, its certificate and key, checked for ``usage``.

        Raises IssuerNotFound for a bad reference and UserError when the issuer cannot
        sign (no key in the mount, usage removed).
        """
        issuer = self.resolve_issuer(reference)
        if usage not in issuer.usage:
            raise UserError(
                f"error while attempting to use issuer {issuer.issuer_id}: requested usage "
                f"{usage} for issuer [{issuer.issuer_id}] but only had usage "
                f"{','.join(issuer.usage)}")
        key = self.state.keys.get(issuer.key_id)
        if key is None:
            raise UserError(f"unable to fetch corresponding key for issuer {issuer.issuer_id}; "
                            "unable to use this issuer for signing")
        return issuer, issuer.x509(), load_private_key(key.private_key)

    def issuer_of(self, certificate: x509.Certificate) -> str:
        """The ID of the mount's issuer that signed ``certificate``, or ``""``."""
        for issuer in sorted(self.state.issuers.values(), key=lambda item: item.issuer_id):
            if verified_by(certificate, issuer.x509()):
                return issuer.issuer_id
        return ""

    # CRLs --------------------------------------------------------------------------------

    def rebuild_crls(self, now: float) -> None:
        """Build every signing issuer's CRL afresh (``crlBuilder.rebuild``).

        Each lists the revoked certificates it signed (and revoked issuers it signed,
        never itself); the default issuer's also lists those no issuer here signed.
        A disabled CRL is an empty one.
        """
        config = self.state.crl
        try:
            expiry = parse_seconds(config.expiry)
        except DurationError:
            expiry = 72 * 3600
        this_update = datetime.fromtimestamp(int(now), UTC)
        self.state.crl_number += 1
        self.state.crls = {}
        for issuer in self.state.issuers.values():
            key = self.state.keys.get(issuer.key_id)
            if key is None or CRL_SIGNING not in issuer.usage:
                continue
            entries: list[tuple[int, datetime]] = []
            if not config.disable:
                entries = self._crl_entries(issuer)
            crl = build_crl(issuer.x509(), load_private_key(key.private_key), entries,
                            number=self.state.crl_number, this_update=this_update,
                            next_update=this_update + timedelta(seconds=expiry))
            self.state.crls[issuer.issuer_id] = crl.public_bytes(
                serialization.Encoding.PEM).decode("ascii")

    def _crl_entries(self, issuer: PkiIssuer) -> list[tuple[int, datetime]]:
        is_default = issuer.issuer_id == self.state.default_issuer
        entries: list[tuple[int, datetime]] = []
        for serial, revocation in sorted(self.state.revoked.items()):
            owner = revocation.issuer_id
            if owner == issuer.issuer_id or (is_default and owner not in self.state.issuers):
                entries.append((int(serial.replace(":", ""), 16),
                                datetime.fromtimestamp(revocation.revocation_time, UTC)))
        certificate = issuer.x509()
        for other in self.state.issuers.values():
            if other is issuer or not other.revoked:
                continue
            child = other.x509()
            if verified_by(child, certificate):
                entries.append((child.serial_number,
                                datetime.fromtimestamp(other.revocation_time, UTC)))
        return entries


def _valid_name(name: str) -> bool:
    return _NAME_MATCHER.fullmatch(name) is not None


def _load(path: Path) -> PkiState:
    """The mount's state, empty if it was never saved (older dev-server files migrate)."""
    if not path.exists():
        return PkiState()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return _state(document)
    except (OSError, ValueError, KeyError, TypeError, UserError) as exc:
        raise internal_error(f"cannot read PKI state {path.name}: {exc!r}") from None


def _state(document: dict[str, Any]) -> PkiState:
    state = PkiState(
        keys={key: PkiKey(**value) for key, value in document.get("keys", {}).items()},
        roles={key: _dataclass(PkiRole, value)
               for key, value in document.get("roles", {}).items()},
        default_issuer=document.get("default_issuer", ""),
        default_follows_latest_issuer=document.get("default_follows_latest_issuer", False),
        default_key=document.get("default_key", ""),
        revoked={key: Revocation(**value)
                 for key, value in document.get("revoked", {}).items()},
        urls=_dataclass(UrlConfig, document.get("urls", {})),
        crl=_dataclass(CrlConfig, document.get("crl", {})),
        crl_number=document.get("crl_number", 0),
        crls=dict(document.get("crls", {})),
    )
    legacy = False
    for issuer_id, value in document.get("issuers", {}).items():
        record = dict(value)
        private_key = record.pop("private_key", None)
        if private_key is not None:
            # Before multi-issuer support the dev server kept each issuer's key inline.
            legacy = True
            key = load_private_key(private_key)
            state.keys[record["key_id"]] = PkiKey(
                key_id=record["key_id"], name="", key_type=key_type_of(key),
                private_key=storage_key_pem(key))
            record["certificate"] = record["certificate"].strip() + "\n"
            record["serial_number"] = serial_text(
                load_certificate(record["certificate"]).serial_number)
        aia = record.pop("aia", None)
        issuer = _dataclass(PkiIssuer, record)
        issuer.aia = None if aia is None else _dataclass(Aia, aia)
        state.issuers[issuer_id] = issuer
    if legacy:
        if state.default_key not in state.keys and state.keys:
            state.default_key = sorted(state.keys)[0]
        for issuer in state.issuers.values():
            if not issuer.ca_chain:
                issuer.ca_chain = [issuer.certificate]
    return state


_Record = TypeVar("_Record")


def _dataclass(kind: type[_Record], value: dict[str, Any]) -> _Record:
    """A record from stored JSON, ignoring fields a later version dropped."""
    known = {item.name for item in dataclasses.fields(kind)}  # type: ignore[arg-type]
    return kind(**{name: item for name, item in value.items() if name in known})
