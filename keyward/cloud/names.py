"""Temporal Cloud's naming rule for namespaces, and what a codec endpoint may be: both
checked before a value reaches any call.

A Cloud namespace is named ``<name>.<account-id>`` (``orders.a1b2c``): the name 2-39
characters of lowercase letters, digits and hyphens, beginning with a letter and ending with
a letter or digit (Temporal Cloud's documented rule); the account id lowercase letters and
digits. A name from an activity input or a command line is held to that rule before any Ops
API request, so nothing else (a path, a second namespace, a prefix) ever reaches one.

A codec endpoint is where the Web UI sends payloads (and, with ``pass_access_token``, the
signed-in user's access token): ``https://`` only, a host, no credentials in the URL.

Standard library, ``keyward.errors`` and the failure names only: ``keyward.config.cloud``
checks ``cloud.namespaces`` and ``cloud.codec_endpoints`` with it, and must not load the
client.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

from keyward.contracts import failures
from keyward.errors import KeywardError

#: ``<name>.<account-id>``, as Cloud names namespaces in every API call.
NAMESPACE_NAME: Final = re.compile(r"[a-z][a-z0-9-]{0,37}[a-z0-9]\.[a-z0-9]{1,32}")


class InvalidCloudNamespace(KeywardError):
    """A name that is not a Temporal Cloud namespace's ``<name>.<account-id>``."""

    failure_type = failures.INVALID_CLOUD_NAMESPACE


def check_namespace_name(namespace: str) -> str:
    """``namespace`` when it follows Cloud's rule, else :class:`InvalidCloudNamespace`
    (the message quotes the name with ``repr``, so control characters stay visible)."""
    if not isinstance(namespace, str) or not NAMESPACE_NAME.fullmatch(namespace):
        raise InvalidCloudNamespace(
            f"{namespace!r} is not a Temporal Cloud namespace: expected '<name>.<account-id>' "
            "(the name 2-39 lowercase letters, digits and hyphens, starting with a letter and "
            "ending with a letter or digit; the account id lowercase letters and digits), "
            "e.g. 'orders.a1b2c'")
    return namespace


class InvalidCodecEndpoint(KeywardError):
    """A codec-server endpoint the Web UI must not be pointed at."""

    failure_type = failures.INVALID_CODEC_ENDPOINT


def check_codec_endpoint(endpoint: str) -> str:
    """``endpoint`` when it is an ``https://`` URL with a host and no user name or password
    (the Web UI sends payloads there, and with ``pass_access_token`` the user's token), else
    :class:`InvalidCodecEndpoint`."""
    problem = _endpoint_problem(endpoint)
    if problem:
        raise InvalidCodecEndpoint(f"codec endpoint {endpoint!r} {problem}")
    return endpoint


def _endpoint_problem(endpoint: str) -> str:
    if not isinstance(endpoint, str) or not endpoint:
        return "is empty"
    if any(char.isspace() or not char.isprintable() for char in endpoint):
        return "contains white space or control characters"
    try:
        url = urllib.parse.urlsplit(endpoint)
        url.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if url.scheme != "https":
        return ("must be https:// (the Web UI sends payloads, and with pass_access_token "
                "the user's token, to it)")
    if not url.hostname:
        return "has no host"
    if url.username is not None or url.password is not None:
        return "must not carry a user name or password"
    if url.fragment:
        return "must not have a #fragment"
    return ""
