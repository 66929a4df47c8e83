"""bench/mutation.py finds what the tests miss: a known-bad mutant is killed, an untested
one survives and is listed, the report is well formed, and no file changes on disk."""

from __future__ import annotations

import ast
import hashlib
import re
import subprocess
import sys
from pathlib import Path

from bench.mutation import EQUIVALENT, MODULE_TESTS, enumerate_mutants, mutated_code

ROOT = Path(__file__).resolve().parents[2]
MODULE = "keyward/codecserver/permissions.py"
#: ``READER = 2`` → ``READER = 3``: the read role's bit moves, which the tests must notice.
READER_BIT = "27:13:2+1"
REPORT = re.compile(r"^keyward/codecserver/permissions\.py: (\d+) mutants, (\d+) killed, "
                    r"(\d+) equivalent, (\d+) survived, score \d+\.\d %$", re.MULTILINE)
RESULT = re.compile(r"^RESULT keyward/codecserver/permissions\.py=\d+\.\d$")


def run(*args: str) -> str:
    result = subprocess.run([sys.executable, "bench/mutation.py", MODULE, *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_known_bad_mutant_is_killed_and_the_source_is_untouched() -> None:
    """The read role's bit moved by one fails the permission tests; the module's file is
    byte for byte what it was (mutants live in memory only)."""
    source = ROOT / MODULE
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    stdout = run("--mutant", READER_BIT)
    assert [m.groups() for m in REPORT.finditer(stdout)] == [("1", "1", "0", "0")], stdout
    assert stdout.strip().splitlines()[-1] == f"RESULT {MODULE}=100.0"
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before


def test_an_untested_mutant_survives_and_is_listed() -> None:
    """Against a test that never looks at the read role, the same mutant survives, and the
    report names it with its line."""
    blind = "tests/codecserver/test_permissions.py::test_non_list_claims_grant_nothing"
    stdout = run("--mutant", READER_BIT, "--tests", blind)
    assert [m.groups() for m in REPORT.finditer(stdout)] == [("1", "0", "0", "1")], stdout
    listed = re.compile(rf"^  survived {re.escape(READER_BIT)} +READER = 2$", re.MULTILINE)
    assert listed.search(stdout), stdout
    assert stdout.strip().splitlines()[-1] == f"RESULT {MODULE}=0.0"


def test_quick_mode_samples_and_reports() -> None:
    """``--quick 3`` runs three sampled mutants and ends with the RESULT line."""
    stdout = run("--quick", "3")
    (report,) = REPORT.finditer(stdout)
    mutants, killed, equivalent, survived = map(int, report.groups())
    assert mutants == 3
    assert killed + equivalent + survived == 3
    assert RESULT.match(stdout.strip().splitlines()[-1]), stdout


def test_mutants_skip_docstrings_and_annotations() -> None:
    """Docstrings and annotations are never mutated; each operator applies to its node."""
    source = '''"""Doc 1."""
def f(x: int = 1) -> bool:
    """Doc 2."""
    if not x and x < 2:
        raise ValueError(x.lower())
    for _ in ():
        continue
    return x == 3
'''
    tree = ast.parse(source)
    operators = [m.operator for m in enumerate_mutants(tree)]
    assert operators == ["1+1", "1-1", "remove-not", "2+1", "2-1", "<-><=", "and->or",
                         "drop-and-operand-1", "drop-and-operand-2", "drop-.lower()",
                         "raise->pass", "continue->break", "3+1", "3-1", "==->!=",
                         "return->return-None"]
    raise_mutant = next(m for m in enumerate_mutants(tree) if m.operator == "raise->pass")
    namespace: dict[str, object] = {}
    exec(mutated_code(tree, raise_mutant, "<test>"), namespace)  # noqa: S102
    assert namespace["f"](0) is False  # type: ignore[operator]


def test_every_mapped_module_and_equivalent_entry_exists() -> None:
    """Each mapped module and test file exists, and each equivalent entry names a mutant the
    module really has (an edit to the module shows up here as a stale entry)."""
    for module, tests in MODULE_TESTS.items():
        assert (ROOT / module).is_file(), module
        for test in tests:
            assert (ROOT / test.split("::")[0]).is_file(), test
    for module, entries in EQUIVALENT.items():
        ids = {m.id for m in enumerate_mutants(ast.parse((ROOT / module).read_text()))}
        assert set(entries) <= ids, (module, set(entries) - ids)
        assert all(reason.strip() for reason in entries.values())
