"""One failure model: every keyward error says its Temporal type and whether it is retried,
the type names are documented constants, and nothing builds a typed failure by hand."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from keyward.codec.transit_codec import PayloadDecryptionError, PayloadEncryptionError
from keyward.contracts import failures
from keyward.errors import ConfigError, KeywardError
from keyward.issuers.base import IssuerError
from keyward.pki.k8s_secret import TlsSecretError
from keyward.temporal.failures import to_application_error
from keyward.vault.errors import (
    ERROR_BY_STATUS,
    VaultForbidden,
    VaultNotFound,
    VaultRateLimited,
    VaultServerError,
    VaultUnavailable,
    error_class_for_status,
)
from keyward.vault.names import InvalidVaultName

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "failures.md"


def _documented() -> set[str]:
    return set(re.findall(r"^\| `([A-Za-z]+)` \|", DOC.read_text(), flags=re.MULTILINE))


def test_every_failure_type_is_documented_and_every_documented_one_exists() -> None:
    """docs/failures.md lists exactly the names keyward.contracts.failures defines."""
    assert _documented() == set(failures.all_failure_types().values())


def test_every_failure_type_constant_has_a_docstring() -> None:
    """Each constant is followed by a docstring saying when it happens and if it is retried."""
    body = ast.parse(Path(failures.__file__).read_text()).body
    for index, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and node.target.id.isupper():
            following = body[index + 1] if index + 1 < len(body) else None
            assert isinstance(following, ast.Expr), node.target.id
            assert isinstance(following.value, ast.Constant), node.target.id
            assert "etried" in str(following.value.value), node.target.id


def test_failure_type_names_are_unique() -> None:
    """No two constants share a name (a typo'd copy would split an alert)."""
    names = list(failures.all_failure_types().values())
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("error", "failure_type", "retryable"),
    [
        (VaultUnavailable("read key", "cannot connect"), failures.VAULT_UNAVAILABLE, True),
        (VaultRateLimited("read key", "slow down", status=429), failures.VAULT_RATE_LIMITED,
         True),
        (VaultForbidden("read key", "denied", status=403), failures.VAULT_FORBIDDEN, False),
        (VaultNotFound("read key", "no key", status=404), failures.VAULT_NOT_FOUND, False),
        (IssuerError("CA down", retryable=True), failures.ISSUER_ERROR, True),
        (IssuerError("name not allowed", retryable=False), failures.ISSUER_ERROR, False),
        (IssuerError("import refused", retryable=False, failure_type=failures.INSTALL_FAILED),
         failures.INSTALL_FAILED, False),
        (TlsSecretError("409 each time", retryable=True), failures.TLS_SECRET_ERROR, True),
        (TlsSecretError("RBAC", retryable=False, failure_type=failures.INSTALL_FAILED),
         failures.INSTALL_FAILED, False),
        (PayloadEncryptionError("no key"), failures.PAYLOAD_ENCRYPTION_ERROR, False),
        (PayloadDecryptionError("Vault down", retryable=True), failures.PAYLOAD_DECRYPTION_ERROR,
         True),
        (ConfigError("vault.address", "missing"), failures.CONFIG_ERROR, False),
        (InvalidVaultName("bad name"), failures.INVALID_VAULT_NAME, False),
        (KeywardError("floor too high", failure_type=failures.INVALID_FLOOR),
         failures.INVALID_FLOOR, False),
        (KeywardError("not reloaded", retryable=True, failure_type=failures.VERIFY_FAILED),
         failures.VERIFY_FAILED, True),
        (KeywardError("something"), failures.KEYWARD_ERROR, False),
    ],
)
def test_to_application_error_keeps_type_retryability_and_message(
        error: KeywardError, failure_type: str, retryable: bool) -> None:
    """The one conversion: type is failure_type, non_retryable is not retryable."""
    converted = to_application_error(error)
    assert isinstance(converted, ApplicationError)
    assert (converted.type, converted.non_retryable) == (failure_type, not retryable)
    assert converted.message == str(error)


def test_instance_override_leaves_the_class_default_alone() -> None:
    """Overriding retryable or failure_type on one error changes only that error."""
    KeywardError("x", retryable=True, failure_type=failures.VERIFY_FAILED)
    assert (KeywardError.retryable, KeywardError.failure_type) == (False, failures.KEYWARD_ERROR)


def test_a_subclass_defaults_to_its_own_name() -> None:
    """A new KeywardError subclass needs no boilerplate to get a distinct type."""
    class SomethingBroke(KeywardError):
        pass

    assert (SomethingBroke.failure_type, SomethingBroke.retryable) == ("SomethingBroke", False)


@pytest.mark.parametrize("status", [*ERROR_BY_STATUS, 418, 504, 599, None])
def test_one_status_table_decides_the_vault_class(status: int | None) -> None:
    """Every status has one class; unknown 5xx are transient, other unknowns permanent."""
    cls = error_class_for_status(status)
    if status in ERROR_BY_STATUS:
        assert cls is ERROR_BY_STATUS[status]
    elif status is not None and status >= 500:
        assert cls is VaultServerError
    else:
        assert not cls.retryable


_SOURCES = [path for folder in ("keyward", "activities", "workflows")
            for path in sorted((ROOT / folder).rglob("*.py"))]


@pytest.mark.parametrize("path", _SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_failure_type_is_a_string_literal(path: Path) -> None:
    """Every ApplicationError ``type=`` names a constant of keyward.contracts.failures."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg in ("type", "failure_type"):
                    assert not isinstance(keyword.value, ast.Constant), \
                        f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)[:80]}"
