"""The generated template, read once per test module. Reading it asserts that it exists and is
newer than serverless.yml, so a stale build fails with what to run instead of passing on old
content.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deploy.helpers import ROOT, TEMPLATE


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    assert TEMPLATE.exists(), "no generated template: run `make package` (make test does)"
    assert TEMPLATE.stat().st_mtime >= (ROOT / "serverless.yml").stat().st_mtime, (
        "template is older than serverless.yml: run `make package`"
    )
    doc: dict[str, Any] = json.loads(TEMPLATE.read_text())
    return doc
