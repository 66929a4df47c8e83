"""Where a rotated CA lives: one :class:`~keyward.authorities.base.CaBackend` per kind
(keyward's CA files, a Vault PKI mount, Azure Key Vault), the rotation's bookkeeping
(:mod:`keyward.authorities.state`) and the factory that picks a backend from a CA's settings.

The rotation's steps (:class:`keyward.services.authorities.CaRotations`) decide when; a
backend only knows how: make the successor once, switch issuance to it, keep the old CA.
"""
