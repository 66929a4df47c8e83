"""Rotation and renewal policy as pure functions: how often to rotate, when old versions
may go, when a certificate is due.

Temporal workflows call these directly, so the package imports only the standard
library (and keyward's exception base) and never reads the clock: ``now`` is an
argument, which keeps every decision replayable. Import the modules themselves
(``keyward.policy.cadence``, ``.retention``, ``.renewal``); the package re-exports nothing.
"""
