"""Fixtures for the emulator's tests: one emulator per module, reset before each test, since
starting a server per test would cost more than the tests themselves.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tencentcloud.gme.v20180711 import gme_client

from emulator import GmeEmulator
from tests.emulator.helpers import make_client


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[GmeEmulator]:
    with GmeEmulator() as emu:
        yield emu


@pytest.fixture
def emu(shared_emulator: GmeEmulator) -> GmeEmulator:
    shared_emulator.reset()
    return shared_emulator


@pytest.fixture(scope="module")
def shared_client(shared_emulator: GmeEmulator) -> gme_client.GmeClient:
    return make_client(shared_emulator)


@pytest.fixture
def client(emu: GmeEmulator, shared_client: gme_client.GmeClient) -> gme_client.GmeClient:
    return shared_client
