"""The CA side of the PKI engine: roots, intermediates, imports, issuers and mount config.

Paths (relative to the mount), each answering as Vault's handler of the same name:

* ``root/generate/:type``, ``issuers/generate/root/:type``, ``root/rotate/:type``
  (``pathCAGenerateRoot``); ``intermediate/generate/:type`` and
  ``issuers/generate/intermediate/:type`` (``pathGenerateIntermediate``), with
  ``:type`` ``internal``, ``exported`` or ``existing`` (``key_ref``);
* ``root/sign-intermediate``, ``issuer/:ref/sign-intermediate``,
  ``root/sign-self-issued``, ``issuer/:ref/sign-self-issued``;
* ``intermediate/set-signed``, ``config/ca``, ``issuers/import/{cert,bundle}``
  (``pathImportIssuers``); ``DELETE root``;
* ``LIST issuers``, ``issuer/:ref`` (read, update, delete), ``issuer/:ref/{json,pem,der}``,
  ``issuer/:ref/revoke``, ``config/issuers``, ``root/replace``;
* ``LIST keys``, ``key/:ref``, ``config/keys``; ``config/urls``; ``config/crl``.

A bad issuer reference on a read fails the way Vault's does, as an error of the
handler itself: HTTP 500, ``unable to find PKI issuer for reference: <ref>``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keyward_devstack.vaultdev import fields
from keyward_devstack.vaultdev.durations import DurationError, parse_seconds
from keyward_devstack.vaultdev.errors import UserError, bad_request, internal_error, not_found
from keyward_devstack.vaultdev.pki_common import (
    WARN_NO_AIA,
    WARN_NO_SUBJECT,
    ca_names,
    ca_subject,
    capped_ttl,
    chain_pems,
    issuer_ref,
    moment,
    not_supported,
    output_format,
    raw,
    signing_issuer,
    urls_for,
    wants_pkcs8,
)
from keyward_devstack.vaultdev.pki_store import (
    CRL_SIGNING,
    ISSUANCE,
    LEAF_NOT_AFTER_BEHAVIORS,
    USAGES,
    Aia,
    IssuerNotFound,
    PkiIssuer,
    PkiKey,
    PkiStore,
    Revocation,
)
from keyward_devstack.vaultdev.pki_x509 import (
    PrivateKey,
    Template,
    build_csr,
    certificate_pem,
    common_name_of,
    der_b64,
    generate_key,
    go_time,
    key_bits_of,
    key_parameters,
    key_type_of,
    load_private_key,
    parse_csr,
    pem_blocks,
    private_key_der_pem,
    public_key_of,
    rfc3339_nano,
    sans_of,
    serial_text,
    sign,
    signature_bits,
    verified_by,
)
from keyward_devstack.vaultdev.protocol import Call, Reply

_CA_KEY_USAGE = ("CertSign", "CRLSign")
_ERR_EXPORTED = ('the "exported" path parameter must be "internal", "existing", exported" '
                 'or "kms"')
_WARN_INTERMEDIATE_AIA = (WARN_NO_AIA + " Since this certificate is an intermediate, it might be "
                          "useful to regenerate this certificate after fixing this problem for "
                          "the root mount.")
_WARN_TRUNCATED = ("the signed intermediary CA certificate's notAfter was truncated to the "
                   "issuer's notAfter")
_WARN_DELETE_ROOT = (
    "DELETE /root deletes all keys and issuers; prefer the new DELETE /key/:key_ref and "
    "DELETE /issuer/:issuer_ref for finer granularity, unless removal of all keys and issuers "
    "is desired."
)
_SIGNATURE_ALGORITHMS = {name.lower(): name for name in (
    "SHA256WithRSA", "SHA384WithRSA", "SHA512WithRSA", "ECDSAWithSHA256", "ECDSAWithSHA384",
    "ECDSAWithSHA512", "PureEd25519")}
_URL_FIELDS = ("issuing_certificates", "crl_distribution_points", "ocsp_servers")


class CaHandlers:
    """Handlers for the CA lifecycle of one mount; each saves what it changes."""

    def __init__(self, store: PkiStore) -> None:
        self._store = store
        self._state = store.state

    # generating -----------------------------------------------------------------------

    def _key_for(self, call: Call, kind: str) -> tuple[PrivateKey, PkiKey | None, bool]:
        """The CA's key: new (``internal``/``exported``) or a stored one (``existing``)."""
        data = call.data
        if kind == "kms":
            raise not_supported("managed keys (kms)")
        if kind not in ("internal", "exported", "existing"):
            raise bad_request(_ERR_EXPORTED)
        if kind == "existing":
            if fields.present(data, "key_type") or fields.present(data, "key_bits"):
                raise bad_request("invalid parameter for the kms/existing path parameter, "
                                  "key_type nor key_bits arguments can be set in this mode")
            reference = fields.string(data, "key_ref").strip()
            if not reference:
                raise bad_request("missing argument key_ref for existing type")
            entry = self._store.resolve_key(reference)
            return load_private_key(entry.private_key), entry, False
        key_type, key_bits = key_parameters(fields.string(data, "key_type", "rsa"),
                                            fields.integer(data, "key_bits"))
        signature_bits(key_type, key_bits, fields.integer(data, "signature_bits"))
        return generate_key(key_type, key_bits), None, kind == "exported"

    def generate_root(self, call: Call, match: re.Match[str]) -> Reply:
        """``root/generate/:type``: a self-signed CA, added as an issuer of the mount."""
        data = call.data
        key, existing_key, exported = self._key_for(call, match["exported"])
        output = output_format(data)
        pkcs8 = wants_pkcs8(data)
        max_path = fields.integer(data, "max_path_length", -1)
        if max_path < -1:
            raise bad_request(f"requested max_path_length {max_path} is invalid: must be a "
                              "non-negative integer or -1 for no constraint")
        name = self._store.checked_issuer_name(data.get("issuer_name"))
        if not name and match["verb"] == "root/rotate" and not any(
                issuer.name == "next" for issuer in self._state.issuers.values()):
            name = "next"
        key_name = "" if existing_key else self._store.checked_key_name(data.get("key_name"))
        ttl, warnings = capped_ttl(fields.duration(data, "ttl"))
        now = moment(call)
        common_name = fields.string(data, "common_name")
        subject = ca_subject(data, common_name).name()
        urls = urls_for(self._store, None)
        template = Template(
            subject=subject, public_key=key.public_key(),
            not_before=now - timedelta(seconds=fields.duration(data, "not_before_duration", 30)),
            not_after=now + timedelta(seconds=ttl), is_ca=True,
            max_path_length=None if max_path < 0 else max_path, key_usage=_CA_KEY_USAGE,
            sans=ca_names(data, common_name), urls=urls,
        )
        certificate = sign(template, issuer=None, signing_key=key,
                           signature_bits_=fields.integer(data, "signature_bits"))
        response: list[str] = []
        if len(subject) == 0:
            response.append(WARN_NO_SUBJECT)
        if urls.empty():
            response.append(WARN_NO_AIA)
        entry = existing_key or self._store.import_key(key, key_name)[0]
        issuer, _ = self._store.import_issuer(certificate, name)
        self._store.record_signature_algorithm(issuer)
        self._store.store_certificate(certificate)
        if self._state.default_follows_latest_issuer:
            self._state.default_issuer = issuer.issuer_id
        self._store.rebuild_crls(call.now)
        if max_path == 0:
            response.append("Max path length of the generated certificate is zero. This "
                            "certificate cannot be used to issue intermediate CA certificates.")
        self._store.save()
        result = _bundle(certificate, key if exported else None, output, pkcs8)
        result.update(issuer_id=issuer.issuer_id, issuer_name=issuer.name,
                      key_id=entry.key_id, key_name=entry.name)
        return Reply(data=result, warnings=response + warnings)

    def generate_intermediate(self, call: Call, match: re.Match[str]) -> Reply:
        """``intermediate/generate/:type``: a key kept in the mount and a CSR to sign."""
        data = call.data
        key, existing_key, exported = self._key_for(call, match["exported"])
        output = output_format(data)
        pkcs8 = wants_pkcs8(data)
        key_name = "" if existing_key else self._store.checked_key_name(data.get("key_name"))
        common_name = fields.string(data, "common_name")
        csr = build_csr(key, ca_subject(data, common_name).name(), ca_names(data, common_name),
                        add_basic_constraints=fields.boolean(data, "add_basic_constraints"))
        warnings = [_WARN_INTERMEDIATE_AIA] if urls_for(self._store, None).empty() else []
        entry = existing_key or self._store.import_key(key, key_name)[0]
        self._store.save()
        csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii").rstrip("\n")
        result: dict[str, Any] = {}
        key_der, key_pem = private_key_der_pem(key, pkcs8=pkcs8)
        if output == "der":
            result["csr"] = der_b64(csr.public_bytes(serialization.Encoding.DER))
            if exported:
                result.update(private_key=der_b64(key_der), private_key_type=key_type_of(key))
        else:
            result["csr"] = csr_pem
            if exported:
                result.update(private_key=key_pem, private_key_type=key_type_of(key))
                if output == "pem_bundle":
                    result["csr"] = f"{key_pem}\n{csr_pem}"
        result["key_id"] = entry.key_id
        return Reply(data=result, warnings=warnings)

    # signing CAs ----------------------------------------------------------------------

    def sign_intermediate(self, call: Call, match: re.Match[str]) -> Reply:
        """``root/sign-intermediate``: a CA certificate for a CSR, from one of our issuers."""
        data = call.data
        reference = issuer_ref(data, match.groupdict().get("ref"))
        output = output_format(data, 'The "format" path parameter must be "pem", "der" or '
                                     '"pem_bundle"')
        issuer, ca, ca_key = signing_issuer(self._store, reference)
        csr = parse_csr(fields.string(data, "csr"))
        use_csr_values = fields.boolean(data, "use_csr_values")
        common_name = fields.string(data, "common_name") or common_name_of(csr.subject)
        if use_csr_values:
            subject, sans = csr.subject, sans_of(csr)
        else:
            subject, sans = ca_subject(data, common_name).name(), ca_names(data, common_name)
        ttl, warnings = capped_ttl(fields.duration(data, "ttl"))
        now = moment(call)
        not_after = now + timedelta(seconds=ttl)
        behavior = issuer.leaf_not_after_behavior
        if not fields.boolean(data, "enforce_leaf_not_after_behavior") \
                and behavior != "always_enforce_err":
            behavior = "truncate"  # Vault 1.17+: signed intermediates stay within the issuer
        not_after = _within_issuer(not_after, ca, behavior)
        template = Template(
            subject=subject, public_key=public_key_of(csr),
            not_before=now - timedelta(seconds=fields.duration(data, "not_before_duration", 30)),
            not_after=not_after, is_ca=True,
            max_path_length=_child_path_length(data, ca), key_usage=_CA_KEY_USAGE, sans=sans,
            urls=urls_for(self._store, issuer),
            extra=_csr_extensions(csr) if use_csr_values else (),
        )
        certificate = sign(template, issuer=ca, signing_key=ca_key,
                           signature_bits_=fields.integer(data, "signature_bits"))
        self._store.store_certificate(certificate)
        self._store.save()
        response: list[str] = []
        if ca.not_valid_after_utc < certificate.not_valid_after_utc:
            response.append(
                "The expiration time for the signed certificate is after the CA's expiration "
                "time. If the new certificate is not treated as a root, validation paths with "
                "the certificate past the issuing CA's expiration time will fail.")
        if len(subject) == 0:
            response.append(WARN_NO_SUBJECT)
        if template.urls.empty():
            response.append(WARN_NO_AIA)
        result = _bundle(certificate, None, output, False, issuing=ca)
        chain = [certificate_pem(certificate), *chain_pems(issuer)]
        result["ca_chain"] = chain if output != "der" else [
            der_b64(x509.load_pem_x509_certificate(item.encode()).public_bytes(
                serialization.Encoding.DER)) for item in chain]
        response += warnings
        if behavior == "truncate" and ca.not_valid_after_utc == certificate.not_valid_after_utc:
            response.append(_WARN_TRUNCATED)
        if template.max_path_length == 0:
            response.append("Max path length of the generated certificate is zero. This CA "
                            "certificate cannot be used to issue further intermediate CA "
                            "certificates.")
        return Reply(data=result, warnings=response)

    def sign_self_issued(self, call: Call, match: re.Match[str]) -> Reply:
        """``root/sign-self-issued``: re-sign a self-issued CA certificate with our issuer."""
        data = call.data
        reference = issuer_ref(data, match.groupdict().get("ref"))
        certificates = _certificates(fields.string(data, "certificate"))
        if len(certificates) != 1:
            raise bad_request(f"{len(certificates)} certificates found in PEM file, expected 1")
        given = certificates[0]
        if not _is_ca(given):
            raise bad_request("given certificate is not a CA certificate")
        if given.issuer != given.subject:
            raise bad_request("given certificate is not self-issued")
        issuer, ca, ca_key = signing_issuer(self._store, reference)
        if key_type_of(public_key_of(given)) != key_type_of(ca_key) and fields.boolean(
                data, "require_matching_certificate_algorithms"):
            raise internal_error(
                "signing certificate's public key algorithm does not match submitted "
                "certificate's, and require_matching_certificate_algorithms is true")
        kept = [extension for extension in given.extensions
                if extension.oid not in _RESIGN_REPLACED]
        template = Template(
            subject=given.subject, public_key=public_key_of(given),
            not_before=given.not_valid_before_utc, not_after=given.not_valid_after_utc,
            serial=given.serial_number, extra=kept, urls=urls_for(self._store, issuer),
        )
        resigned = sign(template, issuer=ca, signing_key=ca_key)
        return Reply(data={"certificate": certificate_pem(resigned),
                           "issuing_ca": certificate_pem(ca)})

    # importing --------------------------------------------------------------------------

    def import_issuers(self, call: Call, match: re.Match[str]) -> Reply:
        """``intermediate/set-signed``, ``config/ca``, ``issuers/import/*``."""
        path = call.path
        keys_allowed = path.endswith("bundle") or path == "config/ca"
        if path == "intermediate/set-signed":
            text, keys_allowed = fields.string(call.data, "certificate"), False
            if not text:
                raise bad_request("'pem_bundle' and 'certificate' parameters were empty")
        else:
            text = fields.string(call.data, "pem_bundle")
            if not text:
                raise bad_request("'pem_bundle' and 'certificate' parameters were empty")
        if len(text) < 75:
            raise bad_request("provided data for import was too short; perhaps a path was passed "
                              "to the API rather than the contents of a PEM file")
        blocks = pem_blocks(text)
        if not blocks or _trailing_text(text, blocks):
            raise bad_request("provided PEM block contained no data")
        certificates, keys = [], []
        for kind, der in blocks:
            if kind in ("CERTIFICATE", "X509 CERTIFICATE"):
                certificates.append(der)
            elif kind not in ("CRL", "X509 CRL", "EC PARAMS", "EC PARAMETERS"):
                keys.append((kind, der))
        if keys and not keys_allowed:
            raise bad_request("private keys found in the PEM bundle but not allowed by the "
                              "path; use /issuers/import/bundle")
        imported_keys: list[str] = []
        existing_keys: list[str] = []
        for index, (kind, der) in enumerate(keys):
            pem = _pem(kind, der)
            try:
                entry, existed = self._store.import_key(load_private_key(pem))
            except UserError as exc:
                raise bad_request(f"Error parsing key {index}: {exc.message}") from None
            (existing_keys if existed else imported_keys).append(entry.key_id)
        mapping: dict[str, str] = {}
        imported_issuers: list[str] = []
        existing_issuers: list[str] = []
        for index, der in enumerate(certificates):
            pem = _pem("CERTIFICATE", der)
            try:
                issuer, existed = self._store.import_issuer(x509.load_der_x509_certificate(der))
            except (UserError, ValueError) as exc:
                message = exc.message if isinstance(exc, UserError) else str(exc)
                raise bad_request(f"Error parsing issuer {index}: {message}\n{pem}") from None
            mapping[issuer.issuer_id] = issuer.key_id
            (existing_issuers if existed else imported_issuers).append(issuer.issuer_id)
        warnings = self._after_import(imported_issuers, mapping, call.now)
        self._store.save()
        return Reply(data={
            "mapping": mapping,
            "imported_keys": imported_keys or None,
            "imported_issuers": imported_issuers or None,
            "existing_keys": existing_keys or None,
            "existing_issuers": existing_issuers or None,
        }, warnings=warnings)

    def _after_import(self, created: list[str], mapping: Mapping[str, str],
                      now: float) -> list[str]:
        warnings: list[str] = []
        if created:
            self._store.rebuild_crls(now)
            with_keys = [issuer for issuer in created if mapping[issuer]]
            if self._state.default_follows_latest_issuer:
                if len(with_keys) == 1:
                    self._state.default_issuer = with_keys[0]
                elif len(with_keys) > 1:
                    warnings.append("Default issuer left unchanged: could not select new issuer "
                                    "automatically as multiple imported issuers had key material "
                                    "in Vault.")
        default = self._state.default_issuer
        if default and mapping.get(default, None) == "":
            warnings.append(
                "The default issuer has no key associated with it. Some operations like issuing "
                "certificates and signing CRLs will be unavailable with the requested default "
                "issuer until a key is imported or the default issuer is changed.")
        if default and len(created) > 1 and default in created \
                and sum(1 for issuer in created if mapping[issuer]) > 1:
            warnings.append("The imported bundle contained multiple certs matching keys, the "
                            "default issuer that was selected should be verified and manually "
                            "changed if incorrect.")
        if urls_for(self._store, None).empty():
            warnings.append(WARN_NO_AIA)
        return warnings

    def delete_root(self, call: Call, match: re.Match[str]) -> Reply:
        """``DELETE root``: every key and issuer of the mount (certificates stay)."""
        self._store.delete_all()
        self._store.save()
        return Reply(warnings=[_WARN_DELETE_ROOT])

    # issuers ------------------------------------------------------------------------------

    def list_issuers(self, call: Call, match: re.Match[str]) -> Reply:
        """``LIST issuers``: IDs, with name, default flag, serial and key per issuer."""
        if not self._state.issuers:
            raise not_found()
        keys = sorted(self._state.issuers)
        info = {key: {
            "issuer_name": self._state.issuers[key].name,
            "is_default": key == self._state.default_issuer,
            "serial_number": self._state.issuers[key].serial_number,
            "key_id": self._state.issuers[key].key_id,
        } for key in keys}
        return Reply(data={"keys": keys, "key_info": info})

    def _issuer(self, match: re.Match[str]) -> PkiIssuer:
        reference = issuer_ref({}, match["ref"])
        try:
            return self._store.resolve_issuer(reference)
        except IssuerNotFound as exc:
            raise internal_error(exc.message) from None

    def read_issuer(self, call: Call, match: re.Match[str]) -> Reply:
        """``GET issuer/:ref``."""
        return Reply(data=issuer_view(self._issuer(match)))

    def read_issuer_certificate(self, call: Call, match: re.Match[str]) -> Reply:
        """``issuer/:ref/{json,pem,der}``: the certificate alone (and its chain, as JSON)."""
        issuer = self._issuer(match)
        form = match["form"]
        if form == "json":
            return Reply(data={"certificate": issuer.certificate, "ca_chain": issuer.ca_chain,
                               "issuer_id": issuer.issuer_id, "issuer_name": issuer.name})
        if form == "pem":
            return raw(issuer.certificate.encode("ascii"), "application/pem-certificate-chain")
        return raw(issuer.x509().public_bytes(serialization.Encoding.DER),
                   "application/pkix-cert")

    def update_issuer(self, call: Call, match: re.Match[str]) -> Reply:
        """``POST issuer/:ref``: every updatable field, unsent ones back at their defaults."""
        issuer = self._issuer(match)
        data = call.data
        name = self._store.checked_issuer_name(data.get("issuer_name"), current=issuer) \
            if fields.present(data, "issuer_name") else ""
        behavior = fields.string(data, "leaf_not_after_behavior", "err")
        if behavior not in LEAF_NOT_AFTER_BEHAVIORS:
            raise bad_request("Unknown value for field `leaf_not_after_behavior`. Possible "
                              "values are `err`, `truncate`, and `permit`.")
        usage = _usage(fields.string_list(data, "usage"))
        algorithm = _signature_algorithm(fields.string(data, "revocation_signature_algorithm"))
        templating = fields.boolean(data, "enable_aia_url_templating")
        aia = Aia(
            issuing_certificates=_urls(data, "issuing_certificates", templating),
            crl_distribution_points=_urls(data, "crl_distribution_points", templating),
            delta_crl_distribution_points=_urls(data, "delta_crl_distribution_points",
                                                templating),
            ocsp_servers=_urls(data, "ocsp_servers", templating),
            enable_templating=templating,
        )
        if usage != issuer.usage:
            if issuer.revoked and ISSUANCE in usage:
                raise bad_request(
                    "This issuer was revoked; unable to modify its usage to include certificate "
                    "signing again. Reissue this certificate (preferably with a new key) and "
                    "modify that entry instead.")
            if CRL_SIGNING in usage and not _has_crl_sign(issuer.x509()):
                raise bad_request("This issuer's underlying certificate lacks the CRLSign "
                                  "KeyUsage value; unable to set CRLSigningUsage on this issuer "
                                  "as a result.")
        chain = self._manual_chain(issuer, fields.string_list(data, "manual_chain") or [])
        warnings = self._dereferencing(issuer.name) if name != issuer.name and issuer.name else []
        issuer.name = name
        issuer.leaf_not_after_behavior = behavior
        issuer.usage = usage
        issuer.revocation_signature_algorithm = algorithm
        has_urls = (aia.issuing_certificates or aia.crl_distribution_points
                    or aia.delta_crl_distribution_points or aia.ocsp_servers)
        issuer.aia = aia if has_urls else None
        issuer.manual_chain = chain
        self._store.rebuild_chains()
        self._store.save()
        return Reply(data=issuer_view(issuer), warnings=warnings)

    def _manual_chain(self, issuer: PkiIssuer, references: list[str]) -> list[str]:
        chain: list[str] = []
        for index, reference in enumerate(references):
            target = issuer.issuer_id if index == 0 and reference == "self" else reference
            try:
                resolved = self._store.resolve_issuer(target).issuer_id
            except IssuerNotFound as exc:
                raise internal_error(exc.message) from None
            if index == 0 and resolved != issuer.issuer_id:
                raise bad_request("expected first cert in chain to be a self-reference, but was: "
                                  f"{reference}/{resolved}")
            chain.append(resolved)
        return chain

    def _dereferencing(self, name: str) -> list[str]:
        """``addWarningOnDereferencing``: roles that still name ``name``."""
        count = sum(1 for role in self._state.roles.values() if role.issuer_ref == name)
        return [f"{count} roles reference {name}"] if count else []

    def delete_issuer(self, call: Call, match: re.Match[str]) -> Reply | None:
        """``DELETE issuer/:ref``; an unknown reference is deleted already (204)."""
        reference = issuer_ref({}, match["ref"])
        try:
            issuer = self._store.resolve_issuer(reference)
        except IssuerNotFound:
            return None
        warnings = self._dereferencing(issuer.name) if issuer.name else []
        warnings += self._dereferencing(issuer.issuer_id)
        if self._store.delete_issuer(issuer):
            warnings.append(
                f"Deleted issuer {issuer.issuer_id} (via issuer_ref {reference}); this was "
                "configured as the default issuer. Operations without an explicit issuer will "
                "not work until a new default is configured.")
            warnings += self._dereferencing("default")
        self._store.rebuild_crls(call.now)
        self._store.save()
        return Reply(warnings=warnings) if warnings else None

    def revoke_issuer(self, call: Call, match: re.Match[str]) -> Reply:
        """``issuer/:ref/revoke``: no more issuance from it; its parents' CRLs list it."""
        issuer = self._issuer(match)
        if issuer.revoked:
            return Reply(data=issuer_view(issuer))
        now = moment(call)
        issuer.revoked = True
        issuer.usage = [usage for usage in issuer.usage if usage != ISSUANCE]
        issuer.revocation_time = int(call.now)
        issuer.revocation_time_rfc3339 = rfc3339_nano(now)
        certificate = issuer.x509()
        stored = self._store.certificate(issuer.serial_number)
        if stored is not None and stored == certificate:
            self._state.revoked[issuer.serial_number] = Revocation(
                issuer.revocation_time, issuer.revocation_time_rfc3339)
        self._store.rebuild_crls(call.now)
        self._store.save()
        warnings = []
        parents = [other for other in self._state.issuers.values()
                   if verified_by(certificate, other.x509())]
        if any(other is issuer for other in parents):
            warnings.append(
                "This issuer is a self-signed (potentially root) certificate. This means it may "
                "not be considered revoked if there is not an external, cross-signed variant of "
                "this certificate. This issuer's serial number will not appear on its own CRL.")
        if not any(other is not issuer for other in parents):
            warnings.append(
                "This issuer lacks another parent issuer within the mount. This means it will "
                "not appear on any other CRLs and may not be considered revoked by clients. "
                "Consider adding this issuer to its issuer's CRL as well if it is not "
                "self-signed.")
        if self._state.default_issuer == issuer.issuer_id:
            warnings.append(
                "This issuer is currently configured as the default issuer for this mount; "
                "operations such as certificate issuance may not work until a new default "
                "issuer is selected.")
        return Reply(data=issuer_view(issuer), warnings=warnings)

    # mount configuration ----------------------------------------------------------------

    def read_config_issuers(self, call: Call, match: re.Match[str]) -> Reply:
        """``GET config/issuers``."""
        return Reply(data=self._config_issuers())

    def _config_issuers(self) -> dict[str, Any]:
        return {"default": self._state.default_issuer,
                "default_follows_latest_issuer": self._state.default_follows_latest_issuer}

    def write_config_issuers(self, call: Call, match: re.Match[str]) -> Reply:
        """``POST config/issuers`` (and ``root/replace``, whose default is ``next``)."""
        data = call.data
        fallback = "next" if call.path == "root/replace" else ""
        reference = fields.string(data, "default", fallback)
        if not reference or reference == "default":
            raise bad_request("Invalid issuer specification; must be non-empty and can't be "
                              "'default'.")
        try:
            issuer = self._store.resolve_issuer(reference)
        except IssuerNotFound as exc:
            raise bad_request(f"Error resolving issuer reference: {exc.message}") from None
        self._state.default_issuer = issuer.issuer_id
        if call.path == "config/issuers" and fields.present(data,
                                                             "default_follows_latest_issuer"):
            self._state.default_follows_latest_issuer = fields.boolean(
                data, "default_follows_latest_issuer")
        self._store.save()
        warnings = [] if issuer.key_id else [
            "This selected default issuer has no key associated with it. Some operations like "
            "issuing certificates and signing CRLs will be unavailable with the requested "
            "default issuer until a key is imported or the default issuer is changed."]
        return Reply(data=self._config_issuers(), warnings=warnings)

    def list_keys(self, call: Call, match: re.Match[str]) -> Reply:
        """``LIST keys``: key IDs with their names."""
        if not self._state.keys:
            raise not_found()
        keys = sorted(self._state.keys)
        return Reply(data={"keys": keys, "key_info": {
            key: {"key_name": self._state.keys[key].name} for key in keys}})

    def read_key(self, call: Call, match: re.Match[str]) -> Reply:
        """``GET key/:ref``: a key's ID, name and type (never the key)."""
        reference = match["ref"]
        try:
            entry = self._store.resolve_key("default" if reference.lower() == "default"
                                            else reference)
        except UserError as exc:
            raise internal_error(exc.message) from None
        key = load_private_key(entry.private_key)
        return Reply(data={"key_id": entry.key_id, "key_name": entry.name,
                           "key_type": entry.key_type, "key_bits": key_bits_of(key)})

    def read_config_keys(self, call: Call, match: re.Match[str]) -> Reply:
        """``GET config/keys``."""
        return Reply(data={"default": self._state.default_key})

    def write_config_keys(self, call: Call, match: re.Match[str]) -> Reply:
        """``POST config/keys``: the default key."""
        reference = fields.string(call.data, "default")
        if not reference or reference == "default":
            raise bad_request("Invalid key specification; must be non-empty and can't be "
                              "'default'.")
        try:
            entry = self._store.resolve_key(reference)
        except UserError as exc:
            raise bad_request(f"Error resolving issuer reference: {exc.message}") from None
        self._state.default_key = entry.key_id
        self._store.save()
        return Reply(data={"default": entry.key_id})

    def read_urls(self, call: Call, match: re.Match[str]) -> Reply:
        """``GET config/urls``."""
        return Reply(data=_urls_view(self._store))

    def write_urls(self, call: Call, match: re.Match[str]) -> Reply:
        """``POST config/urls``: only the fields sent change; URLs must parse."""
        data, config = call.data, self._state.urls
        if fields.present(data, "enable_templating"):
            config.enable_templating = fields.boolean(data, "enable_templating")
        for name in _URL_FIELDS:
            if fields.present(data, name):
                setattr(config, name, fields.string_list(data, name) or [])
        if not config.enable_templating:
            for name in _URL_FIELDS:
                bad = _bad_url(getattr(config, name))
                if bad is not None:
                    raise bad_request("invalid URL found in Authority Information Access (AIA) "
                                      f"parameter {name}: {bad}")
        self._store.save()
        return Reply(data=_urls_view(self._store))

    def read_crl_config(self, call: Call, match: re.Match[str]) -> Reply:
        """``GET config/crl``."""
        return Reply(data=_crl_view(self._store))

    def write_crl_config(self, call: Call, match: re.Match[str]) -> Reply:
        """``POST config/crl``: only the fields sent change; a toggled ``disable`` rebuilds."""
        data, config = call.data, self._state.crl
        old_disable, old_auto, old_delta = config.disable, config.auto_rebuild, config.enable_delta
        for name in ("expiry", "ocsp_expiry", "auto_rebuild_grace_period",
                     "delta_rebuild_interval"):
            if fields.present(data, name):
                value = fields.string(data, name)
                try:
                    seconds = parse_seconds(value)
                except DurationError as exc:
                    raise bad_request(f"given {name} could not be decoded: {exc}") from None
                if name == "ocsp_expiry" and seconds < 0:
                    raise bad_request(f"ocsp_expiry must be greater than or equal to 0 got: "
                                      f"{value}")
                setattr(config, name, value)
        for name in ("disable", "ocsp_disable", "auto_rebuild", "enable_delta",
                     "cross_cluster_revocation", "unified_crl", "unified_crl_on_existing_paths"):
            if fields.present(data, name):
                setattr(config, name, fields.boolean(data, name))
        expiry = parse_seconds(config.expiry)
        if config.auto_rebuild and parse_seconds(config.auto_rebuild_grace_period) >= expiry:
            raise bad_request(
                f"CRL auto-rebuilding grace period ({config.auto_rebuild_grace_period}) must be "
                f"strictly shorter than CRL expiry ({config.expiry}) value when auto-rebuilding "
                "of CRLs is enabled")
        if config.enable_delta and parse_seconds(config.delta_rebuild_interval) >= expiry:
            raise bad_request(
                f"CRL delta rebuild window ({config.delta_rebuild_interval}) must be strictly "
                f"shorter than CRL expiry ({config.expiry}) value when delta CRLs are enabled")
        if config.enable_delta and not config.auto_rebuild:
            raise bad_request("Delta CRLs cannot be enabled when auto rebuilding is disabled as "
                              "the complete CRL is always regenerated!")
        if config.cross_cluster_revocation or config.unified_crl \
                or config.unified_crl_on_existing_paths:
            raise bad_request("unified CRLs and cross-cluster revocation are Vault Enterprise "
                              "features")
        if old_disable != config.disable or (old_auto and not config.auto_rebuild) \
                or old_delta != config.enable_delta:
            self._store.rebuild_crls(call.now)
        self._store.save()
        return Reply(data=_crl_view(self._store))


