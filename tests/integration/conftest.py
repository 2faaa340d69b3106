"""Integration fixtures: the real local broker (started by ``make test``) and real workers.

Every test gets its own app id and topic prefix, so tests never see each other's records
even though they share one broker.
"""

from __future__ import annotations

import os

import pytest

from app.devtools import browser as chromium
from app.devtools.localkafka import port_open
from app.devtools.stack import Stack, deployment  # noqa: F401 (Stack: type of the fixture)

BROKER = os.environ.get("LABELSTREAM_BROKER")


@pytest.fixture(scope="session")
def broker() -> str:
    if not BROKER:
        pytest.fail("integration tests need the real broker: run them with 'make test' (or set LABELSTREAM_BROKER)")
    port = int(BROKER.rsplit(":", 1)[1])
    assert port_open(port), f"no broker answers at {BROKER}: 'make test' starts one"
    return BROKER


@pytest.fixture
async def stack(broker, tmp_path, request):
    async with deployment(broker, tmp_path, getattr(request, "param", None) or 2) as s:
        yield s


@pytest.fixture
def browser():
    """Headless Chromium (Debian's chromium and chromium-driver: 'make test' installs them)."""
    if not chromium.available():
        pytest.fail(chromium.MISSING)
    with chromium.chromium() as driver:
        yield driver
