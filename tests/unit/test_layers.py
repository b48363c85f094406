"""The layout's import rules (issue 16), read from the source: each folder of `handler/` may
import only what its `__init__` docstring says, and no two files import each other round a
cycle. Imports are parsed, not run, so a lazy import inside a function counts like any other,
and so does one under `if TYPE_CHECKING:`: never executed, it still ties the two files together
for a reader and a type checker."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Who may import what, by the longest matching module prefix: allowed `handler.` prefixes and
#: third-party packages that must not appear. Mirrors each folder's `__init__` docstring.
AWS_TENCENT = {"boto3", "botocore", "tencentcloud", "aws_lambda_powertools", "aws_xray_sdk"}
CLIENTS = {"boto3", "botocore", "tencentcloud", "redis"}
RULES: dict[str, tuple[set[str], set[str]]] = {
    "handler": (set(), set()),
    "handler.__main__": ({"handler.tools.cli"}, set()),
    "handler.domain": ({"handler.domain"}, AWS_TENCENT | {"redis"}),
    "handler.adapters": (
        {"handler.domain", "handler.adapters", "handler.bootstrap.observability"},
        set(),
    ),
    "handler.service_layer": (
        {
            "handler.domain",
            "handler.service_layer",
            "handler.bootstrap.config",
            "handler.bootstrap.observability",
        },
        CLIENTS,
    ),
    "handler.ingress": (
        {"handler.domain", "handler.ingress", "handler.bootstrap", "handler.adapters.queue"},
        CLIENTS,
    ),
    "handler.entrypoints": (
        {"handler.domain", "handler.bootstrap", "handler.ingress", "handler.service_layer"},
        CLIENTS,
    ),
    "handler.bootstrap": (
        {"handler.domain", "handler.adapters", "handler.bootstrap.observability"},
        set(),
    ),
    "handler.bootstrap.init_phase": (set(), set()),
    "handler.bootstrap.app": (
        {
            "handler.domain",
            "handler.adapters",
            "handler.service_layer",
            "handler.ingress",
            "handler.bootstrap",
        },
        set(),
    ),
    "handler.tools": ({"handler"}, set()),
}


def modules(root: Path) -> dict[str, Path]:
    """Every module under root/handler, by dotted name (a package by its folder's name)."""
    found = {}
    for path in sorted((root / "handler").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of import nodes under `if TYPE_CHECKING:`."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, bool]]:
    """(imported module, runs at import or call time) for each import in the file; a name
    imported from a package counts as its submodule when it is one."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        runs = id(node) not in typing_only
        if isinstance(node, ast.Import):
            found += [(alias.name, runs) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in known else base, runs))
    return found


def _rule(name: str) -> tuple[set[str], set[str]]:
    key = max((k for k in RULES if name == k or name.startswith(k + ".")), key=len)
    return RULES[key]


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(root: Path) -> list[str]:
    mods = modules(root)
    found = []
    for name, path in mods.items():
        allowed, banned = _rule(name)
        for target, _runs in imports(name, path, set(mods)):
            top = target.partition(".")[0]
            if top == "handler":
                if target == "handler" and name != "handler":
                    continue  # the root package's docstring, nothing else
                if not any(_under(target, ok) for ok in allowed):
                    found.append(f"{name} imports {target}")
                elif _under(target, "handler.tools") and not (
                    _under(name, "handler.tools") or name == "handler.__main__"
                ):
                    found.append(f"{name} imports {target} (the tools are not shipped)")
            elif top in banned:
                found.append(f"{name} imports {target}")
    return found


def cycles(root: Path) -> list[list[str]]:
    """Import cycles among the files (strongly connected components of more than one module,
    or a module importing itself), counting every import, typing-only ones too."""
    mods = modules(root)
    graph = {
        name: sorted({t for t, _runs in imports(name, path, set(mods)) if t in mods})
        for name, path in mods.items()
    }
    # A package's __init__ runs before its submodules; an edge to it is not a cycle partner
    # unless the __init__ itself imports something. Tarjan's algorithm, iteratively.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        result.append(sorted(component))
    return result


def test_every_folder_imports_only_what_its_docstring_allows() -> None:
    assert violations(ROOT) == []


def test_no_import_cycle_between_handler_files() -> None:
    assert cycles(ROOT) == []


def test_every_folder_says_what_it_holds_and_may_import() -> None:
    for init in (ROOT / "handler").rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, init
        if init.parent != ROOT / "handler" and init.parent.parent == ROOT / "handler":
            assert "import" in doc.lower(), f"{init}: say what it may import"


def test_no_module_left_at_the_root_of_handler() -> None:
    assert sorted(p.name for p in (ROOT / "handler").glob("*.py")) == ["__init__.py", "__main__.py"]


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for folder in {p.parent for p in tmp_path.rglob("*.py")}:
        (folder / "__init__.py").touch()
    return tmp_path


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        ("handler/domain/bad.py", "import boto3\n", "handler.domain.bad imports boto3"),
        (
            "handler/domain/bad.py",
            "def f():\n    from handler.adapters import queue\n",
            "handler.domain.bad imports handler.adapters.queue",
        ),
        (
            "handler/entrypoints/bad.py",
            "from handler.adapters.queue import SqsPublisher\n",
            "handler.entrypoints.bad imports handler.adapters.queue",
        ),
        (
            "handler/service_layer/bad.py",
            "from handler.bootstrap import app\n",
            "handler.service_layer.bad imports handler.bootstrap.app",
        ),
        (
            "handler/bootstrap/app.py",
            "from handler.tools import cli\n",
            "handler.bootstrap.app imports handler.tools.cli",
        ),
    ],
)
def test_a_file_that_breaks_a_rule_is_named(
    tmp_path: Path, rel: str, source: str, expected: str
) -> None:
    root = _tree(
        tmp_path,
        {
            "handler/adapters/queue.py": "",
            "handler/bootstrap/app.py": "",
            "handler/tools/cli.py": "",
            rel: source,
        },
    )
    assert violations(root) == [expected]


def test_a_cycle_is_found_even_through_a_lazy_import(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "handler/domain/a.py": "from handler.domain import b\n",
            "handler/domain/b.py": "def f():\n    from handler.domain.a import x\n",
            "handler/domain/c.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from handler.domain import a\n"
            ),
        },
    )
    assert cycles(root) == [["handler.domain.a", "handler.domain.b"]]