_RESIGN_REPLACED = frozenset({
    x509.AuthorityKeyIdentifier.oid, x509.AuthorityInformationAccess.oid,
    x509.CRLDistributionPoints.oid, x509.SubjectKeyIdentifier.oid,
})


def issuer_view(issuer: PkiIssuer) -> dict[str, Any]:
    """``respondReadIssuer``: an issuer as ``issuer/:ref`` reads it."""
    aia = issuer.aia or Aia()
    data: dict[str, Any] = {
        "issuer_id": issuer.issuer_id,
        "issuer_name": issuer.name,
        "key_id": issuer.key_id,
        "certificate": issuer.certificate,
        "manual_chain": list(issuer.manual_chain) or None,
        "ca_chain": list(issuer.ca_chain),
        "leaf_not_after_behavior": issuer.leaf_not_after_behavior,
        "usage": ",".join(issuer.usage),
        "revocation_signature_algorithm": issuer.revocation_signature_algorithm,
        "revoked": issuer.revoked,
        "issuing_certificates": list(aia.issuing_certificates),
        "crl_distribution_points": list(aia.crl_distribution_points),
        "delta_crl_distribution_points": list(aia.delta_crl_distribution_points),
        "ocsp_servers": list(aia.ocsp_servers),
        "enable_aia_url_templating": aia.enable_templating,
    }
    if issuer.revoked:
        data["revocation_time"] = issuer.revocation_time
        data["revocation_time_rfc3339"] = issuer.revocation_time_rfc3339
    return data


