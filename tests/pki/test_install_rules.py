"""install_pair's housekeeping rules: what counts as a generation or a leftover, which
names are plain, how generations stay ordered, and what an adoption reads."""

from __future__ import annotations

import dataclasses
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keyward.pki import install as install_module
from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import InstallError, atomic_write, install_pair, read_installed
from keyward.pki.types import CertificateSpec, IssuedCertificate
from tests.pki.support import NOW

SPEC = CertificateSpec(name="worker", common_name="keyward-worker")
FORMAT = "%Y_%m_%d_%H_%M_%S.%f"


@pytest.fixture(scope="module")
def pairs(ca: CertificateAuthority) -> list[IssuedCertificate]:
    return [ca.issue(SPEC, now=NOW) for _ in range(3)]


def generation_dirs(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()
                  if p.name.startswith("..") and p.is_dir() and not p.is_symlink())


def test_atomic_write_creates_missing_parents_and_replaces(tmp_path: Path) -> None:
    """atomic_write makes missing parent directories and replaces an existing file."""
    path = tmp_path / "a" / "b" / "f.pem"
    atomic_write(path, b"one", mode=0o600)
    atomic_write(path, b"two", mode=0o644)
    assert path.read_bytes() == b"two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.pem"]


def test_a_failed_atomic_write_leaves_no_scratch_file_and_raises(tmp_path: Path) -> None:
    """If the rename fails (a directory in the way), the error propagates and the scratch
    file is removed."""
    (tmp_path / "f.pem").mkdir()
    (tmp_path / "f.pem" / "keep").write_text("x")
    with pytest.raises(OSError):  # noqa: PT011 - the OS decides which
        atomic_write(tmp_path / "f.pem", b"data", mode=0o644)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pem"]


def test_install_creates_a_nested_directory_and_keeps_one_previous_by_default(
        tmp_path: Path, pairs: list[IssuedCertificate]) -> None:
    """A missing directory (and its parents) is created; by default one previous generation
    is kept; the result is a frozen value."""
    directory = tmp_path / "x" / "y"
    results = [install_pair(directory, pair) for pair in pairs]
    assert generation_dirs(directory) == [results[-2].data_dir.name, results[-1].data_dir.name]
    with pytest.raises(dataclasses.FrozenInstanceError):
        results[-1].directory = tmp_path  # type: ignore[misc]


def test_every_step_is_reported_to_the_hook(tmp_path: Path,
                                            pairs: list[IssuedCertificate]) -> None:
    """``on_step`` is called before each step, in order (the crash tests rely on it)."""
    steps: list[str] = []
    install_pair(tmp_path, pairs[0], on_step=steps.append)
    assert steps[:3] == ["recover", "adopt", "mkdir"]
    assert steps[-2:] == ["swap", "prune"]


def test_a_blank_ca_is_not_installed_and_a_first_install_without_ca_works(
        tmp_path: Path, pairs: list[IssuedCertificate]) -> None:
    """A CA of only whitespace counts as none: no ca.crt, nothing to remove the first time."""
    blank = IssuedCertificate(pairs[0].certificate_pem, pairs[0].private_key_pem, b" \n")
    installed = install_pair(tmp_path, blank)
    assert not (tmp_path / "ca.crt").exists()
    assert not (installed.data_dir / "ca.crt").exists()


@pytest.mark.parametrize("bad", ["sub/tls.crt", ".", "..x"])
def test_names_must_be_plain(tmp_path: Path, pairs: list[IssuedCertificate], bad: str) -> None:
    """A name with a ``/``, ``.`` itself, or one starting with ``..`` is refused."""
    with pytest.raises(InstallError, match="invalid file name"):
        install_pair(tmp_path, pairs[0], ca_name=bad)


def test_a_lock_path_that_cannot_be_opened_raises_its_error(
        tmp_path: Path, pairs: list[IssuedCertificate]) -> None:
    """Opening the lock fails for a reason other than a symlink: that error is raised."""
    (tmp_path / "..install.lock").mkdir()
    with pytest.raises(IsADirectoryError):
        install_pair(tmp_path, pairs[0])


