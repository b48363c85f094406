"""Make the Lambda zip lean: `python build_tools/slim.py prune|sourceless DIR | zip DIR ZIP`.

`make artifact` (and `make smoke`, so the zip's exact dependency set is what the smoke test runs)
calls the first two on the pip `--target` folder, then `zip` on the function folder:

prune       delete parts of the wheels that this code never loads (each listed below with why),
            and swap charset_normalizer's compiled build for its pure-Python wheel.
sourceless  run by Lambda's Python 3.12: every dependency module becomes bytecode beside where
            its source was, without docstrings. Lambda cannot write /var/task, so it runs
            bytecode anyway; the sources made the zip twice as big. Our own `handler/`
            is not in this folder: it keeps its sources (readable tracebacks) and __pycache__.
zip         the function folder as the deployment zip, deflated at the highest level.

What the default deployment loads must stay: tests/deploy/test_artifact_runs.py runs the zip's
code on exactly these folders and fails on any module that is gone.
"""

from __future__ import annotations

import ast
import importlib.util
import marshal
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import TypeVar

_Scope = TypeVar("_Scope", ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)

#: Paths (globs, relative to the folder) of code the deployment never imports, and why.
UNUSED = {
    # libyaml bindings: the code parses with yaml.safe_load (the pure-Python SafeLoader) only.
    "yaml/_yaml*.so": "libyaml binding, unused by yaml.safe_load",
    "yaml/cyaml.py": "libyaml loaders, unused by yaml.safe_load",
    "pydantic/v1": "pydantic 1 compatibility layer",
    "pydantic/mypy.py": "mypy plugin (type checking only)",
    "pydantic/experimental": "experimental APIs, never imported by pydantic itself",
    # urllib3 helpers for platforms and add-ons the deployment has not: Pyodide, PySocks and
    # pyOpenSSL (requests falls back exactly as when those add-ons are missing).
    "urllib3/contrib/emscripten": "Pyodide support",
    "urllib3/contrib/socks.py": "SOCKS proxies (needs PySocks, not shipped)",
    "urllib3/contrib/pyopenssl.py": "pyOpenSSL TLS (needs pyOpenSSL, not shipped)",
    # Powertools utilities no entry point uses and no module we load imports.
    "aws_lambda_powertools/utilities/kafka": "Kafka consumer utility",
    "aws_lambda_powertools/utilities/feature_flags": "feature flags utility",
    "aws_lambda_powertools/utilities/data_masking": "data masking utility",
    "aws_lambda_powertools/utilities/streaming": "S3 streaming utility",
    "aws_lambda_powertools/utilities/circuit_breaker": "circuit breaker utility",
    "aws_lambda_powertools/utilities/auth_alpha": "authorizer utility",
    "aws_lambda_powertools/utilities/validation": "JSON Schema validation utility",
    # Served only by APIGatewayHttpResolver.enable_swagger(), which the webhook never calls.
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/*.min.js": "Swagger UI bundle",
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/*.min.css": "Swagger UI styles",
    # pip's list of installed files, read by `pip uninstall` only.
    "*.dist-info/RECORD": "pip's uninstall list",
}


def prune(folder: Path) -> None:
    for pattern in UNUSED:
        for path in folder.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    _pure_charset_normalizer(folder)
    for metadata in folder.glob("*.dist-info/METADATA"):
        _headers_only(metadata)


def _headers_only(metadata: Path) -> None:
    """A wheel's METADATA is its headers (name, version, requirements: what importlib.metadata
    reads) and then its whole README. The README goes; the licence files stay."""
    text = metadata.read_text(encoding="utf-8")
    headers, blank, _readme = text.partition("\n\n")
    if blank:
        metadata.write_text(headers + "\n", encoding="utf-8")


def _pure_charset_normalizer(folder: Path) -> None:
    """requests needs charset_normalizer; its compiled build adds 250 kB of unstripped
    extensions for decoding guesses the GME SDK never asks for (it reads JSON)."""
    found = sorted(folder.glob("charset_normalizer-*.dist-info"))
    if not found:
        return
    version = found[0].name.removeprefix("charset_normalizer-").removesuffix(".dist-info")
    for path in [*found, folder / "charset_normalizer"]:
        shutil.rmtree(path, ignore_errors=True)
    subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *("--no-deps", "--only-binary=:all:", "--no-compile", "--target", str(folder)),
            *("--platform", "any", "--implementation", "py", "--python-version", "3.12"),
            f"charset-normalizer=={version}",
        ],
        check=True,
    )


class _NoDocstrings(ast.NodeTransformer):
    """Drops module, class and function docstrings: about a sixth of the dependencies' bytecode.
    Assertions stay (unlike `-OO`), so no library runs a check differently; the shipped
    libraries all treat a missing `__doc__` as no description."""

    def _strip(self, node: _Scope) -> _Scope:
        self.generic_visit(node)
        first = node.body[0] if node.body else None
        if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
            node.body = node.body[1:] or [ast.copy_location(ast.Pass(), first)]
        return node

    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _strip


def sourceless(folder: Path) -> None:
    """Replace every dependency module by its bytecode beside it (`x.py` -> `x.pyc`, which Python
    imports without a source). Must run under Lambda's Python 3.12: bytecode is per version."""
    if sys.version_info[:2] != (3, 12):
        raise SystemExit("sourceless: run this step with Python 3.12 (LAMBDA_PYTHON)")
    for source in folder.rglob("*.py"):
        text = source.read_bytes()
        try:
            tree = _NoDocstrings().visit(ast.parse(text, str(source)))
        except SyntaxError:  # not importable on 3.12 anyway: left as it is
            continue
        code = compile(tree, source.relative_to(folder).as_posix(), "exec", dont_inherit=True)
        header = importlib.util.MAGIC_NUMBER + bytes(12)  # flags 0; no source to check against
        source.with_suffix(".pyc").write_bytes(header + marshal.dumps(code))
        source.unlink()


def write_zip(folder: Path, target: Path) -> None:
    """The folder as a zip, deflated at the highest level, entries in a stable order."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())


def main(argv: list[str]) -> int:
    match argv:
        case ["prune", folder]:
            prune(Path(folder))
        case ["sourceless", folder]:
            sourceless(Path(folder))
        case ["zip", folder, target]:
            write_zip(Path(folder), Path(target))
        case _:
            print("usage: python build_tools/slim.py prune|sourceless DIR | zip DIR ZIP")
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
