"""Where an issued certificate is installed and read back: files, a Kubernetes Secret or
an Azure Key Vault certificate, each behind :class:`keyward.stores.base.CertificateStore`.

:func:`keyward.stores.factory.store_for` picks one from a certificate's ``install``
setting; the certificate service never asks which it has.
"""