def test_only_real_generation_directories_are_generations(
        tmp_path: Path, pairs: list[IssuedCertificate]) -> None:
    """A file, or a symlink to a directory, named like a generation is neither pruned nor
    treated as a crash leftover: it is left where it is."""
    name = "..2020_01_01_00_00_00.000000_0badf00d"
    link = "..2021_01_01_00_00_00.000000_0badf00d"
    (tmp_path / name).write_text("not a generation")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / link)
    install_pair(tmp_path, pairs[0])
    install_pair(tmp_path, pairs[1])
    install_pair(tmp_path, pairs[2])
    assert (tmp_path / name).read_text() == "not a generation"
    assert (tmp_path / link).is_symlink()
    assert (tmp_path / "elsewhere").is_dir()


def test_never_swapped_generations_are_removed_older_ones_kept(
        tmp_path: Path, pairs: list[IssuedCertificate]) -> None:
    """A generation newer than ``..data`` (a crashed install) is deleted by the next
    install; without any ``..data``, every generation is a leftover."""
    fresh = tmp_path / "fresh"
    leftover = fresh / "..2020_01_01_00_00_00.000000_0000abcd"
    leftover.mkdir(parents=True)
    install_pair(fresh, pairs[0])
    assert not leftover.exists()

    first = install_pair(tmp_path / "d", pairs[0])
    crashed = tmp_path / "d" / (first.data_dir.name[:2] + "2999" + first.data_dir.name[6:])
    crashed.mkdir()
    second = install_pair(tmp_path / "d", pairs[1])
    assert not crashed.exists()
    assert generation_dirs(tmp_path / "d") == [first.data_dir.name, second.data_dir.name]


def test_only_our_tmp_symlinks_are_removed(tmp_path: Path,
                                           pairs: list[IssuedCertificate]) -> None:
    """``..<name>_tmp`` symlinks are leftovers; another ``*_tmp`` symlink, or a ``.._tmp``
    regular file, is someone else's and stays."""
    os.symlink("..data/tls.crt", tmp_path / "..data_tmp")
    os.symlink("anywhere", tmp_path / "backup_tmp")
    (tmp_path / "..notes_tmp").write_text("mine")
    install_pair(tmp_path, pairs[0])
    assert not (tmp_path / "..data_tmp").is_symlink()
    assert (tmp_path / "backup_tmp").is_symlink()
    assert (tmp_path / "..notes_tmp").read_text() == "mine"


def test_a_planted_symlink_to_a_directory_is_refused_as_a_symlink(
        tmp_path: Path, pairs: list[IssuedCertificate]) -> None:
    """A visible name planted as a symlink is refused for being one, also when its target
    is a directory."""
    (tmp_path / "target").mkdir()
    directory = tmp_path / "tls"
    directory.mkdir()
    os.symlink(tmp_path / "target", directory / "ca.crt")
    with pytest.raises(InstallError, match="symlink keyward did not make"):
        install_pair(directory, pairs[0])


def test_adoption_refuses_a_symlink_planted_inside_the_current_generation(
        tmp_path: Path, pairs: list[IssuedCertificate]) -> None:
    """When a hand-made file is adopted, the other names are read from the current
    generation, and a symlink planted there is refused, not followed."""
    installed = install_pair(tmp_path, pairs[0])
    (tmp_path / "secret").write_text("someone else's")
    (installed.data_dir / "ca.crt").unlink()
    os.symlink(tmp_path / "secret", installed.data_dir / "ca.crt")
    (tmp_path / "tls.crt").unlink()
    (tmp_path / "tls.crt").write_bytes(pairs[1].certificate_pem)
    with pytest.raises(InstallError, match="symlink keyward did not make"):
        install_pair(tmp_path, pairs[2])


def test_adopting_a_socket_raises_the_os_error(tmp_path: Path,
                                               pairs: list[IssuedCertificate]) -> None:
    """A planted socket cannot be opened: that error is raised as it is."""
    path = str(tmp_path / "tls.crt")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        with pytest.raises(OSError, match="No such device"):
            install_pair(tmp_path, pairs[0])


def test_a_hand_made_key_without_certificate_is_still_adopted(
        tmp_path: Path, pairs: list[IssuedCertificate]) -> None:
    """Adoption reads every name that exists: a missing certificate does not stop the key
    and CA after it from being kept as the previous generation."""
    (tmp_path / "tls.key").write_bytes(pairs[0].private_key_pem)
    (tmp_path / "ca.crt").write_bytes(b"ca")
    installed = install_pair(tmp_path, pairs[1])
    assert installed.previous_data_dir is not None
    assert (installed.previous_data_dir / "tls.key").read_bytes() == pairs[0].private_key_pem
    assert (installed.previous_data_dir / "ca.crt").read_bytes() == b"ca"