def _bundle(certificate: x509.Certificate, key: PrivateKey | None, output: str, pkcs8: bool,
            *, issuing: x509.Certificate | None = None) -> dict[str, Any]:
    """A CA certificate answer in ``format`` (``pem``, ``der``, ``pem_bundle``)."""
    issuing = issuing or certificate
    cert_pem = certificate_pem(certificate)
    result: dict[str, Any] = {
        "expiration": int(certificate.not_valid_after_utc.timestamp()),
        "serial_number": _serial(certificate),
    }
    if output == "der":
        result["certificate"] = der_b64(certificate.public_bytes(serialization.Encoding.DER))
        result["issuing_ca"] = der_b64(issuing.public_bytes(serialization.Encoding.DER))
        if key is not None:
            result["private_key"] = der_b64(private_key_der_pem(key, pkcs8=pkcs8)[0])
            result["private_key_type"] = key_type_of(key)
        return result
    result["certificate"] = cert_pem
    result["issuing_ca"] = certificate_pem(issuing)
    if key is not None:
        key_pem = private_key_der_pem(key, pkcs8=pkcs8)[1]
        result["private_key"] = key_pem
        result["private_key_type"] = key_type_of(key)
        if output == "pem_bundle":
            result["certificate"] = f"{key_pem}\n{cert_pem}"
    return result


