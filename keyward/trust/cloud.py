"""A Temporal Cloud namespace's accepted client CAs as a trust point of a CA rotation.

Edited through :class:`keyward.services.cloud_namespaces.CloudNamespaces` (read → edit →
write with ``resource_version``, re-applied on a conflict, the async operation waited for),
so CAs the rotation did not add stay and the namespace is never left without a CA: the
successor is added before the retired CA is taken out. The rotation's steps are
synchronous; each call here runs its own event loop and Ops API client on the step's thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keyward.cloud.names import check_namespace_name
from keyward.cloud.ops import CloudOps
from keyward.config.cloud import CloudSettings
from keyward.services.cloud_namespaces import CloudNamespaces
from keyward.trust.base import fingerprint

T = TypeVar("T")


class CloudNamespaceTrustPoint:
    def __init__(self, namespace: str, cloud: CloudSettings) -> None:
        self._namespace = check_namespace_name(namespace)
        self._cloud = cloud

    @property
    def where(self) -> str:
        return f"Temporal Cloud namespace {self._namespace}"

    def read(self) -> list[x509.Certificate]:
        async def read(namespaces: CloudNamespaces) -> list[x509.Certificate]:
            trust = await namespaces.read(self._namespace)
            return [x509.load_pem_x509_certificate(ca.pem.encode())
                    for ca in trust.accepted_client_cas]

        return self._run(read)

    def edit(self, *, add: Sequence[x509.Certificate],
             remove: Sequence[x509.Certificate]) -> bool:
        async def edit(namespaces: CloudNamespaces) -> bool:
            changed = False
            if add:
                pem = "".join(cert.public_bytes(serialization.Encoding.PEM).decode()
                              for cert in add)
                changed |= (await namespaces.add_client_ca(
                    self._namespace, pem, source="the rotation's CAs")).changed
            if remove:
                changed |= (await namespaces.remove_client_cas(
                    self._namespace, [fingerprint(cert) for cert in remove])).changed
            return changed

        return self._run(edit)

    def _run(self, operation: Callable[[CloudNamespaces], Awaitable[T]]) -> T:
        async def run() -> T:
            return await operation(CloudNamespaces(await CloudOps.connect(self._cloud)))

        return asyncio.run(run())
