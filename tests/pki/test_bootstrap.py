"""bootstrap_local_pki: the certstrap-like layout, and never clobbering a CA by accident."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keyward.errors import KeywardError
from keyward.pki.bootstrap import BootstrapError, bootstrap_local_pki, describe, issue_local_pair
from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import read_installed
from keyward.pki.types import CertificateSpec
from keyward.pki.validate import validate_pair
from tests.pki.support import NOW

FILES = ["ca.crt", "ca.key", "server/tls.crt", "server/tls.key", "server/ca.crt",
         "client/tls.crt", "client/tls.key", "client/ca.crt"]


def test_layout_and_every_file_is_described(tmp_path: Path) -> None:
    """CA at the top, server/ and client/ pairs installed atomically; describe() has one
    line per file, naming it."""
    result = bootstrap_local_pki(tmp_path, now=NOW)
    assert [str(f.path.relative_to(tmp_path)) for f in result.files] == FILES
    lines = describe(result)
    assert len(lines) == len(FILES)
    for line, name in zip(lines, FILES, strict=True):
        assert line.startswith(f"{tmp_path / name}: ")
    assert (tmp_path / "server" / "tls.crt").is_symlink()
    for key in ("ca.key", "server/..data/tls.key", "client/..data/tls.key"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o600
    assert "valid until" in lines[2]


def test_pairs_validate_against_the_ca_with_their_specs(tmp_path: Path) -> None:
    """Server: serverAuth with localhost and 127.0.0.1; client: clientAuth, 30 days."""
    bootstrap_local_pki(tmp_path, now=NOW)
    ca_pem = (tmp_path / "ca.crt").read_bytes()
    server_spec = CertificateSpec(name="server", common_name="localhost", usage="server",
                                  dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    client_spec = CertificateSpec(name="client", common_name="keyward-worker")
    for directory, spec, lifetime in (("server", server_spec, timedelta(days=365)),
                                      ("client", client_spec, timedelta(days=30))):
        pair = read_installed(tmp_path / directory)
        assert pair is not None
        assert pair.ca_pem == ca_pem
        summary = validate_pair(pair.certificate_pem, pair.private_key_pem, ca_pem=ca_pem,
                                now=NOW, spec=spec)
        assert summary.not_after == (NOW + lifetime).replace(microsecond=0)


def test_an_existing_ca_is_not_replaced_without_overwrite(tmp_path: Path) -> None:
    """A second bootstrap is refused with a KeywardError naming the file; the CA stays."""
    bootstrap_local_pki(tmp_path, now=NOW)
    before = (tmp_path / "ca.crt").read_bytes()
    with pytest.raises(BootstrapError, match=r"ca\.crt.*already exists.*overwrite") as caught:
        bootstrap_local_pki(tmp_path, now=NOW)
    assert isinstance(caught.value, KeywardError)
    assert (tmp_path / "ca.crt").read_bytes() == before


def test_a_lone_ca_key_also_blocks_bootstrap(tmp_path: Path) -> None:
    """Even a key without its certificate is somebody's CA."""
    (tmp_path / "ca.key").write_text("not ours to delete")
    with pytest.raises(BootstrapError, match=r"ca\.key"):
        bootstrap_local_pki(tmp_path, now=NOW)


def test_overwrite_replaces_the_ca_and_reissues_the_pairs(tmp_path: Path) -> None:
    """With overwrite=True a new CA is made and the pairs move to it (old kept as previous)."""
    first = bootstrap_local_pki(tmp_path, now=NOW)
    second = bootstrap_local_pki(tmp_path, now=NOW, overwrite=True)
    assert first.ca.ca_pem != second.ca.ca_pem
    assert second.server.previous_data_dir == first.server.data_dir
    loaded = CertificateAuthority.load(tmp_path / "ca.crt", tmp_path / "ca.key")
    assert loaded.ca_pem == second.ca.ca_pem


def test_custom_names_and_real_clock(tmp_path: Path) -> None:
    """Custom CN, SANs and lifetimes are honoured; without now= the current time is used."""
    result = bootstrap_local_pki(tmp_path, server_common_name="temporal",
                                 server_dns_names=("temporal.internal",),
                                 server_ips=("10.0.0.1",), client_common_name="worker-7",
                                 client_lifetime=timedelta(hours=1))
    pair = read_installed(result.client.directory)
    assert pair is not None
    summary = validate_pair(pair.certificate_pem, pair.private_key_pem, ca_pem=pair.ca_pem,
                            now=datetime.now(UTC))
    assert summary.subject == "CN=worker-7"
    assert summary.not_after - summary.not_before == timedelta(hours=1, minutes=1)
    assert "temporal.internal, temporal, 10.0.0.1" in describe(result)[2]


def test_issue_adds_a_pair_from_the_same_ca(tmp_path: Path) -> None:
    """`pki issue`: e.g. Temporal's internode pair, presented as server and as client."""
    bootstrap_local_pki(tmp_path, now=NOW)
    spec = CertificateSpec(name="internode", common_name="temporal-internode",
                           dns_names=("temporal",), ip_addresses=("127.0.0.1",), usage="both",
                           lifetime=timedelta(days=365))
    written = issue_local_pair(tmp_path, spec, now=NOW)
    assert [f.path.name for f in written] == ["tls.crt", "tls.key", "ca.crt"]
    pair = read_installed(tmp_path / "internode")
    assert pair is not None
    summary = validate_pair(pair.certificate_pem, pair.private_key_pem,
                            ca_pem=(tmp_path / "ca.crt").read_bytes(), now=NOW, spec=spec)
    assert set(summary.usages) == {"server", "client"}
    assert "temporal" in summary.dns_names


def test_issue_without_a_ca_or_with_a_path_as_name_is_refused(tmp_path: Path) -> None:
    spec = CertificateSpec(name="ui", common_name="temporal-ui", usage="client",
                           lifetime=timedelta(days=30))
    with pytest.raises(BootstrapError, match=r"no local CA .* run `starter\.py pki bootstrap`"):
        issue_local_pair(tmp_path, spec, now=NOW)
    bootstrap_local_pki(tmp_path, now=NOW)
    escaping = CertificateSpec(name="../ui", common_name="temporal-ui", usage="client",
                               lifetime=timedelta(days=30))
    with pytest.raises(BootstrapError, match="plain directory name"):
        issue_local_pair(tmp_path, escaping, now=NOW)
    assert not (tmp_path.parent / "ui").exists()
