"""Running hvac's own PKI integration tests (hvac 2.4.0) against the Vault under test.

hvac's ``tests/integration_tests/api/secrets_engines/test_pki.py`` is the most
independent check there is of the PKI engine's HTTP contract: it was written
against real Vault by hvac's maintainers, not by whoever wrote the dev server.
Its source is not part of this repository (it is hvac's code, and hvac's test
fixtures include committed keys); point ``KEYWARD_HVAC_SOURCE`` at an unpacked
hvac 2.4.0 source tree to run it::

    pip download hvac==2.4.0 --no-deps --no-binary :all: -d /tmp/hvac
    tar -xzf /tmp/hvac/hvac-2.4.0.tar.gz -C /tmp/hvac
    KEYWARD_HVAC_SOURCE=/tmp/hvac/hvac-2.4.0 pytest tests/contract/test_hvac_pki_suite.py

The module is run as hvac wrote it, byte for byte (its SHA-256 is checked), with
three things hvac's own harness provides replaced:

* ``HvacIntegrationTestCase`` starts a Vault binary in hvac's harness; here it
  hands out an hvac client for the Vault the contract tests use;
* ``tests.utils`` reads hvac's fixture files (``ca-cert.pem``, ``ca-key.pem``,
  ``server-cert.csr``); here they are generated when the suite starts, so no key
  is committed or reused, and ``vault_version_lt`` asks the server's
  ``sys/health`` for its version;
* ``parameterized.expand`` (not installed here): every PKI case has exactly one
  ``param``, so the shim runs the method once with it under its own name.
"""

from __future__ import annotations

import gc
import hashlib
import unittest
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hvac
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

#: The environment variable naming an unpacked hvac 2.4.0 source tree.
SOURCE_ENV = "KEYWARD_HVAC_SOURCE"
#: Where the PKI integration tests sit in hvac's tree.
PKI_TESTS = Path("tests/integration_tests/api/secrets_engines/test_pki.py")
#: SHA-256 of that file in hvac 2.4.0 (the sdist and the v2.4.0 tag agree).
PKI_TESTS_SHA256 = "d89bb9e4388047c69378965abbc2b506b7c8b64677aec4fe0fa69258a65e23bc"

#: The imports of hvac's test harness that :func:`load_pki_tests` provides instead.
_HARNESS_IMPORTS = (
    "from parameterized import param, parameterized\n",
    "from tests import utils\n",
    "from tests.utils.hvac_integration_test_case import HvacIntegrationTestCase\n",
)


class SourceError(Exception):
    """The hvac source tree is missing, or is not hvac 2.4.0's."""


@dataclass(frozen=True)
class Param:
    """``parameterized.param``: the arguments one expansion passes."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


def param(*args: Any, **kwargs: Any) -> Param:
    """``parameterized.param``."""
    return Param(args, kwargs)


class Parameterized:
    """``parameterized.parameterized``, reduced to what hvac's PKI tests use."""

    @staticmethod
    def expand(params: Sequence[Param]) -> Callable[[Callable[..., None]], Callable[..., None]]:
        """Run the test once per ``param``, keeping the method's own name."""

        def decorate(test: Callable[..., None]) -> Callable[..., None]:
            def run(self: unittest.TestCase) -> None:
                for each in params:
                    with self.subTest(*each.args):
                        test(self, *each.args, **each.kwargs)

            run.__name__ = test.__name__
            run.__doc__ = test.__doc__
            return run

        return decorate


@dataclass(frozen=True)
class Utils:
    """The part of hvac's ``tests.utils`` the PKI tests call."""

    config_dir: Path
    server_version: str

    def get_config_file_path(self, name: str) -> str:
        """One of the generated fixture files."""
        path = self.config_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"no generated hvac fixture {name!r}")
        return str(path)

    def vault_version_lt(self, supported_version: str) -> bool:
        """Whether the server is older than ``supported_version``."""
        return _version(self.server_version) < _version(supported_version)


def _version(text: str) -> tuple[int, ...]:
    """``1.19.0`` (or ``1.19.0+ent``) as numbers to compare."""
    release = text.split("+", 1)[0].split("-", 1)[0]
    return tuple(int(part) for part in release.split("."))


def write_fixtures(directory: Path) -> None:
    """hvac's PKI fixtures, made now: a self-signed CA pair and a server CSR.

    hvac's own files are an RSA CA (``ca-cert.pem``/``ca-key.pem``) and a CSR for
    a server key (``server-cert.csr``); the tests only need their kinds, not
    their bytes.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keyward hvac fixtures"),
        x509.NameAttribute(NameOID.COMMON_NAME, "keyward hvac fixture CA"),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                       critical=False)
        .sign(server_key, hashes.SHA256())
    )
    (directory / "ca-cert.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    key_pem = ca_key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.TraditionalOpenSSL,
                                   serialization.NoEncryption())
    (directory / "ca-key.pem").write_bytes(key_pem)
    (directory / "ca-key.pem").chmod(0o600)
    (directory / "server-cert.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))


def pki_tests_source(root: Path) -> str:
    """hvac's PKI test module from ``root``, refused unless it is hvac 2.4.0's."""
    path = root / PKI_TESTS
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != PKI_TESTS_SHA256:
        raise SourceError(f"{path} is not hvac 2.4.0's (sha256 {digest})")
    return raw.decode("utf-8")


def load_pki_tests(root: Path, *, client: Callable[[], hvac.Client], utils: Utils,
                   root_token: str) -> type[unittest.TestCase]:
    """hvac's ``TestPki``, its harness replaced as described in the module docstring."""
    text = pki_tests_source(root)
    for line in _HARNESS_IMPORTS:
        if text.count(line) != 1:
            raise SourceError(f"hvac's PKI tests no longer import {line.strip()!r}")
        text = text.replace(line, "")

    class HvacIntegrationTestCase:
        """hvac's base class, with the Vault under test instead of a Vault binary."""

        client: hvac.Client

        def setUp(self) -> None:
            self.client = client()

        def tearDown(self) -> None:
            self.client.token = root_token
            self.client.adapter.close()

    namespace: dict[str, Any] = {
        "__name__": "hvac_upstream_test_pki",
        "param": param,
        "parameterized": Parameterized,
        "utils": utils,
        "HvacIntegrationTestCase": HvacIntegrationTestCase,
    }
    code = compile(text, str(root / PKI_TESTS), "exec")
    exec(code, namespace)  # noqa: S102 - hvac's own module, pinned by its SHA-256 above
    suite: type[unittest.TestCase] = namespace["TestPki"]
    return suite


def case_names(suite: type[unittest.TestCase]) -> list[str]:
    """The test methods of ``suite``, in the order unittest would run them."""
    return unittest.TestLoader().getTestCaseNames(suite)


def run_case(suite: type[unittest.TestCase], name: str) -> unittest.TestResult:
    """Run one case with unittest's own runner semantics (setUp, tearDown, skips)."""
    result = unittest.TestResult()
    with warnings.catch_warnings():
        # hvac's cases read fixtures with a bare open(...).readlines(); their files close
        # when collected, which warns. That is hvac's habit, not the server's doing.
        warnings.simplefilter("ignore", ResourceWarning)
        suite(name).run(result)
        gc.collect()
    return result


def problems(result: unittest.TestResult) -> Iterator[str]:
    """The tracebacks of a case's failures and errors (sub-tests included)."""
    for _, trace in [*result.errors, *result.failures]:
        yield trace
