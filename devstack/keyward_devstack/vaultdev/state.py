"""Everything the dev server remembers, and how it reaches the disk.

State lives in one JSON document, ``state.json``, in the data directory so a
restart keeps mounts, transit keys, roles and tokens. Writes go to a private
temporary file that is fsynced and then ``os.replace``d over the old one, so a
crash leaves either the old or the new state, never half of each. The
directory is created ``0700`` and files ``0600``.

This is a development server: transit key material is stored base64-encoded
in plain JSON, protected only by file permissions. Client tokens and AppRole
secret IDs are stored as SHA-256 digests, so the file does not hand out
working credentials; the generated root token (``root-token``) is the
exception, since it has to be shown again after a restart.
"""

from __future__ import annotations

import base64
import dataclasses
import fcntl
import hashlib
import json
import os
import secrets
import string
import types
import typing
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
LOCK_FILE = ".lock"
ROOT_TOKEN_FILE = "root-token"  # noqa: S105 - a file name, not a credential
FORMAT_VERSION = 1

_ACCESSOR_ALPHABET = string.ascii_letters + string.digits


class StateError(Exception):
    """The data directory cannot be used (unreadable, corrupt, wrong format)."""


@dataclass
class KeyVersion:
    """One version of a transit key: its secret bytes and creation time."""

    material: bytes
    created: float


@dataclass
class TransitKey:
    """A named transit key ring, mirroring Vault's ``keysutil.Policy`` fields."""

    name: str
    key_type: str
    derived: bool = False
    exportable: bool = False
    allow_plaintext_backup: bool = False
    deletion_allowed: bool = False
    auto_rotate_period: int = 0
    min_decryption_version: int = 1
    min_encryption_version: int = 0
    min_available_version: int = 0
    latest_version: int = 0
    versions: dict[int, KeyVersion] = field(default_factory=dict)


@dataclass
class SecretsMount:
    """A mounted secrets engine; only transit exists here."""

    kind: str
    accessor: str
    uuid: str
    description: str = ""
    keys: dict[str, TransitKey] = field(default_factory=dict)


@dataclass
class TokenSettings:
    """The ``token_*`` parameters auth-method roles share (Vault's ``tokenutil``)."""

    ttl: int = 0
    max_ttl: int = 0
    explicit_max_ttl: int = 0
    period: int = 0
    policies: list[str] = field(default_factory=list)
    no_default_policy: bool = False
    num_uses: int = 0
    token_type: str = "default"  # noqa: S105 - a token kind, not a credential


@dataclass
class SecretID:
    """An issued AppRole secret ID (stored under the digest of its value)."""

    accessor: str
    created: float
    expires: float | None = None
    uses_left: int = 0
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class AppRoleRole:
    """An AppRole role and the secret IDs issued for it."""

    role_id: str
    bind_secret_id: bool = True
    secret_id_ttl: int = 0
    secret_id_num_uses: int = 0
    token: TokenSettings = field(default_factory=TokenSettings)
    secret_ids: dict[str, SecretID] = field(default_factory=dict)


@dataclass
class KubernetesConfig:
    """The Kubernetes auth method's ``config`` endpoint."""

    kubernetes_host: str
    kubernetes_ca_cert: str = ""
    pem_keys: list[str] = field(default_factory=list)
    issuer: str = ""
    disable_iss_validation: bool = True
    disable_local_ca_jwt: bool = False


@dataclass
class KubernetesRole:
    """A Kubernetes auth role: which service accounts may log in, and their token."""

    bound_service_account_names: list[str]
    bound_service_account_namespaces: list[str]
    audience: str = ""
    alias_name_source: str = "serviceaccount_uid"
    token: TokenSettings = field(default_factory=TokenSettings)


@dataclass
class AuthMount:
    """A mounted auth method (token, approle or kubernetes)."""

    kind: str
    accessor: str
    uuid: str
    description: str = ""
    approle_roles: dict[str, AppRoleRole] = field(default_factory=dict)
    kubernetes_config: KubernetesConfig | None = None
    kubernetes_roles: dict[str, KubernetesRole] = field(default_factory=dict)


@dataclass
class TokenEntry:
    """A service token, stored under the SHA-256 digest of its value."""

    accessor: str
    policies: list[str]
    path: str
    display_name: str
    creation_time: float
    creation_ttl: int
    expire_time: float | None
    explicit_max_ttl: int = 0
    period: int = 0
    max_ttl: int = 0
    renewable: bool = True
    orphan: bool = False
    parent: str = ""
    meta: dict[str, str] | None = None
    num_uses: int = 0
    entity_id: str = ""
    last_renewal_time: float | None = None


