"""Properties of the PKI core over arbitrary specs: what the CA issues, the validator
accepts, and every single thing flipped is reported as exactly that problem."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from keyward.pki.ca import CertificateAuthority
from keyward.pki.keys import generate_private_key, private_key_pem
from keyward.pki.types import CertificateSpec
from keyward.pki.validate import validate_pair
from tests.pki.support import NOW, dns_names, problems, specs

# deadline=None: the first example pays for imports and OpenSSL warm-up.
examples = settings(max_examples=60, deadline=None)


@examples
@given(spec=specs())
def test_issued_certificate_validates_against_its_spec(ca: CertificateAuthority,
                                                       spec: CertificateSpec) -> None:
    """Whatever the spec, the CA's certificate passes validation with that spec."""
    issued = ca.issue(spec, now=NOW)
    summary = validate_pair(issued.certificate_pem, issued.private_key_pem,
                            ca_pem=issued.ca_pem, now=NOW, spec=spec)
    assert summary.not_before <= NOW < summary.not_after
    assert summary.subject == x509.Name(
        [x509.NameAttribute(x509.NameOID.COMMON_NAME, spec.common_name)]).rfc4514_string()


@examples
@given(spec=specs())
def test_another_ca_is_reported_as_a_chain_problem(ca: CertificateAuthority,
                                                   other_ca: CertificateAuthority,
                                                   spec: CertificateSpec) -> None:
    """Validating against a different CA of the same name fails only on the chain."""
    found = problems(ca.issue(spec, now=NOW), ca_pem=other_ca.ca_pem, spec=spec)
    assert len(found) == 1
    assert "does not chain to the given CA" in found[0]


@examples
@given(spec=specs())
def test_another_key_is_reported(ca: CertificateAuthority, spec: CertificateSpec) -> None:
    """A key that is not the certificate's is reported as a mismatch, and only that."""
    stranger = private_key_pem(generate_private_key())
    found = problems(ca.issue(spec, now=NOW), private_key_pem=stranger, spec=spec)
    assert found == ["private key does not match the certificate"]


@examples
@given(spec=specs(), late=st.timedeltas(min_value=timedelta(seconds=1),
                                        max_value=timedelta(days=3000)))
def test_expiry_is_reported(ca: CertificateAuthority, spec: CertificateSpec,
                            late: timedelta) -> None:
    """Checked after its not_after, a certificate is reported expired, and only that."""
    issued = ca.issue(spec, now=NOW)
    not_after = x509.load_pem_x509_certificate(issued.certificate_pem).not_valid_after_utc
    found = problems(issued, now=not_after + late, spec=spec)
    assert len(found) == 1
    assert found[0].startswith("certificate expired at")


@examples
@given(spec=specs(), missing=dns_names)
def test_a_san_the_spec_wants_but_the_certificate_lacks_is_reported(
        ca: CertificateAuthority, spec: CertificateSpec, missing: str) -> None:
    """A spec asking for a DNS name the certificate does not cover names that DNS name."""
    issued = ca.issue(spec, now=NOW)
    wanting = dataclasses.replace(spec, dns_names=(*spec.dns_names, "absent." + missing))
    found = problems(issued, spec=wanting)
    covered = any(name.startswith("*.") and ("absent." + missing).endswith(name[1:])
                  and ("absent." + missing).count(".") == name.count(".")
                  for name in spec.dns_names)
    assert found == ([] if covered else [f"SAN lacks DNS name {'absent.' + missing!r}"])


@examples
@given(spec=specs().filter(lambda spec: spec.usage != "both"))
def test_the_wrong_usage_is_reported(ca: CertificateAuthority, spec: CertificateSpec) -> None:
    """A client certificate checked as a server one (and vice versa) lacks that EKU."""
    issued = ca.issue(spec, now=NOW)
    flipped = dataclasses.replace(spec, usage="server" if spec.usage == "client" else "client")
    missing = "serverAuth" if flipped.usage == "server" else "clientAuth"
    found = problems(issued, spec=flipped)
    assert any(f"extended key usage lacks {missing}" in problem for problem in found)
    # The only other possible complaint: a client certificate without SANs as a server.
    assert all("extended key usage" in problem or "no SANs" in problem for problem in found)


@examples
@given(spec=specs())
def test_signed_csr_validates_with_the_csr_key(ca: CertificateAuthority,
                                               spec: CertificateSpec) -> None:
    """sign_csr's certificate, paired with the key that made the CSR, passes validation."""
    key = generate_private_key(spec.key_type)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "ignored")]))
           .sign(key, hashes.SHA256()))
    certificate = ca.sign_csr(csr.public_bytes(serialization.Encoding.PEM), spec, now=NOW)
    validate_pair(certificate, private_key_pem(key), ca_pem=ca.ca_pem, now=NOW, spec=spec)


@examples
@given(spec=specs(), lifetime=st.timedeltas(min_value=timedelta(days=1),
                                            max_value=timedelta(days=4000)))
def test_lifetime_never_exceeds_the_cas(ca: CertificateAuthority, spec: CertificateSpec,
                                        lifetime: timedelta) -> None:
    """not_after is now + lifetime, clipped to the CA's own not_after."""
    issued = ca.issue(dataclasses.replace(spec, lifetime=lifetime), now=NOW)
    leaf = x509.load_pem_x509_certificate(issued.certificate_pem)
    expected = min(NOW + lifetime, ca.not_after)
    assert leaf.not_valid_after_utc == expected.replace(microsecond=0)
    assert leaf.not_valid_before_utc == NOW - timedelta(minutes=1)


@pytest.mark.parametrize("key_type", ["rsa-2048", "rsa-4096"])
def test_rsa_certificates_validate(ca: CertificateAuthority, key_type: str) -> None:
    """RSA specs (few examples: RSA key generation is slow) issue valid RSA pairs."""
    spec = CertificateSpec(name="worker", common_name="worker", usage="both",
                           dns_names=("worker.local",), key_type=key_type)  # type: ignore[arg-type]
    issued = ca.issue(spec, now=NOW)
    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=ca.ca_pem, now=NOW,
                  spec=spec)
    leaf = x509.load_pem_x509_certificate(issued.certificate_pem)
    assert leaf.public_key().key_size == int(key_type.split("-")[1])  # type: ignore[union-attr]
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment
