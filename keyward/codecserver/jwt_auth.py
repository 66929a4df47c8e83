"""Bearer-JWT verification for the codec server.

Rules, each one a test in ``tests/codecserver``:

* the ``alg`` in the token header must be one of the configured *asymmetric*
  algorithms, checked before any key is looked at — so ``none`` and HS256
  "signed" with the public key as HMAC secret are refused outright;
* the key comes from a static public key, or from a JWKS document by ``kid``;
  a ``kid`` not in the cache triggers one refetch, at most once per
  ``jwks_min_refresh_seconds`` (an attacker spraying random kids cannot turn
  the server into a JWKS-fetching amplifier);
* signature, ``exp`` (required), ``nbf``, ``iss`` and ``aud`` are verified with
  a small leeway; ``sub`` must be a string, as Temporal's claim mapper requires.

Failures carry a short public reason; the token itself never appears in an
error or a log line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from keyward.codecserver.permissions import Permissions, parse_permissions
from keyward.config import CodecServerSettings
from keyward.log import get_logger

_REQUIRED_CLAIMS: Final = ["exp", "iss", "aud", "sub"]


class AuthError(Exception):
    """Authentication failed (HTTP 401); ``reason`` is safe to return to the caller."""

    status = 401

    def __init__(self, reason: str, *, foreign: bool = False) -> None:
        self.reason = reason
        #: The token is not one of the configured identity provider's at all (unknown key,
        #: other issuer or audience, not a JWT): e.g. an API key given as a bearer token.
        self.foreign = foreign
        super().__init__(reason)


@dataclass(frozen=True)
class VerificationKey:
    """A public key, and the algorithm its JWK declared (``None``: any configured one)."""

    key: Any
    algorithm: str | None = None


@dataclass(frozen=True)
class Identity:
    subject: str
    #: What the ``permissions`` claim grants (nothing when that role source is off).
    permissions: Permissions
    #: The email claim's value, when roles are looked up in Temporal Cloud and it is there.
    email: str | None = None


class JwksCache:
    """Keys by ``kid`` from a JWKS URL, refetched on miss (rate-limited) and when stale."""

    def __init__(self, url: str, *, min_refresh_seconds: float, max_age_seconds: float,
                 clock: Callable[[], float] = time.monotonic,
                 timeout_seconds: float = 5.0) -> None:
        self._url = url
        self._min_refresh = min_refresh_seconds
        self._max_age = max_age_seconds
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._keys: dict[str, VerificationKey] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self._log = get_logger("keyward.codecserver.jwks", jwks_url=url)
        #: How many times the document was fetched; tests use it to prove rate limiting.
        self.fetches = 0

    async def key_for(self, kid: str) -> VerificationKey:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at >= self._max_age
        if kid not in self._keys or stale:
            await self._refresh(force=stale)
        key = self._keys.get(kid)
        if key is None:
            raise AuthError("token signed with an unknown key", foreign=True)
        return key

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            now = self._clock()
            # Re-checked under the lock: requests that queued up behind a refresh must not
            # each fetch again (a stale cache under load would otherwise fetch once per request).
            if self._fetched_at is not None and now - self._fetched_at < (
                    self._max_age if force else self._min_refresh):
                return  # fetched recently: an unknown kid now is the token's problem
            try:
                # Redirects are not followed: keys come from the URL the operator configured
                # (and whose scheme the settings checked), not from wherever it points.
                async with aiohttp.ClientSession(timeout=self._timeout) as session, \
                        session.get(self._url, allow_redirects=False) as response:
                    if response.status != 200:
                        raise ValueError(f"JWKS endpoint answered HTTP {response.status} "
                                         "(redirects are not followed)")
                    document = await response.json(content_type=None)
                keys = _parse_jwks(document)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self._fetched_at = now  # failures are rate-limited too
                self._log.warning("cannot refresh JWKS; keeping cached keys",
                                  error=f"{type(exc).__name__}: {exc}", cached=len(self._keys))
                return
            self.fetches += 1
            self._fetched_at = now
            self._keys = keys


class JwtVerifier:
    """Turns an ``Authorization`` header into an :class:`Identity`, or raises AuthError."""

    def __init__(self, settings: CodecServerSettings, *,
                 jwks: JwksCache | None = None) -> None:
        self._settings = settings
        self._algorithms = list(settings.jwt_algorithms)
        self._static_key: VerificationKey | None = None
        if settings.jwt_public_key is not None:
            self._static_key = VerificationKey(_public_key_from_pem(
                settings.jwt_public_key.read_bytes()))
        self._jwks = jwks
        if self._jwks is None and settings.token_jwks_url:
            self._jwks = JwksCache(settings.token_jwks_url,
                                   min_refresh_seconds=settings.jwks_min_refresh_seconds,
                                   max_age_seconds=settings.jwks_cache_seconds)

    @property
    def jwks(self) -> JwksCache | None:
        return self._jwks

    async def verify(self, authorization: str | None) -> Identity:
        token = _bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:  # DecodeError, and e.g. a "kid" that is not a string
            raise AuthError("malformed token", foreign=True) from None
        alg = header.get("alg")
        if alg not in self._algorithms:
            raise AuthError(f"token algorithm {alg!r} is not accepted")
        key = await self._key(header)
        if key.algorithm is not None and key.algorithm != alg:
            # A JWK that declares its algorithm may only verify tokens of that algorithm.
            raise AuthError("token algorithm does not match its key")
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[alg],
                audience=list(self._settings.token_audience),
                issuer=self._settings.token_issuer,
                leeway=self._settings.jwt_leeway_seconds,
                options={"require": _REQUIRED_CLAIMS, "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("token not yet valid") from None
        except jwt.InvalidAudienceError:
            raise AuthError("token audience not accepted", foreign=True) from None
        except jwt.InvalidIssuerError:
            raise AuthError("token issuer not accepted", foreign=True) from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks claim {exc.claim!r}") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature invalid") from None
        except jwt.PyJWTError:
            raise AuthError("token invalid") from None
        except TypeError:
            # PyJWT raises TypeError when the key is of another type than ``alg`` needs
            # (an ES256 token against an RSA key): the caller's fault, not a server error.
            raise AuthError("token algorithm does not match its key") from None
        subject = claims.get("sub")
        if not isinstance(subject, str):
            raise AuthError("token 'sub' claim must be a string")
        permissions = parse_permissions(claims.get(self._settings.permissions_claim)) \
            if self._settings.claim_roles else Permissions()
        email = claims.get(self._settings.cloud_email_claim) if self._settings.cloud_roles \
            else None
        return Identity(subject=subject, permissions=permissions,
                        email=email if isinstance(email, str) and email.strip() else None)

    async def _key(self, header: dict[str, Any]) -> VerificationKey:
        kid = header.get("kid")
        if self._jwks is not None and isinstance(kid, str) and kid:
            return await self._jwks.key_for(kid)
        if self._static_key is not None:
            return self._static_key
        raise AuthError("token has no 'kid' header", foreign=True)


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthError("missing bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("authorization must be 'Bearer <token>'")
    return token.strip()


def _parse_jwks(document: Any) -> dict[str, VerificationKey]:
    """Usable public keys of a JWKS document by ``kid``; private or odd entries are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("JWKS document has no 'keys' list")
    keys: dict[str, VerificationKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig" or "d" in entry or entry.get("kty") == "oct":
            continue  # encryption keys, private keys and symmetric secrets never verify tokens
        try:
            parsed = jwt.PyJWK.from_dict(entry)
        except jwt.PyJWTError:  # PyJWKError, and InvalidKeyError for malformed key material
            continue
        declared = entry.get("alg")
        keys[entry["kid"]] = VerificationKey(parsed.key,
                                             declared if isinstance(declared, str) else None)
    return keys


def _public_key_from_pem(pem: bytes) -> Any:
    """A public key from a PEM public key or certificate."""
    if b"BEGIN CERTIFICATE" in pem:
        return x509.load_pem_x509_certificate(pem).public_key()
    return load_pem_public_key(pem)