def _serial(certificate: x509.Certificate) -> str:
    return serial_text(certificate.serial_number)


def _within_issuer(not_after: datetime, ca: x509.Certificate, behavior: str) -> datetime:
    """``LeafNotAfterBehavior``: a notAfter past the issuer's is refused, cut, or kept."""
    limit = ca.not_valid_after_utc
    if not_after <= limit or behavior == "permit":
        return not_after
    if behavior == "truncate":
        return limit
    raise bad_request(f"cannot satisfy request, as TTL would result in notAfter of "
                      f"{go_time(not_after)} that is beyond the expiration of the CA "
                      f"certificate at {go_time(limit)}")


def _child_path_length(data: Mapping[str, Any], ca: x509.Certificate) -> int | None:
    """The pathLenConstraint of a CA signed by ``ca`` (RFC 5280 4.2.1.9)."""
    try:
        parent = ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except x509.ExtensionNotFound:
        parent = None
    if fields.present(data, "max_path_length"):
        requested = fields.integer(data, "max_path_length")
        if requested < -1:
            raise bad_request(f"requested max_path_length {requested} is invalid: must be a "
                              "non-negative integer or -1 for no constraint")
        if parent is not None and (requested < 0 or requested >= parent):
            raise bad_request(
                f"requested max_path_length {requested} is not allowed: the signing CA has a "
                f"pathLenConstraint of {parent}, so the intermediate's pathLenConstraint must "
                f"be a non-negative value less than {parent}")
        return None if requested < 0 else requested
    if parent is None:
        return None
    if parent == 0:
        raise bad_request("signing certificate has a max path length of zero, and cannot issue "
                          "further CA certificates")
    return parent - 1


