"""The Cloud Ops API emulator fixtures (tests/cloud_fixtures.py) for every test here."""

from tests.cloud_fixtures import client_ca, cloud_ops, emulator, key_file, ops

__all__ = ["client_ca", "cloud_ops", "emulator", "key_file", "ops"]
