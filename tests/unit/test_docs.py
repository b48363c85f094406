"""The documents stay true to the code: every setting the code reads is in the configuration
reference and every variable there is read; every relative link points at a file (and heading)
that exists; the README stays a front door.

Each check is a function over text, run on the real files and, to show it can fail, on a
broken copy."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from aws_lambda_powertools.shared import constants as powertools_constants

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"
README_MAX_LINES = 260

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")
# Set by the Lambda runtime (or SAM), never by a user: read, but not settings.
RUNTIME_VARIABLES = {"AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT", "AWS_SAM_LOCAL"}
# Read by Powertools itself; the reference may document these too.
POWERTOOLS_VARIABLES = {
    value
    for name, value in vars(powertools_constants).items()
    if name.endswith("_ENV") and isinstance(value, str) and value.startswith("POWERTOOLS_")
}


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def variables_read(source: str) -> set[str]:
    """Environment variables a module reads: `os.environ.get("X")`, `os.getenv("X")`,
    `os.environ["X"]`, and every variable name a `from_env` method maps settings from."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == "from_env":
            found |= {
                c.value
                for c in ast.walk(node)
                if isinstance(c, ast.Constant)
                and isinstance(c.value, str)
                and ENV_NAME.match(c.value)
            }
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            getenv = isinstance(func, ast.Attribute | ast.Name) and (
                getattr(func, "attr", None) == "getenv" or getattr(func, "id", None) == "getenv"
            )
            environ_get = (
                isinstance(func, ast.Attribute) and func.attr == "get" and _is_environ(func.value)
            )
            if getenv or environ_get:
                found.add(str(node.args[0].value))
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and _is_environ(node.value)
            and isinstance(node.slice, ast.Constant)
        ):
            found.add(str(node.slice.value))
    return {name for name in found if ENV_NAME.match(name)} - RUNTIME_VARIABLES


def code_variables() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "handler").rglob("*.py"):
        names |= variables_read(path.read_text(encoding="utf-8"))
    return names


def documented_variables(markdown: str) -> set[str]:
    """Variable names in the first column of every table row of the configuration reference."""
    names: set[str] = set()
    for line in markdown.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names |= {n for n in re.findall(r"`([^`]+)`", first) if ENV_NAME.match(n)}
    return names


def configuration_problems(markdown: str, read: set[str]) -> list[str]:
    documented = documented_variables(markdown)
    missing = sorted(read - documented)
    unread = sorted(documented - read - POWERTOOLS_VARIABLES)
    return [f"read but not documented: {n}" for n in missing] + [
        f"documented but never read: {n}" for n in unread
    ]


def test_the_scan_finds_the_settings_of_both_settings_classes() -> None:
    read = code_variables()
    for name in ("GME_ENDPOINT", "WEBHOOK_SECRETS", "MAX_BODY_BYTES"):
        assert name in read  # Settings.from_env
    for name in ("LEDGER_STORE", "SWEEP_BATCH", "RENEW_BEFORE_SECONDS"):
        assert name in read  # LifecycleSettings.from_env
    for name in ("RECORD_DLQ_URL", "LOCAL_TICK_SECONDS", "PORT"):
        assert name in read  # read directly by the CLI and the local runner
    assert not read & RUNTIME_VARIABLES


def test_every_setting_is_documented_and_every_documented_variable_is_read() -> None:
    assert configuration_problems(CONFIGURATION.read_text(encoding="utf-8"), code_variables()) == []


def test_the_configuration_check_fails_on_a_missing_or_invented_variable() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    read = code_variables()
    without = "\n".join(line for line in text.splitlines() if "`SWEEP_BATCH`" not in line[:20])
    assert configuration_problems(without, read) == ["read but not documented: SWEEP_BATCH"]
    invented = text + "\n| `GME_FROBNICATE` | `1` | nothing reads this |\n"
    assert configuration_problems(invented, read) == ["documented but never read: GME_FROBNICATE"]
    read_more = read | {"NEW_SETTING_X"}
    assert configuration_problems(text, read_more) == ["read but not documented: NEW_SETTING_X"]


def test_variables_read_sees_every_form_and_ignores_writes() -> None:
    source = """
import os
from os import environ
def from_env(env):
    return {"a": "FIRST_ONE", "b": "not a name"}
a = os.environ.get("SECOND_ONE", "x")
b = os.getenv("THIRD_ONE")
c = os.environ["FOURTH_ONE"]
d = environ.get("FIFTH_ONE")
os.environ["WRITTEN_ONLY"] = "1"
os.environ.setdefault("DEFAULTED_ONLY", "1")
e = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
"""
    assert variables_read(source) == {
        "FIRST_ONE",
        "SECOND_ONE",
        "THIRD_ONE",
        "FOURTH_ONE",
        "FIFTH_ONE",
    }


# --- links -------------------------------------------------------------------------------------

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(markdown: str) -> str:
    """The text outside fenced code blocks and inline code (which may show `[x](y)` literally)."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", markdown))


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats
    numbered."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for match in re.finditer(r"^#{1,6} +(.+?) *#*$", FENCE.sub("", markdown), re.M):
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def link_problems(path: Path) -> list[str]:
    problems = []
    for target in LINK.findall(_prose(path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto: ...
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text("utf-8")):
            problems.append(f"{target}: no such heading")
    return problems


DOCUMENTS = [
    ROOT / "README.md",
    ROOT / "bench" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_an_existing_file_and_heading(path: Path) -> None:
    assert link_problems(path) == []


def test_the_topic_documents_exist() -> None:
    for topic in (
        "configuration",
        "formats",
        "policy",
        "lifecycle",
        "security",
        "deploy",
        "operations",
        "performance",
    ):
        assert (ROOT / "docs" / f"{topic}.md").is_file()


def test_the_link_check_fails_on_a_missing_file_or_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Title\n\n## Crash safety\n", encoding="utf-8")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Doc\n\nGood: [a](other.md), [b](other.md#crash-safety), [c](#doc).\n"
        "Bad: [d](missing.md), [e](other.md#crash-safty), [f](#nowhere).\n"
        "```\n[not a link](ignored.md)\n```\n",
        encoding="utf-8",
    )
    assert link_problems(doc) == [
        "missing.md: no such file",
        "other.md#crash-safty: no such heading",
        "#nowhere: no such heading",
    ]


def test_anchors_follow_githubs_rules() -> None:
    text = (
        '## Runbook: "a room was not recorded — where to look"\n'
        "## GME recording callbacks (`POST /v1/gme/recording-callbacks`)\n"
        "## GME's rate limit: fleet-wide pacing\n## Speed\n## Speed\n"
        "```\n# not a heading\n```\n"
    )
    assert anchors(text) == {
        "runbook-a-room-was-not-recorded--where-to-look",
        "gme-recording-callbacks-post-v1gmerecording-callbacks",
        "gmes-rate-limit-fleet-wide-pacing",
        "speed",
        "speed-1",
    }


# --- the front door ----------------------------------------------------------------------------


def readme_problems(text: str) -> list[str]:
    count = len(text.splitlines())
    return [] if count <= README_MAX_LINES else [f"README.md has {count} lines"]


def test_the_readme_is_a_front_door() -> None:
    assert readme_problems((ROOT / "README.md").read_text(encoding="utf-8")) == []
    assert readme_problems("line\n" * (README_MAX_LINES + 1)) == ["README.md has 261 lines"]