def _csr_extensions(csr: x509.CertificateSigningRequest) -> list[Any]:
    """The CSR's own extensions for ``use_csr_values``, minus those the signer decides."""
    decided = {x509.BasicConstraints.oid, x509.SubjectAlternativeName.oid, x509.KeyUsage.oid,
               x509.SubjectKeyIdentifier.oid, x509.AuthorityKeyIdentifier.oid}
    return [extension for extension in csr.extensions if extension.oid not in decided]


def _certificates(text: str) -> list[x509.Certificate]:
    """``ParseCertificatesFromString``."""
    result = []
    for kind, der in pem_blocks(text):
        if kind != "CERTIFICATE":
            continue
        try:
            result.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise bad_request(f"error parsing certificate: {exc}") from None
    return result


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(
            x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _has_crl_sign(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.KeyUsage).value.crl_sign)
    except x509.ExtensionNotFound:
        return False


def _pem(kind: str, der: bytes) -> str:
    """A PEM block re-encoded from its DER, as Go's ``pem.EncodeToMemory`` writes it."""
    body = base64.b64encode(der).decode("ascii")
    lines = "\n".join(body[index : index + 64] for index in range(0, len(body), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n"


def _trailing_text(text: str, blocks: list[tuple[str, bytes]]) -> bool:
    """Whether non-space text follows the last PEM block (Go's decoder then fails)."""
    last = text.rfind("-----END ")
    if last < 0:
        return True
    end = text.find("-----", last + len("-----END "))
    return bool(text[end + 5:].strip()) if end >= 0 else True


def _usage(names: list[str] | None) -> list[str]:
    """``NewIssuerUsageFromNames``; ``read-only`` is always part of an issuer's usage."""
    wanted = list(USAGES) if names is None else names
    result = {"read-only"}
    for name in wanted:
        cleaned = name.strip().lower()
        if cleaned not in USAGES:
            raise bad_request(f"Unable to parse specified usages: [{' '.join(wanted)}] - valid "
                              f"values are {','.join(USAGES)}")
        result.add(cleaned)
    return [usage for usage in USAGES if usage in result]


def _signature_algorithm(value: str) -> str:
    if not value:
        return ""
    name = _SIGNATURE_ALGORITHMS.get(value.lower())
    if name is None:
        raise bad_request(f"Unknown signature algorithm value: 0 - valid values are "
                          f"{', '.join(sorted(_SIGNATURE_ALGORITHMS))}")
    return name


def _urls(data: Mapping[str, Any], name: str, templating: bool) -> list[str]:
    values = fields.string_list(data, name) or []
    bad = None if templating else _bad_url(values)
    if bad is not None:
        raise bad_request("invalid URL found in Authority Information Access (AIA) parameter "
                          f"{name}: {bad}")
    return values


def _bad_url(values: list[str]) -> str | None:
    """The first value that is not a URL (an approximation of ``govalidator.IsURL``)."""
    for value in values:
        parsed = urlparse(value if "://" in value else f"http://{value}")
        if " " in value or not parsed.netloc or not parsed.scheme:
            return value
    return None


def _urls_view(store: PkiStore) -> dict[str, Any]:
    config = store.state.urls
    return {"issuing_certificates": list(config.issuing_certificates),
            "crl_distribution_points": list(config.crl_distribution_points),
            "ocsp_servers": list(config.ocsp_servers),
            "enable_templating": config.enable_templating}


def _crl_view(store: PkiStore) -> dict[str, Any]:
    config = store.state.crl
    return {
        "expiry": config.expiry,
        "disable": config.disable,
        "ocsp_disable": config.ocsp_disable,
        "ocsp_expiry": config.ocsp_expiry,
        "auto_rebuild": config.auto_rebuild,
        "auto_rebuild_grace_period": config.auto_rebuild_grace_period,
        "enable_delta": config.enable_delta,
        "delta_rebuild_interval": config.delta_rebuild_interval,
        "cross_cluster_revocation": config.cross_cluster_revocation,
        "unified_crl": config.unified_crl,
        "unified_crl_on_existing_paths": config.unified_crl_on_existing_paths,
    }

