"""The zip `make package` builds, as Lambda would receive it: our code with its Python 3.12
bytecode, dependencies as bytecode alone, native wheels for Lambda's arm64, nothing of the
development tools, within its size budget.

Skipped, with the reason, when node/npm are missing (`make package` needs them); the bytecode
check also when no Python 3.12 is found.
"""

from __future__ import annotations

import subprocess
import zipfile

import pytest

from tests.deploy.helpers import ARTIFACT, NEEDS_NODE, lambda_python

pytestmark = NEEDS_NODE


@pytest.mark.skipif(lambda_python() is None, reason="no Python 3.12: `make artifact` warned")
def test_package_carries_python312_bytecode_never_checked_against_sources() -> None:
    archive = zipfile.ZipFile(ARTIFACT)
    names = set(archive.namelist())
    magic = subprocess.run(
        [str(lambda_python()), "-c", "import importlib.util as u; print(u.MAGIC_NUMBER.hex())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Our own modules keep their sources, each precompiled into __pycache__ ...
    sources = [n for n in names if n.endswith(".py")]
    assert sources
    assert [n for n in sources if not n.startswith("handler/")] == []
    for source in sources:
        folder, _, file = source.rpartition("/")
        assert f"{folder}/__pycache__/{file[:-3]}.cpython-312.pyc" in names, source
    header = archive.read("handler/entrypoints/__pycache__/webhook.cpython-312.pyc")[:8]
    assert header[:4].hex() == magic
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, source never checked
    # ... the dependencies ship as bytecode alone (build_tools/slim.py), in Lambda's format.
    for name in ("pydantic/main.pyc", "aws_lambda_powertools/logging/logger.pyc"):
        assert archive.read(name)[:4].hex() == magic, name


#: The default zip's budget, bytecode included (issue 13: was 10.9 MB with Redis and X-Ray).
MAX_DEFAULT_ZIP = 5_000_000


def built_extras() -> list[str]:
    """The optional parts `make artifact EXTRAS=...` put in the zip (none by default)."""
    marker = ARTIFACT.with_suffix(".extras")
    return marker.read_text().split() if marker.exists() else []


def test_package_is_small_and_holds_only_runtime_code() -> None:
    assert ARTIFACT.exists(), "run `make package`"
    names = zipfile.ZipFile(ARTIFACT).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    for forbidden in (
        "tests", "emulator", "bench", "events", "node_modules", "boto3", "botocore",
        "s3transfer", "pytest", "_pytest", "mypy", "ruff", "hypothesis", "moto",
        "cfnlint", "yaml_dev", "build_tools",
    ):  # fmt: skip
        assert forbidden not in tops, forbidden
    assert "handler/entrypoints/webhook.py" in names
    assert "policies/default.yaml" in names
    assert "handler/__main__.py" not in names
    assert not [n for n in names if n.startswith("handler/tools/")]  # the CLI and local stack
    assert not any(".cpython-311" in n or ".cpython-313" in n for n in names)  # only Lambda's
    # Native wheels were fetched for Lambda's platform, not for this machine.
    native = [n for n in names if n.endswith(".so")]
    assert native
    assert all("aarch64" in n or "x86_64" not in n for n in native), native
    assert any(n.startswith("pydantic_core/") and "aarch64" in n for n in native)
    # Optional parts only when asked for (`make artifact EXTRAS=redis,xray`).
    extras = built_extras()
    assert ("redis" in tops) == ("redis" in extras)
    assert ("aws_xray_sdk" in tops) == ("xray" in extras)
    if not extras:
        assert ARTIFACT.stat().st_size <= MAX_DEFAULT_ZIP, ARTIFACT.stat().st_size
