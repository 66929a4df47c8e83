"""Which hosts are this machine, and when settings may send credentials over plain http.

:func:`is_loopback_host` decides for the settings (Vault's address, the JWKS URL, the codec
server's and the dev stack's listening host) and for the codec server, which checks Host
headers with it; :func:`insecure_http` is the one rule the Vault and codec server sections
share about plain ``http://``.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse, urlsplit

from keyward.config_errors import problem


def is_loopback_host(host: str, *, with_port: bool = False) -> bool:
    """``host`` names this machine only: ``localhost``, 127.0.0.0/8 or ``::1``.

    With ``with_port`` it is a Host header (``[::1]:8234``, ``localhost:8234``); a
    malformed port raises ValueError. Anything else, including a name that merely
    starts like one (``127.0.0.1.evil.example``), is not loopback.
    """
    if any(char in host for char in "/?#@\\ \t"):
        return False
    if with_port:
        parts = urlsplit(f"//{host}")
        if parts.port == 0:  # reading .port raises ValueError for a malformed one
            return False
        name = parts.hostname or ""
    else:
        name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    name = name.lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def insecure_http(setting: str, url: str | None, allowed: bool, allow_setting: str) -> None:
    """Plain http:// only to this machine, unless the operator said otherwise in so many words.

    A Vault token or the JWKS that decides who may decrypt must not cross a network
    unauthenticated: anyone on the path could read the token or swap the keys.
    """
    if not url or allowed:
        return
    parsed = urlparse(url)
    if parsed.scheme == "http" and not is_loopback_host(parsed.hostname or ""):
        raise problem(f"plain http:// to {parsed.hostname} sends credentials "
                      "unencrypted and unauthenticated; use https://, or set "
                      f"{allow_setting} = true if the network path is trusted", at=setting)
