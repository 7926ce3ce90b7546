"""Which names in the tests are the solution's: the rule of the code oracle, decided from the task.

A test reads names. Each one means the solution's object, or the tests' own, and a wrong choice
either rejects correct code or hands the verdict to the solution (a solution that defines
``abs`` or ``isclose`` as always close would pass with a wrong answer). The rule:

1. the task's entry points (``candidates``: HumanEval's ``entry_point``) are always the solution's,
   even a builtin's name, even a name the trusted setup binds (HumanEval's prompt holds a stub);
2. besides them, a name is the solution's when the tests read it without binding it, the solution
   binds it at module level (at run time, so ``exec`` and star imports count), the trusted setup
   does not bind it (at run time too: ``from math import *`` in the setup keeps ``isclose``
   Python's), and it is not a builtin;
3. only when 1 and 2 name nothing (the tests call builtins only, and the task names no entry
   point) may a builtin be the solution's: the builtins the solution defines and the tests call as
   the subject of a check, never one a test only uses around another such call to compare
   (``abs`` in ``abs(pow(2, 10) - 1024) < 1e-9``, ``all`` in ``all(pow(2, k) == 2 ** k for k in ...)``).

Standard library only; it runs in the tests' sandbox, where the solution's names are known.
"""

import ast
import builtins

_BUILTIN_NAMES = frozenset(dir(builtins))
# Builtins a solution may stand in for under rule 3: functions and types, not the tests' dunders
# (``__name__``) nor exception classes.
_OVERRIDABLE = frozenset(
    name for name in _BUILTIN_NAMES
    if not name.startswith("_")
    and not (isinstance(getattr(builtins, name), type) and issubclass(getattr(builtins, name), BaseException))
)  # fmt: skip


def _parse(sources) -> list:
    trees = []
    for source in sources:
        try:
            trees.append(ast.parse(source))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # a test that does not parse fails on its own; it names nothing
    return trees


def _free_names(trees) -> set:
    """Names the tests read and never bind."""
    read, bound = set(), set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                bound.add(node.name)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, ast.alias):
                bound.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
                bound.add(node.name)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                bound.add(node.rest)
    return read - bound


def _calls_in(node) -> set:
    return {child.func.id for child in ast.walk(node) if isinstance(child, ast.Call) and isinstance(child.func, ast.Name)}


def _subjects(tree, stand_ins: set) -> set:
    """The stand-ins ``tree`` calls as the subject of a check, not only around another one's result.

    A call wraps another stand-in when its arguments call it, or read a variable assigned from such a
    call (``x = pow(2, 10)`` then ``abs(x - 1024)``).
    """
    tainted: dict = {}  # variable -> stand-ins whose results it holds
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.NamedExpr) and node.value is not None:
            sources = _calls_in(node.value) & stand_ins
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and sources:
                        tainted.setdefault(name.id, set()).update(sources)
    subjects = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in stand_ins):
            continue
        inside = set()
        for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
            inside |= _calls_in(argument)
            for name in ast.walk(argument):
                if isinstance(name, ast.Name):
                    inside |= tainted.get(name.id, set())
        if not (inside & (stand_ins - {node.func.id})):
            subjects.add(node.func.id)
    return subjects


def solution_names(tests, entry_points, solution_binds, setup_binds) -> list:
    """The names the tests must get from the solution, by the rule in this module's docstring.

    Args:
        tests (list[str]): the test sources.
        entry_points (list[str] | None): the names the task says the solution defines.
        solution_binds (set[str]): names bound at the solution module's top level once it ran.
        setup_binds (set[str]): names bound in the tests' namespace once the trusted setup ran.
    """
    trees = _parse(tests)
    free = _free_names(trees)
    chosen = set(entry_points or ())
    chosen |= {name for name in free
               if name in solution_binds and name not in setup_binds and name not in _BUILTIN_NAMES}  # fmt: skip
    if chosen:
        return sorted(chosen)
    stand_ins = {name for name in free & _OVERRIDABLE & set(solution_binds) if name not in setup_binds}
    return sorted(set().union(*(_subjects(tree, stand_ins) for tree in trees)) if stand_ins else set())
