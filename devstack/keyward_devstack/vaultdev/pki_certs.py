"""The leaf side of the PKI engine: roles, issuing and signing, revocation, fetching, CRLs.

Paths (relative to the mount), each answering as Vault's handler of the same name:

* ``LIST roles``, ``roles/:name`` (read, write, delete);
* ``issue/:role``, ``sign/:role``, ``sign-verbatim(/:role)`` — signed by the role's
  ``issuer_ref`` — and ``issuer/:ref/issue/:role``, ``issuer/:ref/sign/:role``,
  ``issuer/:ref/sign-verbatim(/:role)`` — signed by the issuer the path names;
* ``revoke``, ``crl/rotate``, ``crl/rotate-delta``, ``tidy``;
* ``ca``, ``ca/pem``, ``ca_chain``, ``cert/ca_chain``, ``cert/ca``, ``crl``, ``crl/pem``,
  ``cert/crl``, ``issuer/:ref/crl(/pem|/der)``, ``LIST certs``, ``LIST certs/revoked``,
  ``cert/:serial``, ``cert/:serial/raw(/pem)``.

Issued certificates are stored (``certs/``) unless the role says ``no_store``; roots
and signed intermediates are stored too, so ``LIST certs`` shows them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keyward_devstack.vaultdev import fields
from keyward_devstack.vaultdev.errors import UserError, bad_request, internal_error, not_found
from keyward_devstack.vaultdev.pki_common import (
    ERR_CN_REQUIRED,
    issuer_ref,
    moment,
    not_supported,
    output_format,
    raw,
    signing_issuer,
    urls_for,
    wants_pkcs8,
)
from keyward_devstack.vaultdev.pki_roles import (
    PkiRole,
    leaf_ttl,
    requested_names,
    role_from_request,
    role_view,
    sign_verbatim_role,
)
from keyward_devstack.vaultdev.pki_store import (
    CRL_SIGNING,
    IssuerNotFound,
    PkiIssuer,
    PkiStore,
    Revocation,
)
from keyward_devstack.vaultdev.pki_x509 import (
    PrivateKey,
    PublicKey,
    SubjectAltNames,
    Template,
    certificate_pem,
    common_name_of,
    der_b64,
    generate_key,
    go_time,
    key_bits_of,
    key_type_of,
    parse_csr,
    private_key_der_pem,
    public_key_of,
    rfc3339_nano,
    sans_of,
    self_signed,
    serial_text,
    sign,
)
from keyward_devstack.vaultdev.protocol import Call, Reply

#: Serial numbers in paths: hex digits with colons or hyphens (Vault's ``[0-9A-Fa-f-:]+``).
SERIAL = r"[0-9A-Fa-f-:]+"
#: What tidy keeps past a certificate's expiry unless told otherwise (Vault: 72h).
TIDY_SAFETY_BUFFER = 72 * 3600


class CertHandlers:
    """Handlers for roles and certificates of one mount; each saves what it changes."""

    def __init__(self, store: PkiStore) -> None:
        self._store = store
        self._state = store.state

    # roles ---------------------------------------------------------------------------

    def list_roles(self, call: Call, match: re.Match[str]) -> Reply:
        """``LIST roles``."""
        if not self._state.roles:
            raise not_found()
        return Reply(data={"keys": sorted(self._state.roles)})

    def write_role(self, call: Call, match: re.Match[str]) -> Reply:
        """``POST roles/:name``: the role replaced; warns if ``issuer_ref`` names nothing yet."""
        role = role_from_request(call.data)
        self._state.roles[match["name"]] = role
        self._store.save()
        warnings = []
        try:
            self._store.resolve_issuer(role.issuer_ref)
        except IssuerNotFound:
            if role.issuer_ref == "default":
                warnings.append("Issuing Certificate was set to default, but no default issuing "
                                "certificate (configurable at /config/issuers) is currently set")
            else:
                warnings.append(f"Issuing Certificate was set to {role.issuer_ref} but no "
                                "issuing certificate currently has that name")
        return Reply(data=role_view(role), warnings=warnings)

    def read_role(self, call: Call, match: re.Match[str]) -> Reply:
        """``GET roles/:name``."""
        role = self._state.roles.get(match["name"])
        if role is None:
            raise not_found()
        return Reply(data=role_view(role))

    def delete_role(self, call: Call, match: re.Match[str]) -> None:
        """``DELETE roles/:name``."""
        if self._state.roles.pop(match["name"], None) is not None:
            self._store.save()

    def _role(self, name: str) -> PkiRole:
        role = self._state.roles.get(name)
        if role is None:
            raise bad_request(f"unknown role: {name}")
        return role

    # issuing ---------------------------------------------------------------------------

    def issue(self, call: Call, match: re.Match[str]) -> Reply:
        """``issue/:role``: a key and a certificate for it, both made here."""
        role = self._role(match["name"])
        if role.key_type == "any":
            raise bad_request('role key type "any" not allowed for issuing certificates, only '
                              "signing")
        return self._issue_or_sign(call, role, match.groupdict().get("ref"), csr_text=None)

    def sign(self, call: Call, match: re.Match[str]) -> Reply:
        """``sign/:role``: a certificate for the caller's CSR, within the role's rules."""
        role = self._role(match["name"])
        return self._issue_or_sign(call, role, match.groupdict().get("ref"),
                                   csr_text=fields.string(call.data, "csr"))

    def sign_verbatim(self, call: Call, match: re.Match[str]) -> Reply:
        """``sign-verbatim``: the CSR's own subject and names, no role rules but its TTLs."""
        name = match.groupdict().get("name")
        role = sign_verbatim_role(call.data, self._role(name) if name else None)
        return self._issue_or_sign(call, role, match.groupdict().get("ref"),
                                   csr_text=fields.string(call.data, "csr"), verbatim=True)

    def _issue_or_sign(self, call: Call, role: PkiRole, path_ref: str | None, *,
                       csr_text: str | None, verbatim: bool = False) -> Reply:
        data = call.data
        # The legacy paths sign with the role's issuer; issuer/:ref/... with the path's.
        reference = role.issuer_ref if path_ref is None else issuer_ref(data, path_ref)
        issuer, ca, ca_key = signing_issuer(self._store, reference)
        output = output_format(data)
        pkcs8 = wants_pkcs8(data)
        csr = None if csr_text is None else parse_csr(csr_text)
        if csr is not None:
            _check_csr_key(role, public_key_of(csr))
        common_name = common_name_of(csr.subject) if csr is not None and role.use_csr_common_name \
            else fields.string(data, "common_name")
        if not common_name and role.require_cn and not verbatim:
            raise bad_request(ERR_CN_REQUIRED)
        sans = self._sans(role, common_name, data, csr, verbatim=verbatim)
        now = moment(call)
        ttl, warnings = leaf_ttl(role, fields.duration(data, "ttl"))
        not_after = now + timedelta(seconds=ttl)
        if not_after > ca.not_valid_after_utc and issuer.leaf_not_after_behavior != "permit":
            if issuer.leaf_not_after_behavior != "truncate":
                raise bad_request(
                    f"cannot satisfy request, as TTL would result in notAfter of "
                    f"{go_time(not_after)} that is beyond the expiration of the CA certificate "
                    f"at {go_time(ca.not_valid_after_utc)}")
            not_after = ca.not_valid_after_utc
        key: PrivateKey | None = None
        if csr is None:
            key = generate_key(role.key_type, role.key_bits)
            public: PublicKey = key.public_key()
        else:
            public = public_key_of(csr)
        subject = csr.subject if verbatim and csr is not None else \
            role.subject(common_name).name()
        template = Template(
            subject=subject, public_key=public,
            not_before=max(now - timedelta(seconds=role.not_before_duration),
                           ca.not_valid_before_utc),
            not_after=not_after, key_usage=role.key_usage,
            ext_key_usage=role.ext_key_usage_oids_all(), sans=sans,
            urls=urls_for(self._store, issuer),
            extra=_verbatim_extensions(csr) if verbatim and csr is not None else (),
            basic_constraints_for_leaf=role.basic_constraints_valid_for_non_ca,
        )
        certificate = sign(template, issuer=ca, signing_key=ca_key,
                           signature_bits_=role.signature_bits)
        if not role.no_store:
            self._store.store_certificate(certificate)
        result = _leaf_answer(certificate, key, issuer, ca, output=output, pkcs8=pkcs8,
                              without_roots=fields.boolean(data, "remove_roots_from_chain"))
        if csr is not None:
            if role.use_csr_common_name and fields.string(data, "common_name"):
                warnings.append('the common_name field was provided but the role is set with '
                                '"use_csr_common_name" set to true')
            if role.use_csr_sans and fields.string(data, "alt_names"):
                warnings.append('the alt_names field was provided but the role is set with '
                                '"use_csr_sans" set to true')
        return Reply(data=result, warnings=warnings)

    @staticmethod
    def _sans(role: PkiRole, common_name: str, data: Mapping[str, Any],
              csr: x509.CertificateSigningRequest | None, *, verbatim: bool) -> SubjectAltNames:
        exclude_cn = fields.boolean(data, "exclude_cn_from_sans")
        if verbatim and csr is not None:
            return sans_of(csr)
        from_csr = sans_of(csr) if csr is not None and role.use_csr_sans else None
        try:
            dns, ips = requested_names(
                role, common_name, data,
                csr_dns=list(from_csr.dns) if from_csr is not None else None,
                csr_ips=list(from_csr.ips) if from_csr is not None else None,
                exclude_cn=exclude_cn)
        except UserError as exc:
            raise bad_request(exc.message) from None
        uris = list(from_csr.uris) if from_csr is not None else \
            fields.string_list(data, "uri_sans") or []
        if uris and not verbatim:
            raise not_supported("URI SANs")
        return SubjectAltNames(dns=dns, ips=ips, uris=uris)

    # revoking -------------------------------------------------------------------------------

    def revoke(self, call: Call, match: re.Match[str]) -> Reply:
        """``POST revoke``: a stored certificate onto its issuer's CRL."""
        data = call.data
        has_serial, has_cert = fields.present(data, "serial_number"), \
            fields.present(data, "certificate")
        if not has_serial and not has_cert:
            raise bad_request("The serial number or certificate to revoke must be provided.")
        if has_serial and has_cert:
            raise bad_request("Must provide either the certificate or the serial to revoke; not "
                              "both.")
        if has_cert:
            raise not_supported("revoking by certificate")
        serial = fields.string(data, "serial_number")
        if not serial:
            raise bad_request("The serial number must be provided")
        certificate = self._store.certificate(serial)
        if certificate is None:
            raise bad_request(f"certificate with serial {serial} not found.")
        colon = serial_text(certificate.serial_number)
        for issuer in self._state.issuers.values():
            if issuer.serial_number == colon:
                raise bad_request(f"adding issuer (id: {issuer.issuer_id}) to its own CRL is not "
                                  "allowed")
        existing = self._state.revoked.get(colon)
        if existing is not None:
            answer: dict[str, Any] = {"revocation_time": existing.revocation_time,
                                      "state": "revoked"}
            if existing.revocation_time_rfc3339:
                answer["revocation_time_rfc3339"] = existing.revocation_time_rfc3339
            return Reply(data=answer)
        now = moment(call)
        if certificate.not_valid_after_utc < now + timedelta(seconds=2):
            return Reply(warnings=[f"certificate with serial {colon} already expired; refusing "
                                   "to add to CRL"])
        revocation = Revocation(int(call.now), rfc3339_nano(now),
                                self._store.issuer_of(certificate))
        self._state.revoked[colon] = revocation
        if not self._state.crl.auto_rebuild:
            self._store.rebuild_crls(call.now)
        self._store.save()
        return Reply(data={"revocation_time": revocation.revocation_time,
                           "revocation_time_rfc3339": revocation.revocation_time_rfc3339,
                           "state": "revoked"})

    def rotate_crl(self, call: Call, match: re.Match[str]) -> Reply:
        """``GET crl/rotate`` (and ``crl/rotate-delta``, a no-op here)."""
        if call.path == "crl/rotate-delta":
            warnings = [] if self._state.crl.enable_delta else [
                "requested rebuild of delta CRL when delta CRL is not enabled; this is a no-op"]
            return Reply(data={"success": True}, warnings=warnings)
        self._store.rebuild_crls(call.now)
        self._store.save()
        return Reply(data={"success": True})

    def tidy(self, call: Call, match: re.Match[str]) -> Reply:
        """``POST tidy``, run to completion before answering (Vault runs it in the background)."""
        data = call.data
        cert_store = fields.boolean(data, "tidy_cert_store")
        revoked = fields.boolean(data, "tidy_revoked_certs") or fields.boolean(
            data, "tidy_revocation_list")
        buffer = fields.duration(data, "safety_buffer", TIDY_SAFETY_BUFFER)
        if not cert_store and not revoked:
            return Reply(status=202, warnings=[
                "No targets to tidy; specify tidy_cert_store=true or tidy_revoked_certs=true to "
                "start a tidy operation."])
        horizon = moment(call) - timedelta(seconds=buffer)
        rebuild = False
        for serial in self._store.serials():
            certificate = self._store.certificate(serial)
            if certificate is None or certificate.not_valid_after_utc >= horizon:
                continue
            if serial in self._state.revoked:
                if revoked:
                    del self._state.revoked[serial]
                    self._store.delete_certificate(serial)
                    rebuild = True
            elif cert_store:
                self._store.delete_certificate(serial)
        if rebuild:
            self._store.rebuild_crls(call.now)
        self._store.save()
        return Reply(status=202, warnings=[
            "Tidy operation successfully started. Any information from the operation will be "
            "printed to Vault's server logs."])

    # fetching ------------------------------------------------------------------------------

    def _default_issuer(self) -> PkiIssuer | None:
        return self._state.issuers.get(self._state.default_issuer)

    def read_ca(self, call: Call, match: re.Match[str]) -> Reply:
        """``ca`` (DER) and ``ca/pem``: the default issuer's certificate, bare."""
        issuer = self._default_issuer()
        if issuer is None:
            return raw(b"", "")
        if match["pem"]:
            return raw(issuer.certificate.strip().encode("ascii"),
                       "application/pem-certificate-chain")
        return raw(issuer.x509().public_bytes(serialization.Encoding.DER),
                   "application/pkix-cert")

    def read_ca_chain(self, call: Call, match: re.Match[str]) -> Reply:
        """``ca_chain`` (bare) and ``cert/ca_chain`` (JSON): the default issuer's full chain."""
        issuer = self._default_issuer()
        chain = "\n".join(item.strip() for item in issuer.ca_chain) if issuer else ""
        if not call.path.startswith("cert/"):
            return raw(chain.encode("ascii"), "application/pkix-cert")
        if issuer is None:
            raise bad_request("no default issuer currently configured")
        return Reply(data={"certificate": chain, "revocation_time": 0,
                           "revocation_time_rfc3339": "", "ca_chain": chain})

    def read_crl(self, call: Call, match: re.Match[str]) -> Reply:
        """``crl`` (DER), ``crl/pem`` and ``cert/crl`` (JSON): the default issuer's CRL."""
        pem = self._crl_pem(self._state.default_issuer, call.now)
        if call.path == "cert/crl":
            return Reply(data={"certificate": pem.strip(), "revocation_time": 0,
                               "revocation_time_rfc3339": ""})
        if match["pem"]:
            return raw(pem.strip().encode("ascii"), "application/x-pem-file")
        return raw(_crl_der(pem), "application/pkix-crl")

    def read_issuer_crl(self, call: Call, match: re.Match[str]) -> Reply:
        """``issuer/:ref/crl(/pem|/der)``: one issuer's CRL."""
        reference = issuer_ref({}, match["ref"])
        try:
            issuer = self._store.resolve_issuer(reference)
        except IssuerNotFound as exc:
            raise internal_error(exc.message) from None
        pem = self._crl_pem(issuer.issuer_id, call.now)
        form = match["form"]
        if form == "/der":
            return raw(_crl_der(pem), "application/pkix-crl")
        if form == "/pem":
            return raw(pem.encode("ascii"), "application/x-pem-file")
        return Reply(data={"crl": pem})

    def _crl_pem(self, issuer_id: str, now: float) -> str:
        """The stored CRL of an issuer, built now if the mount never built one."""
        issuer = self._state.issuers.get(issuer_id)
        signs_crls = issuer is not None and issuer.key_id in self._state.keys \
            and CRL_SIGNING in issuer.usage
        if signs_crls and issuer_id not in self._state.crls:
            self._store.rebuild_crls(now)
            self._store.save()
        return self._state.crls.get(issuer_id, "")

    def list_certs(self, call: Call, match: re.Match[str]) -> Reply:
        """``LIST certs``: every stored serial."""
        serials = self._store.serials()
        if not serials:
            raise not_found()
        return Reply(data={"keys": serials})

    def list_revoked(self, call: Call, match: re.Match[str]) -> Reply:
        """``LIST certs/revoked``: the revoked serials."""
        if not self._state.revoked:
            raise not_found()
        return Reply(data={"keys": sorted(self._state.revoked,
                                          key=lambda serial: serial.replace(":", "-"))})

    def read_cert(self, call: Call, match: re.Match[str]) -> Reply | None:
        """``cert/:serial`` (JSON) and ``cert/:serial/raw(/pem)`` (bare)."""
        serial = match["serial"]
        if serial.lower() == "ca":
            return self._read_cert_ca(call, match)
        certificate = self._store.certificate(serial)
        is_raw = match.groupdict().get("raw") is not None
        if is_raw:
            if certificate is None:
                return raw(b"", "")
            if match["pem"]:
                return raw(certificate_pem(certificate).encode("ascii"),
                           "application/pem-certificate-chain")
            return raw(certificate.public_bytes(serialization.Encoding.DER),
                       "application/pkix-cert")
        if certificate is None:
            raise not_found()
        revocation = self._state.revoked.get(serial_text(certificate.serial_number))
        data: dict[str, Any] = {
            "certificate": certificate_pem(certificate),
            "revocation_time": revocation.revocation_time if revocation else 0,
            "revocation_time_rfc3339": revocation.revocation_time_rfc3339 if revocation else "",
        }
        if revocation is not None and revocation.issuer_id:
            data["issuer_id"] = revocation.issuer_id
        return Reply(data=data)

    def _read_cert_ca(self, call: Call, match: re.Match[str]) -> Reply:
        issuer = self._default_issuer()
        is_raw = match.groupdict().get("raw") is not None
        if is_raw:
            if issuer is None:
                return raw(b"", "")
            if match["pem"]:
                return raw(issuer.certificate.strip().encode("ascii"),
                           "application/pem-certificate-chain")
            return raw(issuer.x509().public_bytes(serialization.Encoding.DER),
                       "application/pkix-cert")
        if issuer is None:
            raise bad_request("no default issuer currently configured")
        return Reply(data={"certificate": issuer.certificate.strip(), "revocation_time": 0,
                           "revocation_time_rfc3339": ""})


