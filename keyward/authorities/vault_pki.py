"""The ``vault-pki`` backend: the issuers of one Vault PKI mount (Vault 1.11+ multi-issuer).

The active CA is the mount's default issuer: ``<mount>/issue/<role>`` signs with it for
every role whose ``issuer_ref`` is ``default`` (Vault's own default). The successor is one
more issuer in the same mount, made as the settings say:

* a root: ``POST <mount>/issuers/generate/root/internal`` (key and issuer named at once);
* an intermediate under ``vault_pki_parent_mount``: ``<mount>/intermediate/generate/
  internal`` (a named key and a CSR), ``<parent>/root/sign-intermediate`` (the parent's
  default issuer signs it), ``<mount>/intermediate/set-signed`` (the certificate and its
  chain), then the new issuer is named.

Reruns find what an earlier attempt made instead of making another: the successor's name
(``<CA name>-<UTC time of the first attempt>``) is written to the state directory *before*
anything is made, its key and issuer carry that name, and each step looks for its result
first (an issuer by name; for an intermediate, the key by name, then an issuer holding that
key, then a CSR for that same key). Activating sets the mount's default issuer
(``<mount>/config/issuers``); the old issuer and its key stay in the mount (never deleted,
and still able to sign a CRL).

Refused, before anything is changed: a mount with ``default_follows_latest_issuer`` (Vault
would switch issuance the moment the successor exists, before any bundle holds it) and a
leaf whose role pins ``issuer_ref`` to an issuer (issuance would not follow the default).

Names that reach a URL are the settings' mounts (held to :func:`check_mount` at load) and
issuer names held to Vault's name rule, quoted as path segments.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import hvac
from cryptography import x509

from keyward.authorities.base import CaRotationError
from keyward.authorities.state import RotationState
from keyward.config import CertificateSettings, VaultPkiIssuerSettings
from keyward.config.authorities import CertificateAuthoritySettings
from keyward.log import get_logger
from keyward.vault.errors import VaultError, VaultNotFound, vault_errors
from keyward.vault.names import check_key_name, check_mount, segment

#: The state file naming the successor (see the module docstring).
NEXT_ISSUER: Final = "vault-pki-next-issuer"
#: How much shorter than lifetime_days a successor may live before keyward says so.
_TTL_SLACK: Final = timedelta(days=1)
_KEY_PARAMETERS: Final = {"ec-p256": ("ec", 256), "rsa-2048": ("rsa", 2048),
                          "rsa-4096": ("rsa", 4096)}


class VaultPkiCaBackend:
    """Implements :class:`keyward.authorities.base.CaBackend` for a Vault PKI mount."""

    def __init__(self, name: str, ca: CertificateAuthoritySettings,
                 certificates: dict[str, CertificateSettings], vault: hvac.Client) -> None:
        if ca.vault_pki_mount is None:  # the settings refuse this; kept for the type checker
            raise CaRotationError(f"certificate authority {name!r}: no vault_pki_mount")
        self._name = name
        self._ca = ca
        self._mount = check_mount(ca.vault_pki_mount)
        self._parent = check_mount(ca.vault_pki_parent_mount) \
            if ca.vault_pki_parent_mount is not None else None
        self._certificates = certificates
        self._vault = vault
        self._state = RotationState(ca.state_directory)

    @property
    def where(self) -> str:
        return f"Vault PKI mount {self._mount}"

    def __repr__(self) -> str:
        return f"VaultPkiCaBackend(mount={self._mount!r}, parent={self._parent!r})"

    # -- CaBackend ---------------------------------------------------------------------------

    def active(self) -> x509.Certificate:
        data = self._request("get", "issuer/default", "reading the default issuer")
        return _certificate(data, f"{self._mount}/issuer/default")

    def staged(self) -> x509.Certificate | None:
        name = self._state.read_text(NEXT_ISSUER)
        if name is None:
            return None
        found = self._issuer_named(name)
        return self._issuer_certificate(found) if found is not None else None

    def stage(self, common_name: str) -> x509.Certificate:
        self._check_issuance_follows_default()
        name = self._successor_name()
        found = self._issuer_named(name)
        if found is None:
            found = self._make_root(name, common_name) if self._parent is None \
                else self._make_intermediate(name, common_name)
        successor = self._issuer_certificate(found)
        wanted = datetime.now(UTC) + timedelta(days=self._ca.lifetime_days) - _TTL_SLACK
        if successor.not_valid_after_utc < wanted:
            # Vault caps a CA's TTL at the mount's max_lease_ttl (32 days unless tuned), and
            # an intermediate at its parent's notAfter, with only a warning in the answer.
            get_logger("keyward.authorities.vault_pki", mount=self._mount).warning(
                "the successor CA lives shorter than lifetime_days",
                not_after=successor.not_valid_after_utc.isoformat(),
                lifetime_days=self._ca.lifetime_days,
                hint=f"vault secrets tune -max-lease-ttl=<hours>h {self._mount}")
        return successor

    def switch(self) -> x509.Certificate:
        name = self._state.read_text(NEXT_ISSUER)
        found = self._issuer_named(name) if name is not None else None
        if found is None:
            raise CaRotationError(f"{self.where}: no successor is staged")
        self._check_issuance_follows_default()
        self._request("post", "config/issuers", "making the successor the default issuer",
                      json={"default": found})
        return self._issuer_certificate(found)

    def settle(self) -> None:
        self._state.path(NEXT_ISSUER).unlink(missing_ok=True)

    def leaves(self) -> dict[str, CertificateSettings]:
        """The ``vault-pki`` certificates on this mount."""
        return {name: cert for name, cert in sorted(self._certificates.items())
                if isinstance(cert.issuer, VaultPkiIssuerSettings)
                and cert.issuer.vault_pki_mount == self._mount}

    # -- making the successor ----------------------------------------------------------------

    def _successor_name(self) -> str:
        """The name this rotation's successor has, chosen once and kept in the state."""
        name = self._state.read_text(NEXT_ISSUER)
        if name is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            name = f"{self._name}-{stamp}"
            try:
                check_key_name(name, what="PKI issuer name")
            except ValueError as exc:
                raise CaRotationError(f"certificate authority {self._name!r}: its name makes "
                                      f"no Vault issuer name ({exc}); rename the "
                                      "[certificate_authorities] table") from None
            self._state.write_text(NEXT_ISSUER, name)
        return name

    def _ca_parameters(self, common_name: str) -> dict[str, Any]:
        key_type, key_bits = _KEY_PARAMETERS[self._ca.key_type]
        return {"common_name": common_name, "key_type": key_type, "key_bits": key_bits,
                "ttl": f"{int(self._ca.lifetime_days * 86400)}s"}

    def _make_root(self, name: str, common_name: str) -> str:
        data = self._request("post", "issuers/generate/root/internal",
                             "generating the successor root",
                             json={**self._ca_parameters(common_name), "issuer_name": name,
                                   "key_name": name})
        issuer = data.get("issuer_id")
        if not isinstance(issuer, str) or not issuer:
            raise CaRotationError(f"{self.where}: generating a root answered without an "
                                  "issuer_id")
        return issuer

    def _make_intermediate(self, name: str, common_name: str) -> str:
        parameters = self._ca_parameters(common_name)
        key_id = self._key_named(name)
        csr: str | None = None
        if key_id is None:
            made = self._request("post", "intermediate/generate/internal",
                                 "generating the successor's key and CSR",
                                 json={**parameters, "key_name": name})
            key_id, csr = made.get("key_id"), made.get("csr")
        elif (adopted := self._issuer_with_key(key_id)) is not None:
            # An earlier attempt imported the signed certificate but did not name it.
            return self._name_issuer(adopted, name)
        if csr is None:
            made = self._request("post", "intermediate/generate/existing",
                                 "a CSR for the successor's key",
                                 json={"common_name": common_name, "key_ref": name})
            csr = made.get("csr")
        if not isinstance(csr, str) or not isinstance(key_id, str):
            raise CaRotationError(f"{self.where}: generating the intermediate answered "
                                  "without csr or key_id")
        signed = self._request("post", "root/sign-intermediate",
                               "the parent signing the successor",
                               json={"csr": csr, "common_name": common_name, "format": "pem",
                                     "ttl": parameters["ttl"]}, mount=self._parent)
        certificate, rest = signed.get("certificate"), signed.get("ca_chain") or []
        if not isinstance(certificate, str) or not isinstance(rest, list):
            raise CaRotationError(f"{self._parent}/root/sign-intermediate answered without "
                                  "a certificate")
        # The successor first, then the parent's chain (Vault's ca_chain may repeat it).
        chain = [certificate.strip()] + [str(item).strip() for item in rest
                                         if str(item).strip() != certificate.strip()]
        self._request("post", "intermediate/set-signed", "importing the signed successor",
                      json={"certificate": "\n".join(chain)})
        issuer = self._issuer_with_key(key_id)
        if issuer is None:
            raise CaRotationError(f"{self.where}: the signed successor is not an issuer of "
                                  "the mount after set-signed")
        return self._name_issuer(issuer, name)

    def _name_issuer(self, issuer: str, name: str) -> str:
        self._request("post", f"issuer/{segment(issuer)}", "naming the successor issuer",
                      json={"issuer_name": name})
        return issuer

    # -- reading the mount -------------------------------------------------------------------

    def _issuers(self) -> dict[str, Mapping[str, Any]]:
        try:
            data = self._request("list", "issuers", "listing the issuers")
        except CaRotationError as exc:
            if isinstance(exc.__cause__, VaultNotFound):
                return {}  # Vault answers a LIST with nothing to list by 404
            raise
        info = data.get("key_info")
        return {str(k): v for k, v in info.items() if isinstance(v, Mapping)} \
            if isinstance(info, Mapping) else {}

    def _issuer_named(self, name: str) -> str | None:
        return next((issuer for issuer, info in self._issuers().items()
                     if info.get("issuer_name") == name), None)

    def _issuer_with_key(self, key_id: str) -> str | None:
        for issuer, info in self._issuers().items():
            held = info.get("key_id")
            if held is None:  # a Vault whose LIST answer leaves key_id out: read the issuer
                held = self._request("get", f"issuer/{segment(issuer)}",
                                     "reading an issuer's key").get("key_id")
            if held == key_id:
                return issuer
        return None

    def _key_named(self, name: str) -> str | None:
        try:
            data = self._request("list", "keys", "listing the keys")
        except CaRotationError as exc:
            if isinstance(exc.__cause__, VaultNotFound):
                return None
            raise
        info = data.get("key_info")
        if not isinstance(info, Mapping):
            return None
        return next((str(key) for key, value in info.items()
                     if isinstance(value, Mapping) and value.get("key_name") == name), None)

    def _issuer_certificate(self, issuer: str) -> x509.Certificate:
        where = f"issuer/{segment(issuer)}"
        return _certificate(self._request("get", where, "reading the successor issuer"),
                            f"{self._mount}/{where}")

    def _check_issuance_follows_default(self) -> None:
        config = self._request("get", "config/issuers", "reading the issuer configuration")
        if config.get("default_follows_latest_issuer"):
            raise CaRotationError(
                f"{self.where} has default_follows_latest_issuer = true: Vault would issue "
                "from the successor as soon as it exists, before the trust bundles hold it; "
                f"set it to false (vault write {self._mount}/config/issuers "
                "default_follows_latest_issuer=false)")
        for leaf, cert in self.leaves().items():
            if not isinstance(cert.issuer, VaultPkiIssuerSettings):
                continue
            role = cert.issuer.vault_pki_role
            check_key_name(role, what="PKI role name")
            data = self._request("get", f"roles/{segment(role)}", f"reading role {role!r}")
            pinned = data.get("issuer_ref") or "default"
            if pinned != "default":
                raise CaRotationError(
                    f"{self.where}: role {role!r} (certificate {leaf!r}) issues from issuer "
                    f"{pinned!r}, not the mount's default, so issuance would not follow the "
                    f"rotation; set issuer_ref=default on {self._mount}/roles/{role}")

    def _request(self, method: str, path: str, action: str, *,
                 json: Mapping[str, Any] | None = None,
                 mount: str | None = None) -> Mapping[str, Any]:
        """One call to ``<mount>/<path>``; Vault's refusals as :class:`CaRotationError`
        (retryable and typed as the Vault error is), the answer's ``data``."""
        url = f"/v1/{mount or self._mount}/{path}"
        try:
            with vault_errors(f"PKI {action} ({mount or self._mount}/{path})"):
                adapter = self._vault.adapter
                if method == "get":
                    response = adapter.get(url)
                elif method == "list":
                    response = adapter.list(url)
                else:
                    response = adapter.post(url, json=dict(json or {}))
        except VaultError as exc:
            # Vault's own failure type (VaultForbidden, VaultUnavailable…): what alerts match.
            raise CaRotationError(f"{self.where}: {exc}", retryable=exc.retryable,
                                  failure_type=exc.failure_type) from exc
        data = response.get("data") if isinstance(response, Mapping) else None
        return data if isinstance(data, Mapping) else {}


def _certificate(data: Mapping[str, Any], where: str) -> x509.Certificate:
    text = data.get("certificate")
    try:
        return x509.load_pem_x509_certificate(str(text).strip().encode())
    except ValueError:
        raise CaRotationError(f"{where} answered without a readable certificate") from None
