"""install_pair / read_installed: the Kubernetes-style layout, modes, generations."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import InstallError, install_pair, read_installed
from keyward.pki.types import CertificateSpec, IssuedCertificate
from tests.pki.support import NOW

SPEC = CertificateSpec(name="worker", common_name="keyward-worker")


@pytest.fixture(scope="module")
def pairs(ca: CertificateAuthority) -> list[IssuedCertificate]:
    return [ca.issue(SPEC, now=NOW) for _ in range(4)]


def generations(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()
                  if p.name.startswith("..20") and p.is_dir())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_visible_names_are_symlinks_into_data(tmp_path: Path,
                                              pairs: list[IssuedCertificate]) -> None:
    """tls.crt, tls.key and ca.crt are symlinks to ..data/<name>; ..data names a generation."""
    installed = install_pair(tmp_path, pairs[0])
    for name in ("tls.crt", "tls.key", "ca.crt"):
        assert os.readlink(tmp_path / name) == f"..data/{name}"
    assert os.readlink(tmp_path / "..data") == installed.data_dir.name
    assert installed.previous_data_dir is None
    assert (tmp_path / "tls.crt").read_bytes() == pairs[0].certificate_pem
    assert (tmp_path / "ca.crt").read_bytes() == pairs[0].ca_pem


def test_modes_are_0600_for_the_key_and_0644_otherwise(tmp_path: Path,
                                                       pairs: list[IssuedCertificate]) -> None:
    """The key is owner-only whatever the umask; certificates are world-readable."""
    old_umask = os.umask(0o077)
    try:
        installed = install_pair(tmp_path, pairs[0])
    finally:
        os.umask(old_umask)
    assert mode(installed.data_dir / "tls.key") == 0o600
    assert mode(installed.data_dir / "tls.crt") == 0o644
    assert mode(installed.data_dir / "ca.crt") == 0o644
    assert mode(installed.data_dir) == 0o755


@pytest.mark.parametrize("keep_previous", [1, 2])
def test_exactly_the_configured_previous_generations_are_kept(
        tmp_path: Path, pairs: list[IssuedCertificate], keep_previous: int) -> None:
    """After several installs: the current generation plus keep_previous older ones."""
    results = [install_pair(tmp_path, pair, keep_previous=keep_previous) for pair in pairs]
    expected = [r.data_dir.name for r in results[-1 - keep_previous:]]
    assert generations(tmp_path) == expected
    assert results[-1].previous_data_dir == results[-2].data_dir


def test_read_installed_returns_the_last_pair(tmp_path: Path,
                                              pairs: list[IssuedCertificate]) -> None:
    """read_installed gives back exactly what the last install wrote."""
    assert read_installed(tmp_path) is None
    install_pair(tmp_path, pairs[0])
    install_pair(tmp_path, pairs[1])
    assert read_installed(tmp_path) == pairs[1]


def test_custom_names(tmp_path: Path, pairs: list[IssuedCertificate]) -> None:
    """The visible names are configurable, for servers that expect other file names."""
    install_pair(tmp_path, pairs[0], cert_name="server.pem", key_name="server-key.pem",
                 ca_name="root.pem")
    assert os.readlink(tmp_path / "server-key.pem") == "..data/server-key.pem"
    assert read_installed(tmp_path, cert_name="server.pem", key_name="server-key.pem",
                          ca_name="root.pem") == pairs[0]


def test_plain_files_are_adopted_as_the_previous_generation(
        tmp_path: Path, pairs: list[IssuedCertificate]) -> None:
    """A hand-made pair is kept as the previous generation, its names become symlinks."""
    (tmp_path / "tls.crt").write_bytes(pairs[0].certificate_pem)
    (tmp_path / "tls.key").write_bytes(pairs[0].private_key_pem)
    (tmp_path / "unrelated.txt").write_text("left alone")
    installed = install_pair(tmp_path, pairs[1])
    assert installed.previous_data_dir is not None
    assert (installed.previous_data_dir / "tls.key").read_bytes() == pairs[0].private_key_pem
    assert mode(installed.previous_data_dir / "tls.key") == 0o600
    assert not (installed.previous_data_dir / "ca.crt").exists()
    assert (tmp_path / "tls.crt").is_symlink()
    assert read_installed(tmp_path) == pairs[1]
    assert (tmp_path / "unrelated.txt").read_text() == "left alone"


def test_a_pair_without_ca_removes_the_ca_link(tmp_path: Path,
                                               pairs: list[IssuedCertificate]) -> None:
    """If the new pair has no CA, ca.crt goes away rather than dangle or show a stale CA."""
    install_pair(tmp_path, pairs[0])
    without_ca = IssuedCertificate(pairs[1].certificate_pem, pairs[1].private_key_pem)
    install_pair(tmp_path, without_ca)
    assert not (tmp_path / "ca.crt").is_symlink()
    assert read_installed(tmp_path) == without_ca


@pytest.mark.parametrize(("certificate", "key"), [(b"", b"key"), (b"cert", b""),
                                                  (b"cert", b"  \n"), (b" \n", b"key")])
def test_empty_certificate_or_key_is_refused(tmp_path: Path, certificate: bytes,
                                             key: bytes) -> None:
    """Nothing is written for an empty certificate or key."""
    with pytest.raises(InstallError, match="empty"):
        install_pair(tmp_path / "d", IssuedCertificate(certificate, key))
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(("cert_name", "key_name"), [
    ("same", "same"), ("tls.crt", "../escape.key"), ("..data", "tls.key"), ("tls.crt", ""),
])
def test_bad_names_are_refused(tmp_path: Path, pairs: list[IssuedCertificate],
                               cert_name: str, key_name: str) -> None:
    """Names must be distinct plain file names outside the reserved '..' namespace."""
    with pytest.raises(InstallError):
        install_pair(tmp_path, pairs[0], cert_name=cert_name, key_name=key_name)
    assert list(tmp_path.iterdir()) == []


def test_keep_previous_below_one_is_refused(tmp_path: Path,
                                            pairs: list[IssuedCertificate]) -> None:
    """A reader mid-read of the previous generation must not lose it."""
    with pytest.raises(InstallError, match="at least 1"):
        install_pair(tmp_path, pairs[0], keep_previous=0)


def test_a_directory_in_the_way_is_refused(tmp_path: Path,
                                           pairs: list[IssuedCertificate]) -> None:
    """A directory named tls.key is not deleted to make room."""
    (tmp_path / "tls.key").mkdir()
    with pytest.raises(InstallError, match="is a directory"):
        install_pair(tmp_path, pairs[0])
    assert (tmp_path / "tls.key").is_dir()
