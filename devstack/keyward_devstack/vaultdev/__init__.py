"""A Vault-compatible development server for keyward, written with aiohttp.

No Vault binary can be installed where keyward is developed and tested, so
this package speaks Vault's HTTP API closely enough that hvac and other real
clients cannot tell the difference for what keyward uses: the transit and PKI
secrets engines (PKI with several issuers per mount, intermediates and CA
chains, so a CA can be rotated), token auth, AppRole and Kubernetes auth,
mounting engines and health. It is the test backend and the embedded default;
the contract tests in ``tests/contract`` run unchanged against real Vault to
keep it honest, and hvac's own PKI integration tests run against it
(``tests/contract/test_hvac_pki_suite.py``).

Known, deliberate limits (it is a development server):

* **No ACL policy engine.** Any valid, unexpired token may call any endpoint;
  policies are recorded and reported, never enforced.
* **Key material is stored base64-encoded in plain JSON** in the data
  directory, protected only by file permissions (``0700``/``0600``).
* Kubernetes logins are verified with the configured ``pem_keys`` only; there
  is no TokenReview call, and without ``pem_keys`` every login is refused.
* Transit supports the AEAD key types only; no signing, HMAC, export, backup
  or convergent encryption. No namespaces, leases, response wrapping or
  audit devices.
* PKI: no managed (kms) keys, ACME, EST, OCSP, delta or unified CRLs,
  cross-signing, glob domains, or email/URI SANs on role-checked requests; CA
  and CRL keys are plain PEM in the mount's state file (see ``pki``).

Modules: ``config`` (settings), ``server`` (start/stop, CLI), ``app`` (HTTP
conventions), ``listverb`` (the LIST method), ``routing``, ``protocol``,
``errors``, ``fields``, ``durations``, ``state`` (persistence), ``crypto``
(AEAD and ciphertext format), ``keyring`` (key versions), ``batch``,
``transit``, ``leases`` (TTL rules), ``tokens``, ``approle``, ``kubernetes``,
``system``, and the PKI engine: ``pki`` (routes), ``pki_ca`` (CAs, issuers, mount
config), ``pki_certs`` (roles, issuing, revocation, reads), ``pki_roles``,
``pki_store`` (keys, issuers, chains, CRLs, storage), ``pki_x509`` and
``pki_common``.
"""

from keyward_devstack.vaultdev.app import build_app
from keyward_devstack.vaultdev.config import DevVaultConfig
from keyward_devstack.vaultdev.server import RunningDevVault, main, start

__all__ = ["DevVaultConfig", "RunningDevVault", "build_app", "main", "start"]
