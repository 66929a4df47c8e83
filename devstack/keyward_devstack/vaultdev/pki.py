"""The PKI secrets engine: CAs (roots, intermediates, imports), roles, and certificates.

A faithful subset of Vault's ``builtin/logical/pki`` (Vault 1.11+ multi-issuer
layout), enough for keyward's ``vault-pki`` issuer, for rotating a CA (a new root
or intermediate beside the old, issuing from a chosen issuer) and for hvac 2.4.0's
own PKI integration tests:

* CAs — :mod:`pki_ca`: generating roots and intermediate CSRs, signing
  intermediates and self-issued certificates, importing signed intermediates and
  bundles, listing, reading, updating, revoking and deleting issuers, the default
  issuer and key, ``config/urls`` and ``config/crl``;
* certificates — :mod:`pki_certs`: roles (with ``issuer_ref``), ``issue``, ``sign``
  and ``sign-verbatim`` (per role, or from the issuer a path names), revocation and
  CRLs, ``tidy``, and reading the CA, the CA chain, stored certificates and CRLs.

Not implemented: managed (``kms``) keys, ACME, EST/CMPv2, OCSP, delta and unified
CRLs, cross-signing (``intermediate/cross-sign``), glob domains, email, URI and
other SANs on role-checked requests, ``not_after``, ``PATCH``, and leases for
certificates (``generate_lease`` is stored but no lease is made). Requests for
them fail with a 400 (or 404 for paths) that says so.

State: :mod:`pki_store` (keys, issuers, roles and configuration in
``pki-<mount uuid>.json``; issued certificates under ``pki-<mount uuid>.certs/``).
X.509 mechanics: :mod:`pki_x509`. Role rules: :mod:`pki_roles`.
"""

from __future__ import annotations

import re

from keyward_devstack.vaultdev.pki_ca import CaHandlers
from keyward_devstack.vaultdev.pki_certs import SERIAL, CertHandlers
from keyward_devstack.vaultdev.pki_common import BodyReply
from keyward_devstack.vaultdev.pki_store import PkiStore, remove_mount_data, state_path
from keyward_devstack.vaultdev.protocol import Call, Operation, Reply
from keyward_devstack.vaultdev.routing import NAME, Route, dispatch
from keyward_devstack.vaultdev.state import SecretsMount, Store

__all__ = ["BodyReply", "PkiBackend", "remove_mount_data", "state_path"]

_REF = f"issuer/(?P<ref>{NAME})"


class PkiBackend:
    """The endpoints of one PKI mount."""

    def __init__(self, store: Store, mount: SecretsMount) -> None:
        self._store = PkiStore(store.data_dir, mount)

    def handle(self, call: Call) -> Reply | None:
        """Serve one request addressed to this mount."""
        return dispatch(self._routes(), call)

    def _routes(self) -> list[Route]:
        ca, certs = CaHandlers(self._store), CertHandlers(self._store)
        read, listing, update, delete = (Operation.READ, Operation.LIST, Operation.UPDATE,
                                         Operation.DELETE)

        def route(pattern: str, **handlers: object) -> Route:
            operations = {"read": read, "list": listing, "update": update, "delete": delete}
            return Route(re.compile(pattern),
                         {operations[name]: handler  # type: ignore[misc]
                          for name, handler in handlers.items()})

        generate = f"(?P<exported>{NAME})"
        return [
            # CAs
            route(f"(?P<verb>root/generate|issuers/generate/root|root/rotate)/{generate}",
                  update=ca.generate_root),
            route(f"(?:intermediate/generate|issuers/generate/intermediate)/{generate}",
                  update=ca.generate_intermediate),
            route("intermediate/set-signed|config/ca|issuers/import/(?:cert|bundle)",
                  update=ca.import_issuers),
            route(f"(?:root|{_REF})/sign-intermediate", update=ca.sign_intermediate),
            route(f"(?:root|{_REF})/sign-self-issued", update=ca.sign_self_issued),
            route("root", delete=ca.delete_root),
            route("root/replace", update=ca.write_config_issuers),
            route("issuers/?", list=ca.list_issuers),
            route(_REF, read=ca.read_issuer, update=ca.update_issuer, delete=ca.delete_issuer),
            route(f"{_REF}/(?P<form>json|der|pem)", read=ca.read_issuer_certificate),
            route(f"{_REF}/revoke", update=ca.revoke_issuer),
            route(f"{_REF}/crl(?P<form>/pem|/der)?", read=certs.read_issuer_crl),
            route(f"{_REF}/issue/(?P<name>{NAME})", update=certs.issue),
            route(f"{_REF}/sign/(?P<name>{NAME})", update=certs.sign),
            route(f"{_REF}/sign-verbatim(?:/(?P<name>{NAME}))?", update=certs.sign_verbatim),
            route("config/issuers", read=ca.read_config_issuers, update=ca.write_config_issuers),
            route("keys/?", list=ca.list_keys),
            route(f"key/(?P<ref>{NAME})", read=ca.read_key),
            route("config/keys", read=ca.read_config_keys, update=ca.write_config_keys),
            route("config/urls", read=ca.read_urls, update=ca.write_urls),
            route("config/crl", read=ca.read_crl_config, update=ca.write_crl_config),
            # roles and certificates
            route("roles/?", list=certs.list_roles),
            route(f"roles/(?P<name>{NAME})", read=certs.read_role, update=certs.write_role,
                  delete=certs.delete_role),
            route(f"issue/(?P<name>{NAME})", update=certs.issue),
            route(f"sign/(?P<name>{NAME})", update=certs.sign),
            route(f"sign-verbatim(?:/(?P<name>{NAME}))?", update=certs.sign_verbatim),
            route("revoke", update=certs.revoke),
            route("crl/rotate(?:-delta)?", read=certs.rotate_crl),
            route("tidy", update=certs.tidy),
            route("ca(?P<pem>/pem)?", read=certs.read_ca),
            route("(?:cert/)?ca_chain", read=certs.read_ca_chain),
            route("crl(?P<pem>/pem)?|cert/crl", read=certs.read_crl),
            route("certs/?", list=certs.list_certs),
            route("certs/revoked/?", list=certs.list_revoked),
            route(f"cert/(?P<serial>{SERIAL})(?P<raw>/raw(?P<pem>/pem)?)?",
                  read=certs.read_cert),
        ]
