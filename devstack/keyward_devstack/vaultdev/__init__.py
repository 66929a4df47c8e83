"""A Vault-compatible development server for keyward, written with aiohttp.

No Vault binary can be installed where keyward is developed and tested, so
this package speaks Vault's HTTP API closely enough that hvac and other real
clients cannot tell the difference for what keyward uses: the transit
secrets engine, token auth, AppRole and Kubernetes auth, mounting engines and
health. It is the test backend and the embedded default; the contract tests
in ``tests/contract`` run unchanged against real Vault to keep it honest.

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

Modules: ``config`` (settings), ``server`` (start/stop, CLI), ``app`` (HTTP
conventions), ``listverb`` (the LIST method), ``routing``, ``protocol``,
``errors``, ``fields``, ``durations``, ``state`` (persistence), ``crypto``
(AEAD and ciphertext format), ``keyring`` (key versions), ``batch``,
``transit``, ``leases`` (TTL rules), ``tokens``, ``approle``, ``kubernetes``,
``system``.
"""

from keyward_devstack.vaultdev.app import build_app
from keyward_devstack.vaultdev.config import DevVaultConfig
from keyward_devstack.vaultdev.server import RunningDevVault, main, start

__all__ = ["DevVaultConfig", "RunningDevVault", "build_app", "main", "start"]
