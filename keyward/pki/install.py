"""Installing a certificate and key into a directory so readers never see half a renewal.

This is Kubernetes' AtomicWriter scheme (Secret and csi volumes), so a directory
keyward manages looks and behaves exactly like a mounted Secret::

    ..2025_01_31_12_00_00.123456_1a2b3c4d/   one complete generation (tls.crt, tls.key, ca.crt)
    ..data -> ..2025_01_31_12_00_00.123456_1a2b3c4d
    tls.crt -> ..data/tls.crt                 visible names: created once, never changed
    tls.key -> ..data/tls.key

A renewal writes a whole new generation directory, then renames a fresh
``..data_tmp`` symlink over ``..data``: one ``rename(2)``, atomic, so the pair
every path resolves to flips from old to new in one step. A reader that resolves
``..data`` once and reads both files from there (:func:`read_installed` does)
always gets a matched pair; at least one previous generation is kept so a reader
that resolved ``..data`` just before the swap can still finish reading.

Generation names sort in installation order (timestamps are forced to increase,
even if the clock steps back), which is how crash leftovers are told from
previous generations: a generation newer than the one ``..data`` points to was
never swapped in and is deleted by the next install. Installs into one
directory are serialised with an advisory lock, so two renewals of the same
certificate cannot delete each other's work in progress.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from keyward.errors import KeywardError
from keyward.pki.types import IssuedCertificate

DATA_LINK = "..data"
TMP_LINK = "..data_tmp"
LOCK_FILE = "..install.lock"

_TIMESTAMP_FORMAT = "%Y_%m_%d_%H_%M_%S.%f"
_GENERATION = re.compile(r"\.\.(\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{6})_[0-9a-f]{8}")
_KEY_MODE = 0o600
_PUBLIC_MODE = 0o644
_DIR_MODE = 0o755
_READ_ATTEMPTS = 3

#: Called with the name of each step just before it is taken. Production passes
#: nothing; the crash-safety tests pass a hook that kills the process there.
StepHook = Callable[[str], None]


class InstallError(KeywardError):
    """The pair cannot be installed (empty input, bad names, a directory in the way)."""


@dataclass(frozen=True)
class InstalledPair:
    """Where an install put things: ``data_dir`` is the new generation ``..data`` points to."""

    directory: Path
    data_dir: Path
    #: The generation that was current before this install (kept for readers), if any.
    previous_data_dir: Path | None


def atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` with ``data`` in one rename, created with ``mode`` (never wider).

    The file is born with its final mode (a key is never world-readable, not even
    for a moment) and fsynced before the rename, so a crash leaves the old file or
    the new one, not an empty one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        _write_new_file(scratch, data, mode)
        scratch.replace(path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def install_pair(directory: Path, issued: IssuedCertificate, *, cert_name: str = "tls.crt",
                 key_name: str = "tls.key", ca_name: str = "ca.crt", keep_previous: int = 1,
                 on_step: StepHook | None = None) -> InstalledPair:
    """Install ``issued`` into ``directory`` atomically; the caller has validated it.

    A directory that holds plain files (a hand-made pair) is first adopted: its
    current contents become a generation of their own, then each visible name is
    turned into a symlink to the same bytes — invisible to readers — and only then
    is the new pair swapped in. If ``issued`` has no CA, ``ca_name`` is not
    installed and a previously installed one is removed after the swap.
    """
    if not issued.certificate_pem.strip() or not issued.private_key_pem.strip():
        raise InstallError("refusing to install an empty certificate or private key")
    if keep_previous < 1:
        raise InstallError("keep_previous must be at least 1: a reader that resolved "
                           "..data just before the swap still needs the previous generation")
    names = {cert_name: (issued.certificate_pem, _PUBLIC_MODE),
             key_name: (issued.private_key_pem, _KEY_MODE)}
    if issued.ca_pem is not None and issued.ca_pem.strip():
        names[ca_name] = (issued.ca_pem, _PUBLIC_MODE)
    _check_names([cert_name, key_name, ca_name])
    step = on_step or _no_step
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory):
        step("recover")
        _remove_leftovers(directory)
        step("adopt")
        _adopt_plain_files(directory, [cert_name, key_name, ca_name], key_name, step)
        previous = _current_generation(directory)
        generation = _new_generation_name(directory)
        _write_generation(directory / generation, names, step)
        for name in names:
            step(f"link:{name}")
            _ensure_visible_link(directory, name)
        step("swap")
        _swap_data_link(directory, generation)
        if ca_name not in names and (directory / ca_name).is_symlink():
            step("unlink-ca")
            (directory / ca_name).unlink()
        step("prune")
        _prune(directory, keep_previous)
        _fsync_directory(directory)
    return InstalledPair(directory, directory / generation,
                         directory / previous if previous else None)


def read_installed(directory: Path, *, cert_name: str = "tls.crt", key_name: str = "tls.key",
                   ca_name: str = "ca.crt") -> IssuedCertificate | None:
    """The installed pair as one consistent snapshot, or None when there is no pair.

    ``..data`` is resolved once and every file is read from that generation, so
    an install running at the same time cannot hand us a new certificate with an
    old key. A directory without ``..data`` (a hand-made pair) is read by its
    visible names.
    """
    directory = Path(directory)
    for _ in range(_READ_ATTEMPTS):
        generation = _current_generation(directory)
        source = directory / generation if generation else directory
        try:
            certificate = (source / cert_name).read_bytes()
            key = (source / key_name).read_bytes()
        except FileNotFoundError:
            if generation is None:
                return None
            # The generation was pruned between readlink and read (two installs in a
            # row): resolve ..data again.
            continue
        try:
            ca: bytes | None = (source / ca_name).read_bytes()
        except FileNotFoundError:
            # No CA file: either the pair has none, or its generation is being pruned
            # (files go one by one). Only a generation that is still current is whole;
            # one that stopped being current never becomes current again.
            if _current_generation(directory) != generation:
                continue
            ca = None
        return IssuedCertificate(certificate_pem=certificate, private_key_pem=key, ca_pem=ca)
    return None


def _no_step(_: str) -> None:
    return None


def _check_names(names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise InstallError(f"certificate, key and CA file names must differ: {names}")
    for name in names:
        if not name or "/" in name or name.startswith("..") or name in (".",):
            raise InstallError(f"invalid file name {name!r}: a plain name, not starting "
                               "with '..' (reserved for generations)")


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    path = directory / LOCK_FILE
    try:
        # O_NOFOLLOW: a planted ..install.lock symlink must not make us create or open a
        # file of someone else's choosing.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, _PUBLIC_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InstallError(_SYMLINK_REFUSED.format(path=path)) from None
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _generations(directory: Path) -> list[str]:
    """Generation directory names, oldest first (their names sort by installation)."""
    return sorted(entry.name for entry in os.scandir(directory)
                  if _GENERATION.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False))


def _current_generation(directory: Path) -> str | None:
    try:
        target = os.readlink(directory / DATA_LINK)
    except OSError:  # missing, or not a symlink
        return None
    return target if _GENERATION.fullmatch(target) else None


def _remove_leftovers(directory: Path) -> None:
    """Undo what a crashed install left: its tmp symlink and never-swapped generations."""
    current = _current_generation(directory)
    for name in _generations(directory):
        if current is None or name > current:
            shutil.rmtree(directory / name)
    for entry in os.scandir(directory):
        # ..data_tmp and the ..<name>_tmp links made while creating visible names.
        if entry.name.startswith("..") and entry.name.endswith("_tmp") and entry.is_symlink():
            os.unlink(entry.path)


def _adopt_plain_files(directory: Path, names: list[str], key_name: str,
                       step: StepHook) -> None:
    """Make visible names that are not our symlinks into symlinks, without changing bytes.

    Only regular files are adopted, each opened with ``O_NOFOLLOW``: a symlink keyward
    did not make is refused, never followed. Its target may be anybody's file (a
    private key, a token), and copying it into a generation would publish it under a
    0644 name. The adopted key is written 0600 whatever the hand-made file's mode was.
    """
    foreign = [name for name in names if _is_foreign(directory, name)]
    if not foreign:
        return
    for name in foreign:
        path = directory / name
        if path.is_symlink():
            raise InstallError(_SYMLINK_REFUSED.format(path=path))
        if path.is_dir():
            raise InstallError(f"{path} is a directory; refusing to replace it")
    # Snapshot what readers currently see under every name, then point ..data at it.
    current_generation = _current_generation(directory)
    current: dict[str, tuple[bytes, int]] = {}
    for name in names:
        if name in foreign:
            source = directory / name
        elif current_generation is not None:  # one of our links: read its generation's file
            source = directory / current_generation / name
        else:
            continue
        data = _read_regular_file(source)
        if data is not None:
            current[name] = (data, _KEY_MODE if name == key_name else _PUBLIC_MODE)
    generation = _new_generation_name(directory)
    _write_generation(directory / generation, current, step)
    step("adopt:swap")
    _swap_data_link(directory, generation)
    for name in foreign:
        step(f"adopt:link:{name}")
        _ensure_visible_link(directory, name)


_SYMLINK_REFUSED = ("{path} is a symlink keyward did not make; refusing to follow it (its "
                    "target would be copied into the install directory). Put the file itself "
                    "there, or remove the symlink")


def _read_regular_file(path: Path) -> bytes | None:
    """The bytes of the regular file at ``path`` (None if absent), never through a symlink.

    ``O_NOFOLLOW`` makes the check and the open one step (no window to swap in a
    symlink); ``O_NONBLOCK`` keeps a planted FIFO from blocking the open.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InstallError(_SYMLINK_REFUSED.format(path=path)) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InstallError(f"{path} is not a regular file; refusing to adopt it")
        chunks: list[bytes] = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _is_foreign(directory: Path, name: str) -> bool:
    path = directory / name
    if path.is_symlink():
        return os.readlink(path) != f"{DATA_LINK}/{name}"
    return path.exists()


