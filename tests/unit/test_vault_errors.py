"""hvac/requests failures map once to retryable or permanent keyward errors."""

from __future__ import annotations

import hvac.exceptions
import pytest
import requests

from keyward.vault.errors import (
    VaultError,
    VaultForbidden,
    VaultInvalidRequest,
    VaultNotFound,
    VaultRateLimited,
    VaultServerError,
    VaultUnavailable,
    map_vault_error,
    vault_errors,
)


@pytest.mark.parametrize(
    ("status", "expected", "retryable"),
    [
        (400, VaultInvalidRequest, False),
        (403, VaultForbidden, False),
        (404, VaultNotFound, False),
        (429, VaultRateLimited, True),
        (500, VaultServerError, True),
        (502, VaultServerError, True),
        (503, VaultUnavailable, True),
    ],
)
def test_status_codes_map_to_classes(status: int, expected: type[VaultError],
                                     retryable: bool) -> None:
    """Each Vault status becomes the matching class with the right retryability."""
    exc = hvac.exceptions.VaultError.from_status(status, errors=["it broke"], method="post",
                                                 url="http://vault/v1/transit/encrypt/k")
    mapped = map_vault_error(exc, "encrypt")
    assert type(mapped) is expected
    assert mapped.retryable is retryable
    assert "it broke" in str(mapped)
    assert "http://vault" not in str(mapped)  # the message is Vault's, not a URL dump


@pytest.mark.parametrize(
    "exc",
    [requests.exceptions.ConnectionError("refused"), requests.exceptions.ReadTimeout("slow"),
     requests.exceptions.SSLError("certificate verify failed")],
)
def test_transport_failures_are_retryable(exc: Exception) -> None:
    """Connection refused, timeouts and TLS failures mean 'Vault unavailable': retry."""
    mapped = map_vault_error(exc, "encrypt")
    assert isinstance(mapped, VaultUnavailable)
    assert mapped.retryable


def test_batch_error_body_is_kept() -> None:
    """A 400 keeps Vault's JSON body so batch callers can read per-item results."""
    body = {"errors": ["one item failed"], "data": {"batch_results": [{"error": "bad"}]}}
    exc = hvac.exceptions.InvalidRequest(errors=body["errors"], json=body)
    assert map_vault_error(exc, "encrypt").body == body


def test_context_manager_reraises_as_vault_error() -> None:
    """Code inside vault_errors() sees only keyward's classes, chained to the original."""
    with pytest.raises(VaultForbidden) as caught, vault_errors("read key"):
        raise hvac.exceptions.Forbidden(errors=["permission denied"])
    assert isinstance(caught.value.__cause__, hvac.exceptions.Forbidden)
    assert str(caught.value) == "Vault read key failed (HTTP 403): permission denied"


def test_other_exceptions_are_not_swallowed() -> None:
    """Programming errors are not disguised as Vault errors."""
    with pytest.raises(TypeError):
        map_vault_error(ValueError("bug"), "x")


def test_empty_error_list_gives_a_readable_detail() -> None:
    """A 404 whose body has an empty errors list does not read 'None'."""
    exc = hvac.exceptions.VaultError.from_status(404, errors=[], method="get", url="http://v")
    assert str(map_vault_error(exc, "read key")).endswith("no error detail from Vault")
