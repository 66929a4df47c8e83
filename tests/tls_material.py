"""Throwaway CA, server and client certificates generated at test time (never committed)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class ServerTLS:
    ca_cert: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class IssuedCertificate:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def serial(self) -> int:
        return self.cert.serial_number

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA that can issue any number of server and client certificates."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, name: str = "test CA") -> CertificateAuthority:
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=1))
                .not_valid_after(now + dt.timedelta(hours=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return cls(cert, key)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue_server(self, host: str = "127.0.0.1") -> IssuedCertificate:
        """A server certificate for ``host`` (and localhost), with a fresh key and serial."""
        names = [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
        return self._issue(host, ExtendedKeyUsageOID.SERVER_AUTH,
                           x509.SubjectAlternativeName(names))

    def issue_client(self, name: str = "test client") -> IssuedCertificate:
        """A client certificate (extended key usage ``clientAuth``) for mutual TLS."""
        return self._issue(name, ExtendedKeyUsageOID.CLIENT_AUTH, None)

    def _issue(self, cn: str, usage: x509.ObjectIdentifier,
               san: x509.SubjectAlternativeName | None) -> IssuedCertificate:
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(_name(cn))
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=1))
                   .not_valid_after(now + dt.timedelta(hours=1))
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return IssuedCertificate(builder.sign(self.key, hashes.SHA256()), key)


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` in one rename, as cert-manager and most renewal tools do."""
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_bytes(data)
    scratch.chmod(mode)
    scratch.replace(path)


def write_pair(cert: IssuedCertificate, key: IssuedCertificate, cert_path: Path,
               key_path: Path) -> None:
    """Write ``cert``'s certificate and ``key``'s private key (the same one for a real pair)."""
    write_atomically(cert_path, cert.cert_pem())
    write_atomically(key_path, key.key_pem(), mode=0o600)


def make_server_tls(directory: Path, host: str = "127.0.0.1") -> ServerTLS:
    ca = CertificateAuthority.create()
    server = ca.issue_server(host)
    directory.mkdir(parents=True, exist_ok=True)
    paths = ServerTLS(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths.ca_cert.write_bytes(ca.cert_pem())
    write_pair(server, server, paths.cert, paths.key)
    return paths
