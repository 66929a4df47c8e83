"""Fixtures shared by the codec's integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from keyward.codec.transit_codec import VaultTransitCodec


@pytest.fixture
async def closing() -> AsyncIterator[list[VaultTransitCodec]]:
    """Codecs appended here have their Vault client closed after the test."""
    codecs: list[VaultTransitCodec] = []
    yield codecs
    for codec in codecs:
        await codec.state.transit.close()