def _new_generation_name(directory: Path) -> str:
    """``..<timestamp>_<random>``, later than every existing generation even if the clock
    stepped back, because the name order is the installation order."""
    moment = datetime.now(UTC)
    existing = _generations(directory)
    if existing:
        match = _GENERATION.fullmatch(existing[-1])
        if match is not None:
            newest = datetime.strptime(match.group(1), _TIMESTAMP_FORMAT).replace(tzinfo=UTC)
            moment = max(moment, newest + timedelta(microseconds=1))
    return f"..{moment.strftime(_TIMESTAMP_FORMAT)}_{secrets.token_hex(4)}"


def _write_generation(path: Path, files: dict[str, tuple[bytes, int]],
                      step: StepHook) -> None:
    step("mkdir")
    path.mkdir()
    path.chmod(_DIR_MODE)  # traversable by the reading service, whatever the umask
    for name, (data, mode) in files.items():
        step(f"write:{name}")
        _write_new_file(path / name, data, mode)
    step("fsync-generation")
    _fsync_directory(path)


def _write_new_file(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 mode)
    try:
        os.fchmod(fd, mode)  # the exact mode, whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_data_link(directory: Path, generation: str) -> None:
    tmp = directory / TMP_LINK
    tmp.unlink(missing_ok=True)
    os.symlink(generation, tmp)
    os.rename(tmp, directory / DATA_LINK)
    _fsync_directory(directory)


def _ensure_visible_link(directory: Path, name: str) -> None:
    """``name -> ..data/name``, put in place by rename so the name never disappears."""
    target = f"{DATA_LINK}/{name}"
    path = directory / name
    if path.is_symlink() and os.readlink(path) == target:
        return
    tmp = directory / f"..{name}_tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.rename(tmp, path)


def _prune(directory: Path, keep_previous: int) -> None:
    current = _current_generation(directory)
    if current is None:
        return
    older = [name for name in _generations(directory) if name < current]
    for name in older[:-keep_previous]:
        shutil.rmtree(directory / name)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
