"""A certificate's subject: its common name and the rest of its distinguished name.

One place turns a spec's ``common_name``, ``organization``, ``organizational_unit``,
``country``, ``state`` and ``locality`` into what each backend reads: an
:class:`x509.Name` for keyward's own CA and for the CSR cert-manager signs, and the subject
string of an Azure Key Vault certificate policy. The validator reads the same table to
check an issued certificate carries what was asked for.

Key Vault's subject string is not RFC 4514: the service parses it as Windows does an
X.500 name (Microsoft's own example is ``CN = docs.microsoft.com, OU = Microsoft
Corporation, O = Microsoft Corporation, L = Redmond, S = WA, C = US``), where a value that
holds a comma is put in double quotes (``OU="Docs,Contoso"``) and a backslash escapes
nothing; RFC 4514's ``O=Contoso\\, Ltd.`` is refused ("not a valid X500 name"). So the
string is written in that form, most specific first, values quoted when they need it; a
value with a double quote or a backslash has no spelling both parsers agree on and is
refused.
"""

from __future__ import annotations

from typing import Final, Protocol

from cryptography import x509
from cryptography.x509.oid import NameOID


class SubjectFields(Protocol):
    """What a subject is made of (a CertificateSpec has these; so does a CA's request)."""

    @property
    def common_name(self) -> str: ...
    @property
    def organization(self) -> tuple[str, ...]: ...
    @property
    def organizational_unit(self) -> tuple[str, ...]: ...
    @property
    def country(self) -> str | None: ...
    @property
    def state(self) -> str | None: ...
    @property
    def locality(self) -> str | None: ...


#: (field, OID, RFC 4514 label, Key Vault label), most significant first: the order of
#: the RDNs in the DER subject (C, ST, L, O, OU), the common name after them.
ATTRIBUTES: Final = (
    ("country", NameOID.COUNTRY_NAME, "C", "C"),
    ("state", NameOID.STATE_OR_PROVINCE_NAME, "ST", "S"),
    ("locality", NameOID.LOCALITY_NAME, "L", "L"),
    ("organization", NameOID.ORGANIZATION_NAME, "O", "O"),
    ("organizational_unit", NameOID.ORGANIZATIONAL_UNIT_NAME, "OU", "OU"),
)

#: Characters that make Key Vault's X.500 parser end or split a value unless it is quoted.
_QUOTE_FOR: Final = frozenset(',+=<>#;\r\n')
#: Characters no quoting carries through both Key Vault's parser and RFC 1779/2253 alike.
_NOT_IN_KEY_VAULT: Final = frozenset('"\\')


def values_of(fields: SubjectFields, field: str) -> tuple[str, ...]:
    """The values a subject field asks for (none, one or several)."""
    value: str | tuple[str, ...] | None = getattr(fields, field)
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def asked_for(fields: SubjectFields) -> list[tuple[x509.ObjectIdentifier, str, tuple[str, ...]]]:
    """``(OID, label, values)`` of each subject attribute besides the CN that is set."""
    return [(oid, label, values) for field, oid, label, _ in ATTRIBUTES
            if (values := values_of(fields, field))]


def subject_name(fields: SubjectFields) -> x509.Name:
    """The subject as X.509: C, ST, L, O…, OU…, then CN. ValueError if cryptography refuses
    a value (a CN over 64 characters, a country code that is not two letters)."""
    attributes = [x509.NameAttribute(oid, value)
                  for oid, _, values in asked_for(fields) for value in values]
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, fields.common_name)])


def key_vault_subject(fields: SubjectFields) -> str:
    """The subject string of a Key Vault certificate policy, as Microsoft documents it.

    Most specific first (``CN=…, OU=…, O=…, L=…, S=…, C=…``), ``", "`` between RDNs, a
    value that holds one of ``, + = < > # ;`` (or starts or ends with a space) in double
    quotes. ValueError for a value with ``"`` or ``\\`` (see the module's docstring).
    """
    if found := key_vault_problem(fields):
        raise ValueError(found[1])
    parts = [f"CN={_key_vault_value(fields.common_name)}"]
    for field, _, _, label in reversed(ATTRIBUTES):
        parts += [f"{label}={_key_vault_value(value)}" for value in values_of(fields, field)]
    return ", ".join(parts)


def key_vault_problem(fields: SubjectFields) -> tuple[str, str] | None:
    """``(field, why)`` when Key Vault's subject syntax cannot carry this subject, else None."""
    for field in ("common_name", *(attribute[0] for attribute in ATTRIBUTES)):
        for value in values_of(fields, field):
            if _NOT_IN_KEY_VAULT & set(value):
                return field, (f"{value!r} holds a double quote or a backslash, which Key Vault's "
                        "subject syntax has no agreed way to write (values with , + = < > # ; "
                        "are quoted for it; these two cannot be)")
    return None


def _key_vault_value(value: str) -> str:
    if _QUOTE_FOR & set(value) or value != value.strip():
        return f'"{value}"'
    return value
