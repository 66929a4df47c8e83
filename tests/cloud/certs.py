"""Certificates the namespace CA tests hand keyward: CAs, a leaf, an expired CA, keys."""

from __future__ import annotations

import datetime as dt
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.tls_material import CertificateAuthority


def new_ca(name: str = "") -> CertificateAuthority:
    return CertificateAuthority.create(name or f"next client CA {uuid.uuid4().hex[:6]}")


def pem(ca: CertificateAuthority) -> str:
    return ca.cert_pem().decode()


def sha256(ca: CertificateAuthority) -> str:
    """The fingerprint computed here from the DER, independently of keyward."""
    return ":".join(f"{b:02X}" for b in ca.cert.fingerprint(hashes.SHA256()))


def expired_ca_pem() -> str:
    """A self-signed CA (basicConstraints CA=true) whose validity ended yesterday."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired client CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=30))
            .not_valid_after(now - dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def reformatted(text: str) -> str:
    """The same certificates as other text: CRLF line endings, a comment before each block
    and trailing blank lines (what a text comparison would call a different CA)."""
    out = []
    for block in text.split("-----END CERTIFICATE-----")[:-1]:
        body = block.strip()
        out.append(f"# exported by another tool\r\n{body}\r\n-----END CERTIFICATE-----\r\n")
    return "".join(out) + "\r\n\r\n"
