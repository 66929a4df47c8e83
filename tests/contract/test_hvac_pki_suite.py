"""Contract: hvac 2.4.0's own PKI integration tests pass against the Vault under test.

Each of hvac's 32 PKI cases is one test here, run by unittest exactly as hvac
wrote it (see :mod:`tests.contract.hvac_upstream` for what its harness is
replaced with). Skipped unless ``KEYWARD_HVAC_SOURCE`` names an unpacked hvac
2.4.0 source tree; TESTING.md says how to get one.
"""

from __future__ import annotations

import os
import unittest
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from tests.contract.conftest import VaultTarget
from tests.contract.hvac_upstream import (
    SOURCE_ENV,
    SourceError,
    Utils,
    case_names,
    load_pki_tests,
    problems,
    run_case,
    write_fixtures,
)

#: Every case in hvac 2.4.0's ``TestPki``, in unittest's (alphabetical) order.
CASES = (
    "test_create_or_update_role",
    "test_delete_issuer",
    "test_delete_role",
    "test_delete_root",
    "test_generate_certificate",
    "test_generate_intermediate",
    "test_generate_root",
    "test_list_certificates",
    "test_list_issuers",
    "test_list_roles",
    "test_read_ca_certificate",
    "test_read_ca_certificate_chain",
    "test_read_certificate",
    "test_read_crl",
    "test_read_crl_configuration",
    "test_read_issuer",
    "test_read_role",
    "test_read_urls",
    "test_revoke_certificate",
    "test_revoke_issuer",
    "test_rotate_crl",
    "test_set_crl_configuration",
    "test_set_signed_intermediate",
    "test_set_urls",
    "test_sign_certificate",
    "test_sign_intermediate",
    "test_sign_self_issued",
    "test_sign_verbatim",
    "test_submit_ca_information",
    "test_tidy",
    "test_update_issuer",
    "test_update_issuer_no_extra_param",
)

#: The mount hvac's cases use, and the prefix of the extra mounts some of them add.
HVAC_MOUNT = "pki-integration-test"


@pytest.fixture(scope="module")
def hvac_pki_suite(vault_target: VaultTarget,
                   tmp_path_factory: pytest.TempPathFactory) -> type[unittest.TestCase]:
    """hvac's ``TestPki``, bound to the Vault under test."""
    source = os.environ.get(SOURCE_ENV)
    if not source:
        pytest.skip(f"set {SOURCE_ENV} to an unpacked hvac 2.4.0 source tree (see TESTING.md)")
    fixtures = tmp_path_factory.mktemp("hvac-config-files")
    write_fixtures(fixtures)
    probe = hvac.Client(url=vault_target.url, token=vault_target.token,
                        verify=vault_target.verify)
    try:
        version = str(probe.sys.read_health_status(method="GET")["version"])
    finally:
        probe.adapter.close()

    def client() -> hvac.Client:
        return hvac.Client(url=vault_target.url, token=vault_target.token,
                           verify=vault_target.verify)

    try:
        return load_pki_tests(Path(source), client=client,
                              utils=Utils(config_dir=fixtures, server_version=version),
                              root_token=vault_target.token)
    except SourceError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def clean_hvac_mounts(root_client: hvac.Client) -> Iterator[None]:
    """Remove whatever PKI mounts a failed hvac case left behind (its tearDown may not run)."""
    yield
    for path in root_client.sys.list_mounted_secrets_engines()["data"]:
        if path.startswith(HVAC_MOUNT):
            root_client.sys.disable_secrets_engine(path)


def test_the_suite_has_the_cases_listed_here(hvac_pki_suite: type[unittest.TestCase]) -> None:
    """The loaded module has exactly the 32 cases parametrized below (none added or lost)."""
    assert tuple(case_names(hvac_pki_suite)) == CASES


@pytest.mark.usefixtures("clean_hvac_mounts")
@pytest.mark.parametrize("case", CASES)
def test_hvac_pki_case_passes(hvac_pki_suite: type[unittest.TestCase], case: str) -> None:
    """hvac's own PKI case passes against this Vault, unchanged."""
    result = run_case(hvac_pki_suite, case)

    assert not result.skipped, f"hvac skipped {case}: {result.skipped[0][1]}"
    details = "\n".join(problems(result))
    assert result.wasSuccessful(), f"hvac's {case} failed:\n{details}"
