"""The subject a spec asks for, as X.509 and as Key Vault's policy subject string."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from keyward.pki.subject import asked_for, key_vault_problem, key_vault_subject, subject_name
from keyward.pki.types import CertificateSpec

SPEC = CertificateSpec(name="w", common_name="worker.keyward.test",
                       organization=("Acme, Inc.", "Acme Labs"), organizational_unit=("Ops",),
                       country="DE", state="Berlin", locality="Berlin-Mitte")


def test_the_x509_subject_is_c_st_l_o_ou_then_cn() -> None:
    """DER order most significant first; the RFC 4514 text reverses it and escapes commas."""
    name = subject_name(SPEC)
    assert [attribute.oid for attribute in name] == [
        NameOID.COUNTRY_NAME, NameOID.STATE_OR_PROVINCE_NAME, NameOID.LOCALITY_NAME,
        NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME,
        NameOID.COMMON_NAME]
    assert name.rfc4514_string() == ("CN=worker.keyward.test,OU=Ops,O=Acme Labs,"
                                     "O=Acme\\, Inc.,L=Berlin-Mitte,ST=Berlin,C=DE")


def test_a_spec_with_only_a_common_name_has_a_cn_only_subject() -> None:
    """Nothing is added that was not asked for."""
    spec = CertificateSpec(name="w", common_name="w")
    assert subject_name(spec) == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "w")])
    assert asked_for(spec) == []
    assert key_vault_subject(spec) == "CN=w"


def test_key_vaults_subject_quotes_what_its_parser_would_split() -> None:
    """Microsoft's documented form: CN first, S for the state, a comma kept by quoting."""
    assert key_vault_subject(SPEC) == ('CN=worker.keyward.test, OU=Ops, O="Acme, Inc.", '
                                       "O=Acme Labs, L=Berlin-Mitte, S=Berlin, C=DE")


@pytest.mark.parametrize("value", ["a+b", "a=b", "a<b", "a>b", "#a", "a;b", " a", "a "])
def test_every_special_character_is_quoted(value: str) -> None:
    """What ends or splits an unquoted value (and edge spaces, which would be trimmed)."""
    spec = dataclasses.replace(SPEC, organization=(value,), organizational_unit=(),
                               country=None, state=None, locality=None)
    assert key_vault_subject(spec) == f'CN=worker.keyward.test, O="{value}"'


@pytest.mark.parametrize(("field", "value"), [
    ("common_name", 'the "best" worker'), ("organization", ("Acme\\Labs",)),
    ("locality", 'Say "cheese"')])
def test_a_double_quote_or_backslash_is_refused_for_key_vault(field: str,
                                                              value: object) -> None:
    """No spelling of these means the same to Key Vault's parser and to RFC 1779/2253."""
    spec = dataclasses.replace(SPEC, **{field: value})
    found = key_vault_problem(spec)
    assert found is not None
    assert found[0] == field
    with pytest.raises(ValueError, match="double quote or a backslash"):
        key_vault_subject(spec)
