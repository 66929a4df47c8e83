"""Azure Key Vault, as keyward uses it: one vault + certificate with its error mapping
(:mod:`.vault`), the PEM/PKCS#12 handling of what the vault exports (:mod:`.pem`),
and a certificate authority kept in a vault (:mod:`.ca`).

The issuer (:mod:`keyward.issuers.azure_keyvault`) and the store
(:mod:`keyward.stores.azure_keyvault`) are built on these. Everything here needs the
``azure`` extra, so keyward imports it only where a certificate is set to use Key Vault.
"""
