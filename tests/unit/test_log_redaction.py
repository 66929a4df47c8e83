"""No token, private key or data key ever reaches a log line, whichever logger wrote it."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from collections.abc import Iterator

import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keyward.config import LoggingSettings
from keyward.log import configure_logging, get_logger, redact_text
from keyward.secrets import REGISTRY, Secret

TOKEN = "hvs.CAESIGx7J3m0aVbQkUu8ZrYpW9sT2dNfLcE1hKoXqRj"


def private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(params=["json", "console"])
def captured(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(LoggingSettings(format=request.param), stream=stream)
    yield stream
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_token_private_key_and_data_key_never_reach_output(captured: io.StringIO) -> None:
    """Secrets logged as fields, inside messages, by libraries and in tracebacks are all cut."""
    pem = private_key_pem()
    data_key = os.urandom(32)
    REGISTRY.add_bytes(data_key)  # what the envelope codec does with every data key it makes
    data_key_b64 = base64.b64encode(data_key).decode()
    secret = Secret(TOKEN)
    log = get_logger("keyward.test")

    log.info("fields", token=secret, vault_token=TOKEN, plaintext=data_key_b64,
             private_key=pem, nested={"headers": {"X-Vault-Token": TOKEN}})
    log.info(f"inline token {TOKEN} and key {data_key_b64}")
    log.info("pem in free text", detail=f"loaded\n{pem}\nfrom disk")
    log.info("raw bytes", blob=data_key)
    logging.getLogger("hvac.adapters").warning("request failed for %s with %s", TOKEN, data_key_b64)
    logging.getLogger("urllib3").error("Authorization: Bearer %s", "eyJhbGciOi.eyJzdWIiOi.c2ln")
    try:
        raise RuntimeError(f"vault said no to {TOKEN} with {data_key_b64}")
    except RuntimeError:
        log.exception("exception with secrets in its message")

    output = captured.getvalue()
    assert output.count("\n") >= 7, output  # every line was written: redaction is not dropping
    for forbidden in (TOKEN, data_key_b64, data_key.hex(), "PRIVATE KEY", pem.splitlines()[1],
                      "eyJhbGciOi.eyJzdWIiOi.c2ln"):
        assert forbidden not in output
    assert "fields" in output
    assert "exception with secrets" in output


def test_json_lines_are_json_with_context(captured: io.StringIO) -> None:
    """In JSON mode each line parses and carries level, logger, timestamp and bound values."""
    structlog.contextvars.bind_contextvars(component="worker")
    try:
        get_logger("keyward.test").info("hello", key_id="default")
    finally:
        structlog.contextvars.clear_contextvars()
    line = captured.getvalue().strip().splitlines()[-1]
    if line.startswith("{"):
        record = json.loads(line)
        assert record["event"] == "hello"
        assert record["level"] == "info"
        assert record["component"] == "worker"
        assert record["key_id"] == "default"  # harmless keys that merely contain "key" survive
        assert "timestamp" in record
    else:
        assert "hello" in line
        assert "component" in line


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (TOKEN, TOKEN),
        ("s.abcdefghijklmnopqrstuvwx", "abcdefghijklmnopqrstuvwx"),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
        ("-----BEGIN ENCRYPTED PRIVATE KEY-----\ntruncated without end", "truncated"),
        ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig", "eyJzdWIiOiJ4In0"),
    ],
)
def test_redact_text_removes_known_shapes(text: str, secret: str) -> None:
    """Each known secret shape is removed from free text, and the rest is kept."""
    redacted = redact_text(f"before {text}")
    assert secret not in redacted
    assert redacted.startswith("before ")
    assert "[REDACTED]" in redacted


def test_redact_text_keeps_ordinary_text() -> None:
    """Vault ciphertexts, key names and versions are not secrets and stay readable."""
    text = "key payments v3 ciphertext vault:v3:AAAA namespace default"
    assert redact_text(text) == text


def test_token_stays_scrubbed_after_many_data_keys(captured: io.StringIO) -> None:
    """Thousands of data keys (a long-running envelope codec) never evict a token."""
    token = "hvs.long-running-process-token-0123456789"
    Secret(token)
    for _ in range(3000):
        REGISTRY.add_bytes(os.urandom(32))
    get_logger("keyward.test").info(f"message mentioning {token}")
    output = captured.getvalue()
    assert "message mentioning" in output
    assert token not in output
