"""Azure Key Vault, as keyward uses it: one vault + certificate with its error mapping
(:mod:`.vault`), and the PEM/PKCS#12 handling of what the vault exports (:mod:`.pem`).

The issuer (:mod:`keyward.issuers.azure_keyvault`) and the store
(:mod:`keyward.stores.azure_keyvault`) are built on these. Everything here needs the
``azure`` extra, so keyward imports it only where a certificate is set to use Key Vault.
"""
