"""Fixtures the end-to-end tests share."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from handler.observability import logger


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Everything the shared Powertools logger writes during the test, one JSON doc per line."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)
