"""Trust points: the places a CA bundle is published for the processes that trust it (a
PEM file today), each behind :class:`keyward.trust.base.TrustPoint`.

A rotation edits a trust point, it does not own it: certificates it did not put there
(another team's CA, a cluster CA) stay, the successor is added, and at the end only the
retired CA is taken out.
"""
