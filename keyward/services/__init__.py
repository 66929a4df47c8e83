"""Plain services: keyward's operations on Vault and the certificate stores, with no Temporal
in them. Activities adapt them to Temporal (errors become ``ApplicationError``s there);
``starter.py`` calls them directly in the operator's shell."""
