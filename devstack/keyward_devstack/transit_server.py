"""Run the keyward development Vault from the command line.

``python -m keyward_devstack.transit_server --port PORT --data-dir DIR
[--root-token TOKEN] [--host HOST] [--tls-cert FILE --tls-key FILE]`` serves a
Vault-compatible API with transit mounted at ``transit/``. See
:mod:`keyward_devstack.vaultdev` for what it implements and what it does not.
"""

from __future__ import annotations

import sys

from keyward_devstack.vaultdev.server import main

if __name__ == "__main__":
    sys.exit(main())
