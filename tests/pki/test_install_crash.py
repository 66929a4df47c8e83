"""Crash safety of install_pair: killed anywhere, the directory still holds a matched,
valid pair, and the next install cleans up what the dead one left.

The installer runs in a forked child (cheap: no interpreter start, cryptography already
imported) that is either SIGKILLed after a random delay or ``os._exit``s itself at a
chosen step through the ``on_step`` hook.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import StepHook, install_pair, read_installed
from keyward.pki.types import CertificateSpec, IssuedCertificate
from keyward.pki.validate import validate_pair
from tests.pki.support import NOW

SPEC = CertificateSpec(name="worker", common_name="keyward-worker")
CRASHED = 17
KILL_ITERATIONS = 200
READER_ROUNDS = 60
NAMES = ("tls.crt", "tls.key", "ca.crt")


@pytest.fixture(scope="module")
def pair_a(ca: CertificateAuthority) -> IssuedCertificate:
    return ca.issue(SPEC, now=NOW)


@pytest.fixture(scope="module")
def pair_b(ca: CertificateAuthority) -> IssuedCertificate:
    return ca.issue(SPEC, now=NOW)


def in_child(work: Callable[[], object]) -> int:
    """Fork, run ``work`` in the child, never return there; the child's pid to the parent."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        try:
            work()
        finally:
            os._exit(0)
    return pid


def exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def assert_matched_valid_pair(directory: Path, ca: CertificateAuthority,
                              allowed: list[IssuedCertificate]) -> IssuedCertificate:
    """Both the ..data snapshot and the visible names hold one of ``allowed``, validated."""
    snapshot = read_installed(directory)
    assert snapshot in allowed
    visible = IssuedCertificate(*((directory / name).read_bytes() for name in NAMES))
    assert visible == snapshot
    validate_pair(snapshot.certificate_pem, snapshot.private_key_pem, ca_pem=ca.ca_pem,
                  now=NOW, spec=SPEC)
    return snapshot


def assert_clean(directory: Path, keep_previous: int = 1) -> None:
    """Only the visible links, ..data, the lock and complete generations remain."""
    entries = {path.name for path in directory.iterdir()}
    generations = {name for name in entries if name.startswith("..20")}
    assert entries - generations == {*NAMES, "..data", "..install.lock"}
    assert len(generations) == 1 + keep_previous
    for name in generations:
        assert sorted(p.name for p in (directory / name).iterdir()) == sorted(NAMES)


def leftovers(directory: Path) -> bool:
    entries = [path.name for path in directory.iterdir()]
    return any(name.endswith("_tmp") for name in entries) or \
        sum(name.startswith("..20") for name in entries) > 2


def test_sigkill_at_random_moments_never_leaves_a_mixed_pair(
        tmp_path: Path, ca: CertificateAuthority, pair_a: IssuedCertificate,
        pair_b: IssuedCertificate) -> None:
    """200 times: a child installs A, B, A, ... until SIGKILLed 0-5 ms in; the directory
    holds A or B intact, and the next install recovers to a clean layout."""
    install_pair(tmp_path, pair_a)
    install_pair(tmp_path, pair_b)
    rng = random.Random(20260301)  # reproducible kill times
    interrupted = 0

    def keep_installing() -> None:
        while True:
            install_pair(tmp_path, pair_a)
            install_pair(tmp_path, pair_b)

    for iteration in range(KILL_ITERATIONS):
        pid = in_child(keep_installing)
        time.sleep(rng.uniform(0, 0.005))
        os.kill(pid, signal.SIGKILL)
        assert exit_code(pid) == -signal.SIGKILL
        interrupted += leftovers(tmp_path)
        assert_matched_valid_pair(tmp_path, ca, [pair_a, pair_b])
        recovery = pair_a if iteration % 2 else pair_b
        install_pair(tmp_path, recovery)
        assert read_installed(tmp_path) == recovery
        assert_clean(tmp_path)
    # Guard against a test that never actually killed an install midway.
    assert interrupted > KILL_ITERATIONS // 10


def crash_at_step(target: int) -> StepHook:
    """A hook that ends the process, as abruptly as a power cut, at step number ``target``."""
    calls = itertools.count()

    def hook(_: str) -> None:
        if next(calls) == target:
            os._exit(CRASHED)

    return hook


def recorded_steps(directory: Path, pair: IssuedCertificate) -> list[str]:
    """The steps an install into ``directory`` takes, recorded on a throwaway copy."""
    steps: list[str] = []
    install_pair(directory, pair, on_step=steps.append)
    return steps


def prepare_installed(directory: Path, old: IssuedCertificate) -> None:
    install_pair(directory, old)
    install_pair(directory, old)


def prepare_plain_files(directory: Path, old: IssuedCertificate) -> None:
    directory.mkdir()
    (directory / "tls.crt").write_bytes(old.certificate_pem)
    (directory / "tls.key").write_bytes(old.private_key_pem)
    (directory / "ca.crt").write_bytes(old.ca_pem or b"")


@pytest.mark.parametrize("prepare", [prepare_installed, prepare_plain_files],
                         ids=["over-an-install", "over-plain-files"])
def test_crash_at_every_step_leaves_old_or_new_pair(
        tmp_path: Path, ca: CertificateAuthority, pair_a: IssuedCertificate,
        pair_b: IssuedCertificate, prepare: Callable[[Path, IssuedCertificate], None]) -> None:
    """Exiting at each step of an install leaves the old pair before the ..data swap and
    the new one from then on; the next install always ends clean."""
    prepare(tmp_path / "record", pair_a)
    steps = recorded_steps(tmp_path / "record", pair_b)
    assert "swap" in steps
    for index, step in enumerate(steps):
        directory = tmp_path / f"crash-{index}"
        prepare(directory, pair_a)

        pid = in_child(functools.partial(install_pair, directory, pair_b,
                                         on_step=crash_at_step(index)))
        assert exit_code(pid) == CRASHED, f"did not crash at step {step}"
        expected = pair_b if index > steps.index("swap") else pair_a
        assert assert_matched_valid_pair(directory, ca, [pair_a, pair_b]) == expected, step
        install_pair(directory, pair_b)
        assert_clean(directory)


def test_readers_never_see_a_mixed_pair_during_installs(
        tmp_path: Path, pair_a: IssuedCertificate, pair_b: IssuedCertificate) -> None:
    """read_installed, racing 120 installs in another process, always gets A or B whole."""
    install_pair(tmp_path, pair_a)

    def install_many() -> None:
        for _ in range(READER_ROUNDS):
            install_pair(tmp_path, pair_b)
            install_pair(tmp_path, pair_a)

    pid = in_child(install_many)
    reads, running = 0, True
    try:
        while running:
            running = os.waitpid(pid, os.WNOHANG) == (0, 0)
            assert read_installed(tmp_path) in (pair_a, pair_b)
            reads += 1
    finally:
        if running:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert reads > 1
