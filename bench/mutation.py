"""Mutation testing of keyward's security core: would a test notice if this line were wrong?

    python bench/mutation.py [MODULE ...] [--quick [N]] [--mutant ID] [--workers W]
                             [--timeout S] [--list] [--seed S]

MODULE is a path such as ``keyward/codec/format.py`` (default: every module in
``MODULE_TESTS``). Each mutant is one small AST edit of that module; its fast test files run
against it in a forked child process in which the mutated module is what ``import`` returns
(``MutantFinder`` on ``sys.meta_path``, compiled from the edited AST). Nothing is written to
disk. A mutant is *killed* when the tests fail (or error, or exceed the timeout), *survives*
when they pass. ``EQUIVALENT`` lists reviewed mutants that no test can kill, each with the
reason; they are run and reported but left out of the score.

``--quick`` samples N mutants per module (default 8) for a fast smoke run; ``--mutant``
runs the mutants whose id (``line:col:operator``) contains the given text.

Last line: ``RESULT <module>=<score %> ...``, the score being killed / (mutants - equivalent).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import importlib.abc
import importlib.machinery
import importlib.util
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, ModuleType
from typing import Final

ROOT = Path(__file__).resolve().parent.parent

# Each module and the fast test files (no Temporal dev server, no Vault) that specify it.
MODULE_TESTS: dict[str, tuple[str, ...]] = {
    "keyward/codec/format.py": ("tests/unit/test_codec_format.py",),
    "keyward/codecserver/permissions.py": ("tests/codecserver/test_permissions.py",),
    "keyward/codecserver/cloud_roles.py": ("tests/codecserver/test_cloud_roles.py",),
    "keyward/codecserver/jwt_auth.py": ("tests/codecserver/test_jwt.py",
                                        "tests/codecserver/test_jwt_rules.py",
                                        "tests/codecserver/test_jwks_redirect.py"),
    "keyward/pki/validate.py": ("tests/pki/test_validate.py",
                                "tests/pki/test_validate_rules.py",
                                "tests/trust_boundary/test_trust_anchor.py"),
    "keyward/policy/ca_rotation.py": ("tests/unit/test_ca_rotation_policy.py",),
    "keyward/policy/cadence.py": ("tests/unit/test_cadence_policy.py",
                                  "tests/unit/test_cadence_rules.py"),
    "keyward/policy/backstop.py": ("tests/unit/test_backstop_policy.py",
                                   "tests/unit/test_backstop_rules.py"),
    "keyward/policy/retention.py": ("tests/unit/test_retention_policy.py",
                                    "tests/unit/test_retention_rules.py"),
    "keyward/policy/renewal.py": ("tests/unit/test_renewal_policy.py",
                                  "tests/unit/test_renewal_rules.py"),
    "keyward/vault/names.py": ("tests/unit/test_vault_names.py",
                               "tests/trust_boundary/test_payload_metadata.py"),
    "keyward/codec/trust.py": ("tests/trust_boundary/test_trust_stamp.py",
                               "tests/unit/test_trust_flag.py"),
    "keyward/temporal/payload_versions.py": (
        "tests/trust_boundary/test_floor_follows_payload_versions.py"
        "::test_versions_are_found_in_every_field_of_a_start_event",
        "tests/unit/test_payload_versions.py"),
    "keyward/pki/install.py": ("tests/pki/test_install.py", "tests/pki/test_install_rules.py",
                               "tests/trust_boundary/test_adopting_files.py"),
    # These two start keyward's dev Vault in each run (about 9 s a mutant).
    "keyward/codec/transit_codec.py": ("tests/integration/test_codec.py",
                                       "tests/integration/test_codec_rules.py",
                                       "tests/trust_boundary/test_trust_stamp.py",
                                       "tests/trust_boundary/test_payload_metadata.py"),
    # Starts the Temporal dev server in each run (about 6 s a mutant).
    "activities/temporal_history.py": ("tests/trust_boundary/test_history_scan_rules.py",),
    "keyward/config/codec.py": ("tests/unit/test_config.py",
                                "tests/trust_boundary/test_payload_metadata.py"),
}

# Modules of which only some functions (or methods) are the rule under test: only mutants
# inside these are made. The rest of such a module is I/O plumbing whose tests need far
# more than these (and a mutant there says nothing about the rule).
MODULE_SCOPE: dict[str, frozenset[str]] = {
    # The floor's version scan: which executions and schedules are read, which versions
    # count, and what makes the answer incomplete (the floor then stays).
    "activities/temporal_history.py": frozenset({
        "describe_history_window", "_versions_carried", "_schedule_versions",
        "_start_event_versions", "_first_blocking"}),
    # The allowed-key rule's settings half (the check itself is in transit_codec.py).
    "keyward/config/codec.py": frozenset({"key_for", "keys_allowed"}),
}

# Reviewed mutants that cannot change behaviour any test could observe, keyed by module and
# mutant id (line:col:operator, stable while the module's source is unchanged). Each entry
# says why. A listed mutant that is killed is reported so the entry can be dropped.
_CACHE_SIZE = "an lru_cache bound: changes memory use, never a result"
EQUIVALENT: dict[str, dict[str, str]] = {
    "keyward/codecserver/cloud_roles.py": {
        "43:18:True->False": "CloudRole is frozen as a value should be; nothing assigns to "
                             "one, so a mutable one behaves the same",
        "74:62:10000+1": "the default bound on remembered users; any size near it caches the "
                         "same (the bound itself is tested with max_users=3)",
        "74:62:10000-1": "the default bound on remembered users; any size near it caches the "
                         "same (the bound itself is tested with max_users=3)",
    },
    "keyward/codec/format.py": {
        "65:21:1+1": "zlib level 2 instead of 1: another speed/ratio trade-off; every level "
                     "inflates to the same bytes, and the compressed size is not specified",
        "89:29:1024+1": _CACHE_SIZE, "89:29:1024-1": _CACHE_SIZE,
        "118:29:4096+1": _CACHE_SIZE, "118:29:4096-1": _CACHE_SIZE,
        "175:29:4096+1": _CACHE_SIZE, "175:29:4096-1": _CACHE_SIZE,
        "138:13:drop-or-operand-2": "`raw or b\"\"` → `raw`: the loop above already raised for "
                                    "every None, so raw is bytes here",
        "145:7:drop-or-operand-1": "`version is None or` dropped: the loop above already "
                                   "raised for a missing version",
        "189:11:<-><=": "a tie (zlib output exactly as long as its input) is kept compressed: "
                        "both choices decode to the same bytes and neither grows the payload",
        "212:34:2+1": "split(':', 3): a third ':' is not base64 either way; both raise "
                      "PayloadFormatError (the message differs)",
        "200:7:drop-or-operand-1": "zlib sets eof only once it has consumed the whole stream, "
                                   "so a non-empty unconsumed_tail implies `not eof`: the "
                                   "first operand is redundant (kept to say why)",
    },
    "keyward/codecserver/jwt_auth.py": {
        "187:12:raise->pass": "unreachable: PyJWT (>= 2.10) already refuses a missing `sub` "
                              "(require) and a non-string one (InvalidSubjectError); this "
                              "check is the second line behind it",
        "197:11:drop-and-operand-2": "unreachable: jwt.get_unverified_header already refuses "
                                     "a header whose kid is not a string",
        "208:41:drop-.strip()": "the header was stripped before the partition, so the token "
                                "part is empty exactly when it is blank",
    },
    "keyward/pki/validate.py": {
        "76:55:0-1": "min_remaining of -1 day instead of 0: the expiry check before it already "
                     "returned for now > not_after, so `not_after - now` is >= 0 and below "
                     "neither bound",
        "195:48:1-1": "the leaf offered again among the intermediates: a path cannot use the "
                      "certificate it starts from, so the verdict is the same",
        "210:46:1-1": "same as 195:48:1-1, for the pinned-anchor path",
        "216:11:drop-or-operand-1": "a supplied CA that is itself pinned verifies against the "
                                    "pin on its own; skipping it is only a shortcut",
        "293:8:return->return-None": "None instead of False from a predicate only used in any()",
    },
    "keyward/policy/cadence.py": {
        "193:7:<=-><": "a rate of exactly 1 reads '1' either way: f'{1.0:.3g}' and "
                       "f'{round(1.0):,}' are the same text",
    },
    "keyward/policy/retention.py": {
        "113:24:0-1": "retired[-1] instead of retired[0] where len(retired) == 1: the same "
                      "element",
        "197:7:drop-or-operand-1": "a naive datetime's utcoffset() is None as well, so the "
                                   "second operand alone decides the same",
    },
    "keyward/pki/install.py": {
        "82:67:4+1": "the scratch file's random suffix is 10 hex digits instead of 8: any "
                     "unique name works",
        "82:67:4-1": "the same, 6 hex digits",
        **dict.fromkeys(("294:35:1+1", "294:40:16+1", "294:40:16-1"),
                        "the read chunk size (64 KiB vs 32 or 128 KiB): the loop reads to the "
                        "end either way"),
        **dict.fromkeys(("358:29:==->!=", "358:7:drop-and-operand-2"),
                        "symlinks that keyward did not make are refused before this point "
                        "(adoption), so any symlink here already points at ..data/<name>; "
                        "re-creating it by rename is invisible"),
    },
    "keyward/codec/transit_codec.py": {
        "170:71:True->False": "zip(strict=False): AsyncTransit.encrypt already refuses an "
                              "answer with another count of results (test_codec_rules)",
        "185:70:True->False": "zip(strict=False): EncodeKeyCache.reserve returns exactly one "
                              "data key per payload (its loop ends when none remain)",
        "246:70:True->False": "zip(strict=False): AsyncTransit.decrypt already refuses an "
                              "answer with another count of results (test_codec_rules)",
        "266:67:True->False": "zip(strict=False): as above, for the wrapped data keys",
    },
    "activities/temporal_history.py": {
        "100:56:<-><=": "a tie: two executions that started at the same microsecond; either "
                        "one explains the window",
        "107:58:<-><=": "a tie: two holders of the same lowest version; either one is named "
                        "and the version is the same",
        "129:82:1+1": "lists at most one execution more; the limit check already fired at "
                      "the first one past the limit",
        "137:19:>=->>": "start events read 17 at a time instead of 16: concurrency only",
        "312:66:1+1": "history page size 2 (or the server's default, below): only the "
                      "first event, the start event, is read",
        "312:66:1-1": "page size 0 is the server's default; only the first event is read",
        "322:12:return->return-None": "unreachable: every history the server returns starts "
                                      "with its WorkflowExecutionStarted event",
        "330:53:True->False": "gather without return_exceptions raises the first error as "
                              "well; only the other reads are then left unawaited",
        "358:70:1+1": "lists two blocking executions instead of one; the first is used",
    },
    "keyward/codec/trust.py": {
        "72:67:True->False": "zip(strict=False): the base converter returns one value per "
                             "payload, so the lengths always match",
    },
    "keyward/temporal/payload_versions.py": dict.fromkeys(
        ("34:11:or->and", "34:11:drop-or-operand-1", "34:11:drop-or-operand-2"),
        "a field's message_type is None exactly when its type is not TYPE_MESSAGE (scalars, "
        "enums), so either operand alone, or both with `and`, decide the same"),
}

# Code the project imports from; a forked child forgets these so it imports them afresh,
# with the mutant in place. Third-party modules stay imported (that is the speed-up).
PROJECT_PACKAGES = ("keyward", "workflows", "activities", "tests", "worker", "starter",
                    "codec_server", "bench", "keyward_devstack")

_CMP_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.In: ast.NotIn, ast.NotIn: ast.In,
}
_CMP_TEXT: dict[type[ast.cmpop], str] = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}

#: String normalisations whose call is dropped (``name.lower()`` → ``name``): a missing
#: lower-casing or strip is a classic hole in a permission or name check.
_NORMALISING_METHODS: Final = frozenset({"lower", "upper", "casefold", "strip", "lstrip",
                                         "rstrip"})


@dataclass(frozen=True)
class Mutant:
    index: int
    line: int
    col: int
    operator: str
    #: 2, 3, ... for a second or third mutant with the same place and operator.
    occurrence: int = 1

    @property
    def id(self) -> str:
        suffix = f"#{self.occurrence}" if self.occurrence > 1 else ""
        return f"{self.line}:{self.col}:{self.operator}{suffix}"


class _Mutator(ast.NodeTransformer):
    """Walks a module; lists every mutation point, or applies the one numbered ``target``.

    Annotations and docstrings are not visited: changing them changes no behaviour.
    """

    def __init__(self, target: int | None = None) -> None:
        self.target = target
        self.found: list[Mutant] = []

    def _point(self, node: ast.AST, operator: str) -> bool:
        """Record one mutation point; true when it is the one to apply."""
        index = len(self.found)
        line, col = getattr(node, "lineno", 0), getattr(node, "col_offset", 0)
        occurrence = 1 + sum(1 for m in self.found
                             if (m.line, m.col, m.operator) == (line, col, operator))
        self.found.append(Mutant(index, line, col, operator, occurrence))
        return index == self.target

    # -- places not to mutate -------------------------------------------------------------
    def _body_without_docstring(self, node: ast.AST) -> None:
        body = getattr(node, "body", [])
        if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            body[1:] = [self.visit(stmt) for stmt in body[1:]]
        else:
            body[:] = [self.visit(stmt) for stmt in body]

    def visit_Module(self, node: ast.Module) -> ast.AST:
        self._body_without_docstring(node)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args = self.visit(node.args)
        self._body_without_docstring(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.bases = [self.visit(b) for b in node.bases]
        node.keywords = [self.visit(k) for k in node.keywords]
        self._body_without_docstring(node)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_If(self, node: ast.If) -> ast.AST:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return node
        return self.generic_visit(node)

    # -- mutation operators ---------------------------------------------------------------
    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        for i, op in enumerate(node.ops):
            swapped = _CMP_SWAP[type(op)]
            if self._point(node, f"{_CMP_TEXT[type(op)]}->{_CMP_TEXT[swapped]}"):
                node.ops[i] = swapped()
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            if self._point(node, f"{value}->{not value}"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, int | float):
            for delta, text in ((1, "+1"), (-1, "-1")):
                if self._point(node, f"{value}{text}"):
                    return ast.copy_location(ast.Constant(value + delta), node)
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        name = "and" if isinstance(node.op, ast.And) else "or"
        other: ast.boolop = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        if self._point(node, f"{name}->{'or' if name == 'and' else 'and'}"):
            return ast.copy_location(ast.BoolOp(other, node.values), node)
        for i in range(len(node.values)):
            if self._point(node, f"drop-{name}-operand-{i + 1}"):
                rest = node.values[:i] + node.values[i + 1:]
                if len(rest) == 1:
                    return rest[0]
                return ast.copy_location(ast.BoolOp(node.op, rest), node)
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and self._point(node, "remove-not"):
            return node.operand
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr in _NORMALISING_METHODS
                and self._point(node, f"drop-.{func.attr}()")):
            return func.value
        return node

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        self.generic_visit(node)
        if self._point(node, "raise->pass"):
            return ast.copy_location(ast.Pass(), node)
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        self.generic_visit(node)
        if (node.value is not None
                and not (isinstance(node.value, ast.Constant) and node.value.value is None)
                and self._point(node, "return->return-None")):
            return ast.copy_location(ast.Return(ast.Constant(None)), node)
        return node

    def visit_Continue(self, node: ast.Continue) -> ast.AST:
        if self._point(node, "continue->break"):
            return ast.copy_location(ast.Break(), node)
        return node

    def visit_Break(self, node: ast.Break) -> ast.AST:
        if self._point(node, "break->continue"):
            return ast.copy_location(ast.Continue(), node)
        return node


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def enumerate_mutants(tree: ast.Module) -> list[Mutant]:
    mutator = _Mutator()
    mutator.visit(copy.deepcopy(tree))
    return mutator.found


def module_mutants(path: str, tree: ast.Module) -> list[Mutant]:
    """The mutants of ``path``, limited to its ``MODULE_SCOPE`` functions if it has any."""
    mutants = enumerate_mutants(tree)
    scope = MODULE_SCOPE.get(path)
    if scope is None:
        return mutants
    spans = [(node.lineno, node.end_lineno or node.lineno) for node in ast.walk(tree)
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in scope]
    missing = scope - {node.name for node in ast.walk(tree)
                       if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if missing:
        raise SystemExit(f"{path}: MODULE_SCOPE names no such function: {sorted(missing)}")
    return [m for m in mutants if any(first <= m.line <= last for first, last in spans)]


def mutated_code(tree: ast.Module, mutant: Mutant, filename: str) -> CodeType:
    """The module compiled with exactly this one mutation applied (the tree is not touched)."""
    mutator = _Mutator(target=mutant.index)
    edited = ast.fix_missing_locations(mutator.visit(copy.deepcopy(tree)))
    return compile(edited, filename, "exec")


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


class MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers the import of one module name with the mutated code, from memory."""

    def __init__(self, name: str, filename: str, code: CodeType) -> None:
        self.name, self.filename, self.code = name, filename, code

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(fullname, self.filename, loader=self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        exec(self.code, module.__dict__)  # noqa: S102 - the mutant under test, by design


def _forget_project_modules() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in PROJECT_PACKAGES:
            del sys.modules[name]


def _pytest_args(tests: Sequence[str]) -> list[str]:
    return [*tests, "-x", "-q", "-p", "no:cacheprovider", "--no-header", "-o", "timeout=60"]


def warm_up(tests: Sequence[str]) -> None:
    """Import the tests' third-party dependencies once in the parent (collect only)."""
    import pytest  # noqa: PLC0415 - only the runner needs pytest, not the module listing

    with _silenced():
        pytest.main([*_pytest_args(tests), "--collect-only"])
    _forget_project_modules()


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _child(tests: Sequence[str], finder: MutantFinder | None) -> None:
    """In the forked child: run the tests against the mutant; exit with pytest's code."""
    import pytest  # noqa: PLC0415

    code = 3
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        _forget_project_modules()
        if finder is not None:
            sys.meta_path.insert(0, finder)
        code = int(pytest.main(_pytest_args(tests)))
    finally:
        os._exit(code)


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant | None
    status: str  # "killed" | "survived" | "timeout"
    seconds: float


def run_all(jobs: Sequence[Mutant | None], start: Callable[[Mutant | None], int],
            timeout: float, workers: int) -> list[Outcome]:
    """Run the jobs in forked children, ``workers`` at a time, each within ``timeout``."""
    pending = list(jobs)
    running: dict[int, tuple[Mutant | None, float]] = {}
    outcomes: list[Outcome] = []
    while pending or running:
        while pending and len(running) < workers:
            job = pending.pop(0)
            running[start(job)] = (job, time.monotonic())
        time.sleep(0.02)
        for pid, (job, began) in list(running.items()):
            waited, status = os.waitpid(pid, os.WNOHANG)
            elapsed = time.monotonic() - began
            if waited == 0 and elapsed > timeout:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                outcomes.append(Outcome(job, "timeout", elapsed))
                del running[pid]
            elif waited != 0:
                code = os.waitstatus_to_exitcode(status)
                outcomes.append(Outcome(job, "survived" if code == 0 else "killed", elapsed))
                del running[pid]
    return outcomes


@dataclass(frozen=True)
class Report:
    module: str
    mutants: int
    killed: int
    equivalent: int
    survivors: list[Mutant]
    wrongly_equivalent: list[Mutant]

    @property
    def score(self) -> float:
        counted = self.mutants - self.equivalent
        return 100.0 if counted == 0 else 100.0 * self.killed / counted


def mutate_module(path: str, *, sample: int | None, match: str | None, seed: int,
                  timeout: float | None, workers: int,
                  tests: Sequence[str] | None = None) -> Report:
    tests = tuple(tests) if tests else MODULE_TESTS[path]
    filename = str(ROOT / path)
    tree = parse(ROOT / path)
    mutants = module_mutants(path, tree)
    if match is not None:
        mutants = [m for m in mutants if match in m.id]
    if sample is not None and sample < len(mutants):
        mutants = sorted(random.Random(seed).sample(mutants, sample), key=lambda m: m.index)
    name = module_name(path)
    equivalent = EQUIVALENT.get(path, {})
    warm_up(tests)

    def start(job: Mutant | None) -> int:
        finder = None if job is None else MutantFinder(name, filename,
                                                       mutated_code(tree, job, filename))
        pid = os.fork()
        if pid == 0:
            _child(tests, finder)
        return pid

    (baseline,) = run_all([None], start, timeout=600, workers=1)
    if baseline.status != "survived":
        raise SystemExit(f"{path}: the unmutated module fails {' '.join(tests)}")
    limit = timeout if timeout is not None else 3 * baseline.seconds + 10
    print(f"{path}: {len(mutants)} mutants, tests {' '.join(tests)} "
          f"(baseline {baseline.seconds:.1f} s, timeout {limit:.0f} s)", flush=True)
    outcomes = run_all(mutants, start, timeout=limit, workers=workers)
    outcomes.sort(key=lambda o: o.mutant.index if o.mutant else -1)
    survivors, killed, wrongly_equivalent, n_equivalent = [], 0, [], 0
    for outcome in outcomes:
        mutant = outcome.mutant
        if mutant is None:  # only the baseline job has none, and it ran separately
            continue
        if mutant.id in equivalent:
            n_equivalent += 1
            if outcome.status != "survived":
                wrongly_equivalent.append(mutant)
        elif outcome.status == "survived":
            survivors.append(mutant)
        else:
            killed += 1
    return Report(path, len(mutants), killed, n_equivalent, survivors, wrongly_equivalent)


def print_report(report: Report) -> None:
    lines = (ROOT / report.module).read_text(encoding="utf-8").splitlines()
    print(f"{report.module}: {report.mutants} mutants, {report.killed} killed, "
          f"{report.equivalent} equivalent, {len(report.survivors)} survived, "
          f"score {report.score:.1f} %")
    for mutant in report.survivors:
        print(f"  survived {mutant.id:<40} {lines[mutant.line - 1].strip()[:70]}")
    for mutant in report.wrongly_equivalent:
        print(f"  listed as equivalent but killed: {mutant.id} (drop it from EQUIVALENT)")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module paths (default: all mapped)")
    parser.add_argument("--quick", nargs="?", type=int, const=8, default=None, metavar="N",
                        help="sample N mutants per module (default 8)")
    parser.add_argument("--mutant", help="run only mutants whose id contains this text")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per mutant (default: 3 x baseline + 10)")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--tests", nargs="+", metavar="TEST",
                        help="run these test files instead of the mapped ones (one module)")
    args = parser.parse_args(argv)
    modules = args.modules or list(MODULE_TESTS)
    if args.tests and len(modules) != 1:
        parser.error("--tests needs exactly one module")
    unknown = [m for m in modules if m not in MODULE_TESTS and not (ROOT / m).is_file()]
    if unknown or (not args.tests and not args.list
                   and any(m not in MODULE_TESTS for m in modules)):
        parser.error(f"no test files mapped for {', '.join(unknown or modules)} "
                     "(add it to MODULE_TESTS or pass --tests)")
    os.chdir(ROOT)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args.list:
        for path in modules:
            for mutant in module_mutants(path, parse(ROOT / path)):
                print(f"{path} {mutant.id}")
        return 0
    reports = []
    for path in modules:
        report = mutate_module(path, sample=args.quick, match=args.mutant, seed=args.seed,
                               timeout=args.timeout, workers=args.workers, tests=args.tests)
        print_report(report)
        reports.append(report)
    print("RESULT " + " ".join(f"{r.module}={r.score:.1f}" for r in reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
