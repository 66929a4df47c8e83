"""Who may encode and decode where: Temporal's role model, and namespaces kept apart."""

from __future__ import annotations

import io
import json

import pytest

from tests.codecserver.conftest import (
    Client,
    JwksServer,
    ServeApp,
    SigningKey,
    bearer,
    jwt_settings,
    open_settings,
    parse_payloads,
    payloads_document,
    plain_payload,
)

NAMESPACE = "orders"

# permission → (decode allowed, encode allowed), as Temporal's default authorizer decides:
# decode needs read (2), encode needs write (4), compared numerically on the OR-ed flags.
ROLE_MATRIX = {
    "orders:read": (True, False),
    "orders:write": (True, True),
    "orders:worker": (False, False),  # worker = 1, below read
    "orders:admin": (True, True),
    "temporal-system:read": (True, False),
    "temporal-system:write": (True, True),
    "temporal-system:admin": (True, True),
    "other-ns:admin": (False, False),
    "ORDERS:admin": (False, False),  # the server looks the namespace up in lower case
}


@pytest.fixture
async def jwt_client(serve: ServeApp, jwks_server: JwksServer) -> Client:
    return await serve(jwt_settings(jwks_server.url))


@pytest.mark.parametrize("operation", ["decode", "encode"])
@pytest.mark.parametrize("permission", list(ROLE_MATRIX))
async def test_role_matrix(jwt_client: Client, signing_key: SigningKey, permission: str,
                           operation: str) -> None:
    """Each role is allowed (200) or forbidden (403) exactly as the Temporal server would."""
    allowed = ROLE_MATRIX[permission][0 if operation == "decode" else 1]
    response = await jwt_client.post(f"/{NAMESPACE}/{operation}",
                                     json=payloads_document([plain_payload("matrix")]),
                                     headers=bearer(signing_key.token([permission])))
    assert response.status == (200 if allowed else 403), await response.text()
    if not allowed:
        error = (await response.json())["error"]
        assert NAMESPACE in error
        assert ("read" if operation == "decode" else "write") in error


async def test_roles_combine_across_entries(jwt_client: Client, signing_key: SigningKey) -> None:
    """``worker`` plus ``read`` entries for one namespace are OR-ed: together they allow decode."""
    token = signing_key.token(["orders:worker", "orders:READ", "junk", 42, "orders:owner"])
    response = await jwt_client.post(f"/{NAMESPACE}/decode",
                                     json=payloads_document([plain_payload("x")]),
                                     headers=bearer(token))
    assert response.status == 200


async def test_admin_elsewhere_cannot_use_this_namespace(jwt_client: Client,
                                                         signing_key: SigningKey) -> None:
    """A caller with team-a:admin posting to /team-b/decode is forbidden."""
    response = await jwt_client.post("/team-b/decode",
                                     json=payloads_document([plain_payload("x")]),
                                     headers=bearer(signing_key.token(["team-a:admin"])))
    assert response.status == 403


async def test_header_namespace_is_authorized_like_the_path(jwt_client: Client,
                                                            signing_key: SigningKey) -> None:
    """Naming team-b in ``X-Namespace`` needs team-b's role, like naming it in the path."""
    token = signing_key.token(["team-a:admin"])
    body = payloads_document([plain_payload("x")])
    forbidden = await jwt_client.post("/decode", json=body,
                                      headers={**bearer(token), "X-Namespace": "team-b"})
    allowed = await jwt_client.post("/decode", json=body,
                                    headers={**bearer(token), "X-Namespace": "team-a"})
    assert (forbidden.status, allowed.status) == (403, 200)


async def test_payload_of_another_namespace_does_not_decode(serve: ServeApp,
                                                            jwks_server: JwksServer,
                                                            signing_key: SigningKey) -> None:
    """team-b's ciphertext posted to /team-a/decode by a team-a reader is a 400, not plaintext.

    The caller is allowed in team-a, and the payload uses the same Transit key, but the
    namespace is bound into the AEAD associated data, so naming team-a cannot open it.
    """
    writer = await serve(open_settings())
    secret = plain_payload("team-b only: 4111-1111-1111-1111")
    encoded = await writer.post("/team-b/encode", json=payloads_document([secret]))
    assert encoded.status == 200
    team_b_payloads = parse_payloads(await encoded.json())

    client = await serve(jwt_settings(jwks_server.url))
    response = await client.post("/team-a/decode", json=payloads_document(team_b_payloads),
                                 headers=bearer(signing_key.token(["team-a:read"])))
    assert response.status == 400
    text = await response.text()
    assert "4111" not in text
    assert "team-a" in (await response.json())["error"]

    reader_b = await client.post("/team-b/decode", json=payloads_document(team_b_payloads),
                                 headers=bearer(signing_key.token(["team-b:read"])))
    assert reader_b.status == 200  # the same payload is fine where it belongs
    assert parse_payloads(await reader_b.json()) == [secret]


async def test_forbidden_request_is_audited_with_its_subject(captured_logs: io.StringIO,
                                                             jwt_client: Client,
                                                             signing_key: SigningKey) -> None:
    """The audit line of a 403 names who was refused, where, and for what."""
    token = signing_key.token(["team-a:read"], sub="bob@example.test")
    response = await jwt_client.post("/team-b/decode",
                                     json=payloads_document([plain_payload("x")]),
                                     headers=bearer(token))
    assert response.status == 403
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    (audit,) = [line for line in lines if line.get("event") == "codec request"]
    assert (audit["subject"], audit["namespace"], audit["operation"], audit["outcome"],
            audit["status"]) == ("bob@example.test", "team-b", "decode", "forbidden", 403)