def _check_csr_key(role: PkiRole, public: PublicKey) -> None:
    """The CSR's key against the role (``signCert``): its type, then its size."""
    actual_type, actual_bits = key_type_of(public), key_bits_of(public)
    if role.key_type not in ("any", actual_type):
        raise bad_request(f"role requires keys of type {role.key_type}")
    wanted_bits = role.key_bits or (2048 if actual_type == "rsa" else 0)
    if actual_type in ("rsa", "ec") and actual_bits < wanted_bits:
        raise bad_request(f"role requires a minimum of a {wanted_bits}-bit key, but CSR's key "
                          f"is {actual_bits} bits")
    if actual_type == "rsa" and actual_bits < 2048:
        raise bad_request(f"Vault requires a minimum of a 2048-bit key, but CSR's key is "
                          f"{actual_bits} bits")


def _verbatim_extensions(csr: x509.CertificateSigningRequest) -> list[Any]:
    """What sign-verbatim copies from the CSR: everything but what the signer decides."""
    decided = {x509.BasicConstraints.oid, x509.SubjectAlternativeName.oid, x509.KeyUsage.oid,
               x509.ExtendedKeyUsage.oid, x509.SubjectKeyIdentifier.oid,
               x509.AuthorityKeyIdentifier.oid}
    return [extension for extension in csr.extensions if extension.oid not in decided]


