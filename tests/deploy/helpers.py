"""What `make package` generates (the CloudFormation template and the zip), where it lies, and
readers of the template, shared by the deploy tests so each reads the same build the same way.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / ".serverless" / "cloudformation-template-update-stack.json"
ARTIFACT = ROOT / "build" / "gme-autorecord.zip"
SERVICE = "gme-autorecord-dev"
FUNCTIONS = {"webhook": "WebhookLambdaFunction", "worker": "WorkerLambdaFunction"}
FUNCTIONS["scheduler"] = "SchedulerLambdaFunction"
PYENV_312 = str(Path.home() / ".pyenv" / "versions" / "3.12*" / "bin" / "python3.12")

NEEDS_NODE = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="node/npm not installed: `make package` could not generate the template to check",
)


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def props(template: dict[str, Any], name: str) -> dict[str, Any]:
    p: dict[str, Any] = template["Resources"][name]["Properties"]
    return p


def branches(item: Any) -> list[Any]:
    """A statement list entry, with Fn::If expanded into whichever branches are real."""
    if isinstance(item, dict) and "Fn::If" in item:
        _, yes, no = item["Fn::If"]
        return [b for b in (yes, no) if b != {"Ref": "AWS::NoValue"}]
    return [item]


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for policy in role["Properties"].get("Policies", []):
        for item in policy["PolicyDocument"]["Statement"]:
            out.extend(branches(item))
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_of(template: dict[str, Any], function: str) -> dict[str, Any]:
    role_ref = props(template, FUNCTIONS[function])["Role"]["Fn::GetAtt"][0]
    role: dict[str, Any] = template["Resources"][role_ref]
    return role


def actions_of(template: dict[str, Any], function: str) -> set[str]:
    return {a for s in statements(role_of(template, function)) for a in as_list(s["Action"])}


def lambda_python() -> str | None:
    """The Python 3.12 `make` compiled the zip with (LAMBDA_PYTHON), else the first one found."""
    chosen = os.environ.get("LAMBDA_PYTHON")
    for candidate in [chosen, shutil.which("python3.12"), *glob.glob(PYENV_312)]:
        if candidate and subprocess.run([candidate, "-V"], capture_output=True).returncode == 0:
            return candidate
    return None
