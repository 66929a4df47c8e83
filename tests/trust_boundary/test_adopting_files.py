"""Adopting a hand-made pair follows no symlink it did not make, and keeps keys 0600.

A directory keyward installs into may have been prepared by someone else. A visible
name planted as a symlink (``ca.crt -> /home/ops/.ssh/id_ed25519``) would otherwise be
read and copied into a new, world-readable (0644) generation: the target's secret
published under a harmless name.
"""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import InstallError, install_pair, read_installed
from keyward.pki.types import CertificateSpec, IssuedCertificate

NOW_SPEC = CertificateSpec(name="adopt", common_name="adopt", usage="client",
                           lifetime=timedelta(days=1))
SECRET = b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot-for-anyone-else\n"


@pytest.fixture(scope="module")
def pairs() -> list[IssuedCertificate]:
    ca = CertificateAuthority.bootstrap("adoption test CA")
    return [ca.issue(NOW_SPEC) for _ in range(2)]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def secret_file(tmp_path: Path) -> Path:
    """A file of someone else's, outside the install directory, readable by its owner only."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "id_ed25519"
    target.write_bytes(SECRET)
    target.chmod(0o600)
    return target


def copies_of_secret(directory: Path) -> list[Path]:
    return [Path(root) / name for root, _dirs, files in os.walk(directory) for name in files
            if not (Path(root) / name).is_symlink()
            and SECRET in (Path(root) / name).read_bytes()]


@pytest.mark.parametrize("planted", ["tls.crt", "tls.key", "ca.crt"])
def test_a_planted_symlink_is_refused_not_followed(tmp_path: Path, pairs: list[IssuedCertificate],
                                                   planted: str) -> None:
    """A visible name that is a symlink keyward did not make is refused with a clear error;
    its target is never read, so its content is never copied into the directory."""
    directory = tmp_path / "tls"
    directory.mkdir()
    (directory / "tls.crt").write_bytes(pairs[0].certificate_pem)
    (directory / "tls.key").write_bytes(pairs[0].private_key_pem)
    (directory / planted).unlink(missing_ok=True)
    (directory / planted).symlink_to(secret_file(tmp_path))
    with pytest.raises(InstallError, match="symlink") as caught:
        install_pair(directory, pairs[1])
    assert planted in str(caught.value)
    assert copies_of_secret(directory) == []
    assert (directory / planted).is_symlink()  # left for the operator to look at


def test_a_dangling_planted_symlink_is_refused(tmp_path: Path,
                                               pairs: list[IssuedCertificate]) -> None:
    """A planted symlink to nothing (yet) is refused too: its target could appear later."""
    (tmp_path / "ca.crt").symlink_to(tmp_path / "not-yet")
    with pytest.raises(InstallError, match="symlink"):
        install_pair(tmp_path, pairs[1])


def test_a_planted_fifo_is_refused_without_blocking(tmp_path: Path,
                                                    pairs: list[IssuedCertificate]) -> None:
    """Only regular files are adopted: a FIFO in place of the key is refused, not read
    (reading one would block the renewal forever)."""
    os.mkfifo(tmp_path / "tls.key")
    (tmp_path / "tls.crt").write_bytes(pairs[0].certificate_pem)
    with pytest.raises(InstallError, match="regular file"):
        install_pair(tmp_path, pairs[1])


def test_adopted_key_is_0600_even_if_the_source_was_world_readable(
        tmp_path: Path, pairs: list[IssuedCertificate]) -> None:
    """A hand-made key that was 0644 becomes a 0600 file in the adopted generation, and no
    copy of it stays readable by others."""
    (tmp_path / "tls.crt").write_bytes(pairs[0].certificate_pem)
    (tmp_path / "tls.key").write_bytes(pairs[0].private_key_pem)
    (tmp_path / "tls.key").chmod(0o644)
    installed = install_pair(tmp_path, pairs[1])
    assert installed.previous_data_dir is not None
    adopted = installed.previous_data_dir / "tls.key"
    assert adopted.read_bytes() == pairs[0].private_key_pem
    assert mode(adopted) == 0o600
    assert mode(installed.data_dir / "tls.key") == 0o600
    readable = [Path(root) / name for root, _dirs, files in os.walk(tmp_path) for name in files
                if not (Path(root) / name).is_symlink()
                and pairs[0].private_key_pem in (Path(root) / name).read_bytes()
                and mode(Path(root) / name) & 0o077]
    assert readable == []
    assert read_installed(tmp_path) == pairs[1]


def test_a_planted_lock_symlink_is_not_followed(tmp_path: Path,
                                                pairs: list[IssuedCertificate]) -> None:
    """The install lock file is not opened through a planted symlink (which would create or
    truncate a file of the attacker's choosing)."""
    target = tmp_path / "elsewhere-created"
    directory = tmp_path / "tls"
    directory.mkdir()
    (directory / "..install.lock").symlink_to(target)
    with pytest.raises(InstallError, match="symlink"):
        install_pair(directory, pairs[1])
    assert not target.exists()
