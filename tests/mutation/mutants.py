"""The mutants of one module: each a single change to its syntax tree, named stably.

A mutant's `ident` is `module:function:operator:code#n` (the n-th such change in that function),
so the list of equivalent mutants survives edits elsewhere in the file. Docstrings, type
annotations, decorators, imports and `if TYPE_CHECKING:` blocks are never mutated, nor calls to
the logger (deleting a log line changes no behaviour a test should pin).
"""

from __future__ import annotations

import ast
import copy
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_NEGATED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_ARITHMETIC: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
}


@dataclass(frozen=True)
class Mutant:
    ident: str
    line: int
    source: str


#: Changes a node in place (returns None) or returns the node that replaces it.
Rewrite = Callable[[ast.AST], ast.AST | None]


def _untouchable(tree: ast.Module) -> set[int]:
    """ids of nodes no mutant may touch: docstrings, annotations, imports, TYPE_CHECKING."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                mark(body[0])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for decorator in node.decorator_list:  # frozen=True and friends: declarations
                mark(decorator)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            mark(node.returns)
            for arg in (*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs):
                mark(arg.annotation)
            mark(node.args.vararg and node.args.vararg.annotation)
            mark(node.args.kwarg and node.args.kwarg.annotation)
        elif isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        elif _never_mutated(node):
            mark(node)
    return skip


def _never_mutated(node: ast.AST) -> bool:
    """Imports, `if TYPE_CHECKING:` blocks, log lines and pydantic's `model_config` (like a
    decorator, a declaration: `frozen=True` changes nothing the code does)."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        return True
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "model_config":
            return True
    if isinstance(node, ast.If) and isinstance(node.test, ast.Name):
        return node.test.id == "TYPE_CHECKING"
    return isinstance(node, ast.Expr) and _is_log_call(node.value)


def _is_log_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "logger"
    )


def _changes(node: ast.AST, in_function: bool, module_level: bool) -> Iterator[tuple[str, Rewrite]]:
    """Every single change this node admits, as (operator name, rewrite)."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _NEGATED:

                def flip(n: ast.AST, i: int = i) -> None:
                    assert isinstance(n, ast.Compare)
                    n.ops[i] = _NEGATED[type(n.ops[i])]()

                yield "flip-compare", flip
    elif isinstance(node, ast.BoolOp):

        def swap(n: ast.AST) -> None:
            assert isinstance(n, ast.BoolOp)
            n.op = ast.Or() if isinstance(n.op, ast.And) else ast.And()

        yield "and-or", swap
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "drop-not", lambda n: n.operand  # type: ignore[attr-defined, no-any-return]
    elif isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:

        def arith(n: ast.AST) -> None:
            assert isinstance(n, ast.BinOp)
            n.op = _ARITHMETIC[type(n.op)]()

        yield "arithmetic", arith
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield "constant", lambda n: ast.Constant(not value)
        elif isinstance(value, int | float):
            yield "constant", lambda n: ast.Constant(value + 1)
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):

            def none(n: ast.AST) -> None:
                assert isinstance(n, ast.Return)
                n.value = ast.Constant(None)

            yield "return-none", none
    elif in_function and isinstance(node, ast.Raise | ast.Assign | ast.AugAssign):
        yield f"delete-{type(node).__name__.lower()}", lambda n: ast.Pass()
    elif in_function and isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        yield "delete-call", lambda n: ast.Pass()
    elif module_level and isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
        if (
            isinstance(target, ast.Name)
            and target.id.isupper()
            and isinstance(value, ast.Constant)
            and isinstance(value.value, str)
        ):

            def rename(n: ast.AST) -> None:
                assert isinstance(n, ast.Assign)
                assert isinstance(n.value, ast.Constant)
                n.value = ast.Constant(n.value.value + "-mutated")

            yield "constant", rename


def _points(tree: ast.Module) -> Iterator[tuple[int, str, str, str, int, Rewrite]]:
    """(walk index, function, operator, code, line, rewrite) for every mutation point."""
    skip = _untouchable(tree)
    owner: dict[int, str] = {}
    for node in ast.walk(tree):
        name = owner.get(id(node), "<module>")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = node.name if name == "<module>" else f"{name}.{node.name}"
        for child in ast.iter_child_nodes(node):
            owner[id(child)] = name
    module_level = {id(n) for n in tree.body}
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        function = owner.get(id(node), "<module>")
        in_function = function != "<module>" and not _in_class_body(tree, node)
        for op, rewrite in _changes(node, in_function, id(node) in module_level):
            code = " ".join(ast.unparse(node).split())[:70]
            yield index, function, op, code, getattr(node, "lineno", 0), rewrite


def _in_class_body(tree: ast.Module, node: ast.AST) -> bool:
    return any(
        isinstance(c, ast.ClassDef) and node in c.body for c in ast.walk(tree) if c is not node
    )


def mutants_of(source: str, module: str) -> Iterator[Mutant]:
    tree = ast.parse(source)
    seen: Counter[str] = Counter()
    for index, function, op, code, line, rewrite in list(_points(tree)):
        base = f"{module}:{function}:{op}:{code}"
        seen[base] += 1
        mutated = copy.deepcopy(tree)
        target = next(n for i, n in enumerate(ast.walk(mutated)) if i == index)
        replacement = rewrite(target)
        if replacement is not None:
            _replace(mutated, target, replacement)
        ast.fix_missing_locations(mutated)
        yield Mutant(f"{base}#{seen[base]}", line, ast.unparse(mutated))


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list) and any(v is old for v in value):
                value[value.index(old)] = new
                return