@dataclass
class State:
    """The whole persisted state of one dev server."""

    cluster_id: str
    root_accessor: str
    root_created: float
    secrets_mounts: dict[str, SecretsMount] = field(default_factory=dict)
    auth_mounts: dict[str, AuthMount] = field(default_factory=dict)
    tokens: dict[str, TokenEntry] = field(default_factory=dict)


def new_accessor(length: int = 24) -> str:
    """A random identifier in the style of Vault's token accessors."""
    return "".join(secrets.choice(_ACCESSOR_ALPHABET) for _ in range(length))


def mount_accessor(kind: str) -> str:
    """A mount accessor as Vault formats them (``transit_1a2b3c4d``)."""
    return f"{kind}_{secrets.token_hex(4)}"


def token_digest(value: str) -> str:
    """The key a token or secret ID is stored under; the value itself is not kept."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_secrets_mount(kind: str) -> SecretsMount:
    """An empty secrets mount of ``kind``."""
    return SecretsMount(kind=kind, accessor=mount_accessor(kind), uuid=str(uuid.uuid4()))


def new_auth_mount(kind: str, description: str = "") -> AuthMount:
    """An empty auth mount of ``kind``."""
    return AuthMount(
        kind=kind,
        accessor=f"auth_{mount_accessor(kind)}",
        uuid=str(uuid.uuid4()),
        description=description,
    )


def fresh_state(now: float) -> State:
    """A first-start state: transit at ``transit/``, token, approle and kubernetes auth."""
    return State(
        cluster_id=str(uuid.uuid4()),
        root_accessor=new_accessor(),
        root_created=now,
        secrets_mounts={"transit/": new_secrets_mount("transit")},
        auth_mounts={
            "token/": new_auth_mount("token", "token based credentials"),
            "approle/": new_auth_mount("approle"),
            "kubernetes/": new_auth_mount("kubernetes"),
        },
    )


class Store:
    """The in-memory state plus the data directory it is saved to.

    An open store holds an exclusive lock on its data directory: two servers
    writing the same state file would silently lose each other's keys, and
    lost key material means ciphertexts nobody can decrypt again.
    """

    def __init__(self, data_dir: Path, state: State, lock: int | None = None) -> None:
        self.data_dir = data_dir
        self.state = state
        self._lock = lock

    def close(self) -> None:
        """Release the data directory for another server."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @classmethod
    def open(cls, data_dir: Path, *, now: float) -> Store:
        """Load the state from ``data_dir``, creating a fresh one on first start."""
        ensure_private_dir(data_dir)
        lock = _lock_directory(data_dir)
        try:
            store = cls(data_dir, _load(data_dir / STATE_FILE, now), lock)
            if not (data_dir / STATE_FILE).exists():
                store.save()
        except BaseException:
            os.close(lock)
            raise
        return store

    def save(self) -> None:
        """Write the state atomically; called after every change."""
        document = {"format": FORMAT_VERSION, "state": dataclasses.asdict(self.state)}
        payload = json.dumps(document, default=_encode_bytes, indent=1, sort_keys=True)
        write_private(self.data_dir / STATE_FILE, payload.encode("utf-8"))


def _lock_directory(data_dir: Path) -> int:
    descriptor = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise StateError(
            f"data directory {data_dir} is in use by another keyward dev vault"
        ) from None
    return descriptor


def _load(path: Path, now: float) -> State:
    if not path.exists():
        return fresh_state(now)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION:
        raise StateError(f"{path} is not a keyward dev vault state file (format 1)")
    try:
        state: State = _decode(State, document["state"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"{path} is damaged: {exc!r}") from exc
    return state


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` as ``0700`` if missing; an existing directory is left as it is."""
    if path.is_dir():
        return
    path.mkdir(mode=0o700, parents=True)
    path.chmod(0o700)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, readable by the owner only."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load_or_create_root_token(data_dir: Path) -> str:
    """The generated root token of ``data_dir``, creating it on first use."""
    ensure_private_dir(data_dir)
    path = data_dir / ROOT_TOKEN_FILE
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    token = f"hvs.{secrets.token_urlsafe(24)}"
    write_private(path, token.encode("utf-8"))
    return token


def _encode_bytes(value: object) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot store {type(value).__name__} in the state file")


def _decode(hint: Any, value: Any) -> Any:
    """Rebuild typed records from JSON, guided by the dataclass annotations."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _decode(inner, value)
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_decode(item, element) for element in value]
    if origin is dict:
        key_type, item = typing.get_args(hint)
        return {key_type(key): _decode(item, element) for key, element in value.items()}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = typing.get_type_hints(hint)
        known = {f.name for f in dataclasses.fields(hint)}
        return hint(**{name: _decode(hints[name], value[name]) for name in known if name in value})
    if hint is bytes:
        return base64.b64decode(value)
    if hint is float:
        return float(value)
    return value