def _leaf_answer(certificate: x509.Certificate, key: PrivateKey | None, issuer: PkiIssuer,
                 ca: x509.Certificate, *, output: str, pkcs8: bool,
                 without_roots: bool) -> dict[str, Any]:
    """``signIssueApiResponse``: the certificate, its issuer, chain and (issue only) key."""
    chain = [x509.load_pem_x509_certificate(item.encode("ascii")) for item in issuer.ca_chain]
    if without_roots:
        chain = [item for item in chain if not self_signed(item)]
    data: dict[str, Any] = {
        "expiration": int(certificate.not_valid_after_utc.timestamp()),
        "serial_number": serial_text(certificate.serial_number),
    }
    if output == "der":
        data["certificate"] = der_b64(certificate.public_bytes(serialization.Encoding.DER))
        data["issuing_ca"] = der_b64(ca.public_bytes(serialization.Encoding.DER))
        if chain:
            data["ca_chain"] = [der_b64(item.public_bytes(serialization.Encoding.DER))
                                for item in chain]
        if key is not None:
            data["private_key"] = der_b64(private_key_der_pem(key, pkcs8=pkcs8)[0])
            data["private_key_type"] = key_type_of(key)
        return data
    cert_pem = certificate_pem(certificate)
    chain_pem = [certificate_pem(item) for item in chain]
    data["issuing_ca"] = certificate_pem(ca)
    data["certificate"] = cert_pem
    if chain_pem:
        data["ca_chain"] = chain_pem
    key_pem = ""
    if key is not None:
        key_pem = private_key_der_pem(key, pkcs8=pkcs8)[1]
        data["private_key"] = key_pem
        data["private_key_type"] = key_type_of(key)
    if output == "pem_bundle":
        data["certificate"] = "\n".join(part for part in (key_pem, cert_pem, *chain_pem) if part)
    return data


def _crl_der(pem: str) -> bytes:
    if not pem:
        return b""
    return x509.load_pem_x509_crl(pem.encode("ascii")).public_bytes(serialization.Encoding.DER)