def test_a_generation_is_named_after_the_newest_even_if_the_clock_is_behind(
        tmp_path: Path, pairs: list[IssuedCertificate]) -> None:
    """Generation names sort in installation order: with generations from 2020 and (clock
    skew) 2999 present, the next one is named 2999 plus one microsecond."""
    first = install_pair(tmp_path, pairs[0])
    future = datetime(2999, 1, 1, tzinfo=UTC)
    future_name = f"..{future.strftime(FORMAT)}_00c0ffee"
    os.rename(first.data_dir, tmp_path / future_name)
    (tmp_path / "..2020_01_01_00_00_00.000000_00000001").mkdir()
    os.unlink(tmp_path / "..data")
    os.symlink(future_name, tmp_path / "..data")
    second = install_pair(tmp_path, pairs[1], keep_previous=2)
    expected = (future + timedelta(microseconds=1)).strftime(FORMAT)
    assert second.data_dir.name.startswith(f"..{expected}_")
    assert read_installed(tmp_path) == pairs[1]


def test_a_write_failing_before_its_scratch_file_exists_raises_its_own_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If writing fails before the scratch file was created, that error propagates (the
    cleanup of a file that never existed does not replace it)."""
    def failing(_path: Path, _data: bytes, _mode: int) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("keyward.pki.install._write_new_file", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "f.pem", b"data", mode=0o644)


@pytest.mark.parametrize(("stale_reads", "found"), [(0, True), (1, True), (2, True),
                                                    (3, False)])
def test_reading_re_resolves_a_generation_pruned_under_it_three_times(
        tmp_path: Path, pairs: list[IssuedCertificate], monkeypatch: pytest.MonkeyPatch,
        stale_reads: int, found: bool) -> None:
    """When the generation ``..data`` named is gone by the time its files are read (two
    installs in a row), read_installed resolves ``..data`` again, up to three attempts."""
    install_pair(tmp_path, pairs[0])
    real = install_module._current_generation
    answers = ["..2020_01_01_00_00_00.000000_00000000"] * stale_reads

    def resolve(directory: Path) -> str | None:
        return answers.pop(0) if answers else real(directory)

    monkeypatch.setattr(install_module, "_current_generation", resolve)
    assert (read_installed(tmp_path) == pairs[0]) is found


def test_without_data_link_missing_files_mean_no_pair(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory without ``..data`` and without the files holds no pair: None at once,
    without retrying."""
    calls: list[Path] = []
    real = install_module._current_generation

    def resolve(directory: Path) -> str | None:
        calls.append(directory)
        return real(directory)

    monkeypatch.setattr(install_module, "_current_generation", resolve)
    assert read_installed(tmp_path) is None
    assert len(calls) == 1


def test_a_ca_file_missing_from_a_generation_no_longer_current_is_read_again(
        tmp_path: Path, pairs: list[IssuedCertificate], monkeypatch: pytest.MonkeyPatch) -> None:
    """A generation being pruned loses its files one by one: its certificate and key read,
    its ca.crt already gone. That is not "a pair without CA": read_installed sees ``..data``
    moved on and reads the current generation instead (it used to return the old pair
    with ``ca_pem=None``)."""
    install_pair(tmp_path, pairs[0])
    stale = install_module._current_generation(tmp_path)
    assert stale is not None
    (tmp_path / stale / "ca.crt").unlink()  # pruning under way
    install_pair(tmp_path, pairs[1])  # ..data now names another generation
    real = install_module._current_generation
    answers = [stale]  # the reader resolved ..data just before the swap

    def resolve(directory: Path) -> str | None:
        return answers.pop(0) if answers else real(directory)

    monkeypatch.setattr(install_module, "_current_generation", resolve)
    assert read_installed(tmp_path) == pairs[1]


def test_a_current_generation_without_ca_file_is_a_pair_without_ca(
        tmp_path: Path, pairs: list[IssuedCertificate]) -> None:
    """While the generation is still current, a missing ca.crt means the pair has none."""
    install_pair(tmp_path, dataclasses.replace(pairs[0], ca_pem=None))
    assert read_installed(tmp_path) == dataclasses.replace(pairs[0], ca_pem=None)
