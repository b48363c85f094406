"""build_tools/slim.py: what it takes out of the zip's dependencies, and what it must keep."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "build_tools"))
import slim

MODULE = '''"""Module docstring."""

def only_a_docstring():
    """Nothing else."""


class Checked:
    """Class docstring."""

    def value(self, x):
        """Method docstring."""
        assert x > 0, "asserts stay"
        return x
'''


@pytest.mark.skipif(sys.version_info[:2] != (3, 12), reason="bytecode is written for 3.12")
def test_sourceless_keeps_behaviour_and_asserts_drops_docstrings(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(MODULE)
    slim.sourceless(tmp_path)
    assert not (package / "mod.py").exists()
    assert (package / "mod.pyc").exists()
    probe = (
        "import pkg.mod as m\n"
        "assert m.__doc__ is None and m.Checked.__doc__ is None\n"
        "assert m.Checked.value.__doc__ is None\n"
        "assert m.only_a_docstring() is None and m.Checked().value(2) == 2\n"
        "try:\n    m.Checked().value(0)\nexcept AssertionError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n{probe}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "asserts stay"


def test_prune_removes_only_what_it_lists(tmp_path: Path) -> None:
    for name in ("yaml/_yaml.cpython-312-aarch64-linux-gnu.so", "yaml/__init__.py",
                 "pydantic/v1/main.py", "pydantic/main.py", "x-1.0.dist-info/RECORD",
                 "x-1.0.dist-info/licenses/LICENSE"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "x-1.0.dist-info" / "METADATA").write_text("Name: x\nVersion: 1.0\n\n# README\n")
    slim.prune(tmp_path)
    kept = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert kept == [
        "pydantic/main.py",
        "x-1.0.dist-info/METADATA",
        "x-1.0.dist-info/licenses/LICENSE",
        "yaml/__init__.py",
    ]
    assert (tmp_path / "x-1.0.dist-info" / "METADATA").read_text() == "Name: x\nVersion: 1.0\n"
