"""The dependency rule of docs/architecture.md, checked on every module's imports.

Every ``.py`` file of keyward, its workflows and activities, the entry scripts, the dev
stack, the tests and the benchmarks is parsed (no module is imported); each import is
classified by the layer of the module that makes it and the layer of the module it names,
and held to :data:`ALLOWED`. Two more rules: a function may import only an optional
dependency (an extra or the dev stack, which keyward must run without); no two modules
import each other, however far round; a workflow calls activities only through
``workflows.activity_calls.run_activity`` and a contract, and imports keyward's contracts
and pure policy through ``workflow.unsafe.imports_passed_through()``.

Each rule is also run on small synthetic trees that break it, so a rule that cannot fail
would fail here.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

ROOT = Path(__file__).resolve().parent.parent

ENTRY_SCRIPTS = frozenset({"worker", "starter", "codec_server"})
#: Top-level names that are this repository's own code.
FIRST_PARTY = ENTRY_SCRIPTS | {"keyward", "workflows", "activities", "keyward_devstack",
                               "tests", "bench"}
#: Imported only inside the function that needs them, because keyward must import and run
#: without them: pip extras (``azure``, ``kubernetes``) and the dev stack's distribution.
OPTIONAL = frozenset({"azure", "kubernetes", "keyward_devstack"})
#: The pure code workflows may call besides the contracts (no I/O, stdlib only): these
#: modules and packages, and the package ``__init__`` files Python runs on the way to them.
PURE = ("keyward.errors", "keyward.policy", "keyward.vault.names")
PURE_PARENTS = ("keyward", "keyward.vault")

Layer = Literal["stdlib", "temporalio", "third-party", "contracts", "pure", "library",
                "composition", "workflows", "activities", "entry", "worker", "devstack",
                "tests"]

_LIBRARY: frozenset[Layer] = frozenset({"stdlib", "temporalio", "third-party", "contracts",
                                        "pure", "library"})
_COMPOSITION: frozenset[Layer] = _LIBRARY | {"activities", "workflows", "composition"}
#: importer layer → the layers it may import. Entry scripts are never imported ("entry" as
#: a target); only ``worker.py`` may name the dev stack, for ``--dev``.
ALLOWED: Mapping[Layer, frozenset[Layer]] = {
    "contracts": frozenset({"stdlib", "contracts"}),
    "pure": frozenset({"stdlib", "pure"}),
    "workflows": frozenset({"stdlib", "temporalio", "contracts", "pure", "workflows"}),
    "library": _LIBRARY,
    "activities": _LIBRARY | {"activities"},
    "composition": _COMPOSITION,
    "devstack": _LIBRARY | {"devstack"},
    "entry": _COMPOSITION,
    "worker": _COMPOSITION | {"devstack"},
    "tests": _COMPOSITION | {"devstack", "tests"},
}
#: The one module of ``workflows`` that starts activities (through a contract).
ACTIVITY_CALLER = "workflows.activity_calls"
#: ``workflow.*`` functions that start an activity.
ACTIVITY_STARTERS = frozenset({
    "execute_activity", "start_activity", "execute_activity_method", "start_activity_method",
    "execute_activity_class", "start_activity_class", "execute_local_activity",
    "start_local_activity", "execute_local_activity_method", "start_local_activity_method",
    "execute_local_activity_class", "start_local_activity_class"})


def layer_of(module: str) -> Layer:
    """The layer of a module, by name (it need not exist: a typo is still classified)."""
    top = module.partition(".")[0]
    if top not in FIRST_PARTY:
        if top == "temporalio":
            return "temporalio"
        return "stdlib" if top in sys.stdlib_module_names else "third-party"
    if _within(module, "keyward.contracts"):
        return "contracts"
    if module in PURE_PARENTS or any(_within(module, package) for package in PURE):
        return "pure"
    if _within(module, "keyward.app"):
        return "composition"
    layers: dict[str, Layer] = {"keyward": "library", "workflows": "workflows",
                                "activities": "activities", "keyward_devstack": "devstack",
                                "tests": "tests", "bench": "tests", "worker": "worker",
                                "starter": "entry", "codec_server": "entry"}
    return layers[top]


def target_layer(module: str) -> Layer:
    """As :func:`layer_of`, except that every entry script is just an entry script."""
    layer = layer_of(module)
    return "entry" if layer == "worker" else layer


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# --- reading the tree ---------------------------------------------------------------------

@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    line: int
    #: Inside a function body (a lazy import) and not under ``if TYPE_CHECKING:``.
    lazy: bool
    #: Under ``if TYPE_CHECKING:`` (not executed at run time).
    type_only: bool
    #: Inside ``with workflow.unsafe.imports_passed_through():``.
    passed_through: bool = False


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module


def discover(root: Path) -> dict[str, Module]:
    """Every first-party module under ``root``, laid out as this repository is."""
    found: dict[str, Path] = {}
    for top in ("keyward", "workflows", "activities", "tests", "bench"):
        found.update(_package(root, root / top))
    found.update(_package(root / "devstack", root / "devstack" / "keyward_devstack"))
    for script in sorted(ENTRY_SCRIPTS):
        if (root / f"{script}.py").is_file():
            found[script] = root / f"{script}.py"
    return {name: Module(name, path, ast.parse(path.read_text(), str(path)))
            for name, path in found.items()}


def _package(base: Path, directory: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(directory.rglob("*.py")) if directory.is_dir() else ():
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def imports_of(module: Module, known: Mapping[str, Module]) -> list[Import]:
    found: list[Import] = []
    package = module.name if module.path.name == "__init__.py" \
        else module.name.rpartition(".")[0]

    def visit(node: ast.AST, *, in_function: bool, type_only: bool,
              passed: bool = False) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                for target in _targets(child, package, known):
                    found.append(Import(module.name, target, child.lineno,
                                        lazy=in_function and not type_only,
                                        type_only=type_only, passed_through=passed))
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    visit(ast.Module(body=[statement], type_ignores=[]),
                          in_function=in_function, type_only=True, passed=passed)
                for statement in child.orelse:
                    visit(ast.Module(body=[statement], type_ignores=[]),
                          in_function=in_function, type_only=type_only, passed=passed)
            else:
                visit(child, type_only=type_only, passed=passed or _passes_through(child),
                      in_function=in_function or isinstance(
                          child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(module.tree, in_function=False, type_only=False)
    return found


def _passes_through(node: ast.AST) -> bool:
    """``with workflow.unsafe.imports_passed_through():`` (however ``workflow`` is named)."""
    return isinstance(node, ast.With) and any(
        isinstance(item.context_expr, ast.Call)
        and isinstance(item.context_expr.func, ast.Attribute | ast.Name)
        and getattr(item.context_expr.func, "attr", getattr(item.context_expr.func, "id", ""))
        == "imports_passed_through" for item in node.items)


def _targets(node: ast.Import | ast.ImportFrom, package: str,
             known: Mapping[str, Module]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        base = ".".join([*parent, *([base] if base else [])])
    # `from keyward import contracts` names the submodule when there is one.
    return list(dict.fromkeys(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known
                              else base for alias in node.names))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


# --- the rules ----------------------------------------------------------------------------

def layer_violations(modules: Mapping[str, Module]) -> list[str]:
    """Imports of a layer the importer's layer may not import (type-only ones included:
    a type that crosses a layer is a dependency too)."""
    problems = []
    for module in modules.values():
        importer = layer_of(module.name)
        for item in imports_of(module, modules):
            target = target_layer(item.target)
            if target not in ALLOWED[importer]:
                problems.append(f"{module.name}:{item.line}: {importer} may not import "
                                f"{target} ({item.target})")
    return problems


def needs_optional(modules: Mapping[str, Module]) -> set[str]:
    """First-party modules that import an optional dependency when they are imported."""
    eager = {name: {i.target for i in imports_of(module, modules)
                    if not i.lazy and not i.type_only}
             for name, module in modules.items()}
    needing: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, targets in eager.items():
            if name not in needing and any(
                    t.partition(".")[0] in OPTIONAL or t in needing for t in targets):
                needing.add(name)
                changed = True
    return needing


def lazy_import_violations(modules: Mapping[str, Module]) -> list[str]:
    """Imports inside functions, except of optional dependencies (or of first-party
    modules that need one). Tests may import as they like."""
    optional = needs_optional(modules)
    problems = []
    for module in modules.values():
        if layer_of(module.name) == "tests":
            continue
        for item in imports_of(module, modules):
            if item.lazy and item.target.partition(".")[0] not in OPTIONAL \
                    and item.target not in optional:
                problems.append(f"{module.name}:{item.line}: imports {item.target} inside "
                                "a function, and it is not an optional dependency")
    return problems


def activity_call_violations(modules: Mapping[str, Module]) -> list[str]:
    """A workflow starts an activity only through ``run_activity`` (which names it by its
    contract): no ``workflow.execute_activity*`` elsewhere, no activity named by a string."""
    problems = []
    for module in modules.values():
        if layer_of(module.name) != "workflows":
            continue
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call):
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) \
                else node.func.id if isinstance(node.func, ast.Name) else None
            if called not in ACTIVITY_STARTERS:
                continue
            if module.name != ACTIVITY_CALLER:
                problems.append(f"{module.name}:{node.lineno}: {called} outside "
                                f"{ACTIVITY_CALLER}: call run_activity with a contract")
            elif node.args and isinstance(node.args[0], ast.Constant):
                problems.append(f"{module.name}:{node.lineno}: an activity named by a "
                                "literal, not a contract")
    return problems


def passthrough_violations(modules: Mapping[str, Module]) -> list[str]:
    """A workflow imports keyward's contracts and pure policy through the sandbox
    (``workflow.unsafe.imports_passed_through()``), so that every sandbox, the worker's,
    a test's or a replayer's, uses the worker's own classes: the sandbox swaps in a
    restricted ``datetime``, and a contract loaded inside it has datetime fields the
    payload converter cannot fill."""
    problems = []
    for module in modules.values():
        if layer_of(module.name) != "workflows":
            continue
        for item in imports_of(module, modules):
            if target_layer(item.target) in ("contracts", "pure") \
                    and not item.passed_through and not item.type_only:
                problems.append(f"{module.name}:{item.line}: imports {item.target} inside "
                                "the sandbox: import it in workflow.unsafe."
                                "imports_passed_through()")
    return problems


def cycle_violations(modules: Mapping[str, Module]) -> list[str]:
    """Modules that import each other, directly or around a longer loop. A function-level
    import closes a loop too: deferring an import does not take the module out of it.
    Importing ``a.b.c`` runs the ``__init__`` of ``a`` and ``a.b`` as well, so those count
    (except from inside the package: a package importing its own modules is no loop)."""
    graph = {name: sorted(_runs(name, modules, module)) for name, module in modules.items()}
    problems: list[str] = []
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        path.append(name)
        for target in graph[name]:
            if target in path:
                problems.append("import cycle: " + " -> ".join(
                    [*path[path.index(target):], target]))
            elif target not in done:
                visit(target)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name)
    return problems


def _runs(name: str, modules: Mapping[str, Module], module: Module) -> set[str]:
    """The first-party modules whose code runs when ``module``'s imports run."""
    runs = set()
    for item in imports_of(module, modules):
        if item.type_only:
            continue
        parts = item.target.split(".")
        for length in range(1, len(parts) + 1):
            package = ".".join(parts[:length])
            if package in modules and package != name and (
                    length == len(parts) or not _within(name, package)):
                runs.add(package)
    return runs


def all_violations(root: Path) -> list[str]:
    modules = discover(root)
    return (layer_violations(modules) + lazy_import_violations(modules)
            + activity_call_violations(modules) + passthrough_violations(modules)
            + cycle_violations(modules))


# --- the repository keeps them ------------------------------------------------------------

def test_the_repository_keeps_the_dependency_rule() -> None:
    """No module imports a layer it may not, imports lazily what is not optional, takes
    part in an import cycle, or starts an activity other than through its contract; no
    workflow loads a contract inside the sandbox."""
    assert all_violations(ROOT) == []


def test_the_checker_sees_every_layer() -> None:
    """Discovery finds the whole tree, so the rule above is not vacuously true."""
    modules = discover(ROOT)
    seen = {layer_of(name) for name in modules}
    assert seen == set(ALLOWED), set(ALLOWED) - seen
    assert len(modules) > 200, len(modules)
    assert sum(len(imports_of(m, modules)) for m in modules.values()) > 1500


def test_only_optional_dependencies_are_imported_lazily_in_the_repository() -> None:
    """The lazy imports that remain are the extras' and the dev stack's, nothing else."""
    modules = discover(ROOT)
    lazy = {item.target.partition(".")[0] if item.target.partition(".")[0] in OPTIONAL
            else item.target
            for module in modules.values() if layer_of(module.name) != "tests"
            for item in imports_of(module, modules) if item.lazy}
    assert lazy == {"azure", "kubernetes", "keyward_devstack", "keyward.issuers.azure_keyvault",
                    "keyward.authorities.azure_keyvault",
                    "keyward.issuers.cert_manager", "keyward.stores.azure_keyvault",
                    "keyward.stores.kubernetes_secret"}


def test_the_optional_dependencies_are_extras_or_the_dev_stack() -> None:
    """What the lazy-import rule exempts is really optional: installed by an extra of
    pyproject.toml (never by a core dependency), or the dev stack's own distribution."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_dist(spec) for spec in project["dependencies"]}
    extras = {_dist(spec) for name, specs in project["optional-dependencies"].items()
              if name != "dev" for spec in specs}
    providers = importlib.metadata.packages_distributions()
    for module in OPTIONAL - {"keyward_devstack"}:
        dists = {_dist(d) for d in providers[module]}
        assert dists & extras, (module, dists)
        assert not dists & core, (module, dists)
    devstack = tomllib.loads((ROOT / "devstack" / "pyproject.toml").read_text())
    assert devstack["project"]["name"] == "keyward-devstack"
    assert (ROOT / "devstack" / "keyward_devstack" / "__init__.py").is_file()


def _dist(spec: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", spec)
    assert name is not None, spec
    return re.sub(r"[-_.]+", "-", name.group()).lower()


# --- each rule fails when broken ----------------------------------------------------------

#: A module of each first-party layer, and an import that names it.
SAMPLES: Mapping[Layer, tuple[str, str]] = {
    "contracts": ("keyward/contracts/sample.py", "keyward.contracts.sample"),
    "pure": ("keyward/policy/sample.py", "keyward.policy.sample"),
    "library": ("keyward/sample.py", "keyward.sample"),
    "composition": ("keyward/app/sample.py", "keyward.app.sample"),
    "workflows": ("workflows/sample.py", "workflows.sample"),
    "activities": ("activities/sample.py", "activities.sample"),
    "entry": ("starter.py", "starter"),
    "worker": ("worker.py", "worker"),
    "devstack": ("devstack/keyward_devstack/sample.py", "keyward_devstack.sample"),
    "tests": ("tests/sample.py", "tests.sample"),
}
#: An import of each kind of module outside the repository.
OUTSIDE: Mapping[Layer, str] = {"stdlib": "json", "temporalio": "temporalio.workflow",
                                "third-party": "hvac"}
TARGETS: Mapping[Layer, str] = {
    **OUTSIDE, **{layer: name for layer, (_, name) in SAMPLES.items() if layer != "worker"}}


def tree(root: Path, files: Mapping[str, str]) -> Path:
    """A repository-shaped tree: the packages' ``__init__.py`` files and ``files``."""
    for package in ("keyward", "keyward/contracts", "keyward/policy", "keyward/app",
                    "workflows", "activities", "devstack/keyward_devstack", "tests"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").touch()
    for relative, source in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(source)
    return root


def import_source(importer: Layer, target: Layer) -> str:
    """``import TARGET``, through the sandbox where a workflow must import it so."""
    if importer == "workflows" and target in ("contracts", "pure"):
        return ("from temporalio import workflow\n"
                f"with workflow.unsafe.imports_passed_through():\n    import {TARGETS[target]}\n")
    return f"import {TARGETS[target]}\n"


def pairs(*, allowed: bool) -> list[tuple[Layer, Layer]]:
    return [(importer, target) for importer in SAMPLES for target in TARGETS
            if (target in ALLOWED[importer]) is allowed]


@pytest.mark.parametrize(("importer", "target"), pairs(allowed=False))
def test_every_forbidden_import_is_reported(tmp_path: Path, importer: Layer,
                                            target: Layer) -> None:
    """Each cell of the layer table that says no: an import across it is a violation."""
    path, _ = SAMPLES[importer]
    root = tree(tmp_path, {path: import_source(importer, target)})
    assert len(problems := all_violations(root)) == 1, problems
    assert f"{importer} may not import {target} ({TARGETS[target]})" in problems[0]


@pytest.mark.parametrize(("importer", "target"), pairs(allowed=True))
def test_every_allowed_import_passes(tmp_path: Path, importer: Layer, target: Layer) -> None:
    """... and each cell that says yes is not reported (the checker does not refuse all)."""
    path, _ = SAMPLES[importer]
    root = tree(tmp_path, {path: import_source(importer, target)})
    assert all_violations(root) == []


@pytest.mark.parametrize("source", [
    "from keyward import sample\n",                 # a submodule through its package
    "from .. import sample\n",                      # relative, from keyward.contracts.x
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import keyward.sample\n",
    "def later():\n    import keyward.sample\n",
])
def test_every_spelling_of_an_import_counts(tmp_path: Path, source: str) -> None:
    """A contracts module reaching the library through a package, a relative import, a
    type-only import or a function body is reported all the same."""
    root = tree(tmp_path, {"keyward/sample.py": "", "keyward/contracts/x.py": source})
    assert any("contracts may not import library (keyward.sample)" in problem
               for problem in all_violations(root)), all_violations(root)


def test_the_real_workflow_imports_are_classified_as_allowed() -> None:
    """What workflows really use: policy, Vault names and the contracts; not the rest."""
    assert layer_of("keyward.policy.retention") == "pure"
    assert layer_of("keyward.vault.names") == "pure"
    assert layer_of("keyward.vault") == "pure"
    assert layer_of("keyward.vault.client") == "library"
    assert layer_of("keyward.errors") == "pure"
    assert layer_of("keyward.config") == "library"
    assert layer_of("keyward.contracts") == "contracts"
    assert layer_of("keyward.app.worker") == "composition"


def test_the_cloud_package_is_library_and_its_init_loads_nothing() -> None:
    """keyward.cloud (the Cloud Ops API client) is library: it may use the SDK's client and
    the rest of the library, workflows may not import it. keyward.config's [cloud] section
    (keyward.config.cloud) checks namespace names with keyward.cloud.names, so the package's
    __init__ must import nothing (not the client, nothing that imports keyward.config back),
    and the naming rule no more than contracts and errors."""
    modules = discover(ROOT)
    cloud = sorted(name for name in modules if _within(name, "keyward.cloud"))
    assert cloud == ["keyward.cloud", "keyward.cloud.client_cas", "keyward.cloud.errors",
                     "keyward.cloud.models", "keyward.cloud.names", "keyward.cloud.ops"]
    assert {layer_of(name) for name in cloud} == {"library"}
    assert "library" not in ALLOWED["workflows"]
    assert imports_of(modules["keyward.cloud"], modules) == []
    settings_imports = {item.target for item in imports_of(modules["keyward.config.cloud"],
                                                           modules)}
    assert {target for target in settings_imports if target.startswith("keyward.cloud")} == {
        "keyward.cloud.names"}
    names_imports = {item.target for item in imports_of(modules["keyward.cloud.names"],
                                                        modules)}
    assert {target for target in names_imports if target.startswith("keyward")} == {
        "keyward.contracts.failures", "keyward.errors"}


@pytest.mark.parametrize(("files", "expected"), [
    ({"keyward/sample.py": "def f():\n    import json\n"}, "keyward.sample:2: imports json"),
    ({"keyward/plain.py": "import json\n",
      "keyward/sample.py": "def f():\n    from keyward.plain import x\n"},
     "keyward.sample:2: imports keyward.plain"),
    ({"workflows/sample.py": "async def f():\n    import temporalio.workflow\n"},
     "workflows.sample:2: imports temporalio.workflow"),
    ({"activities/sample.py": "class A:\n    def f(self):\n        import keyward.sample\n",
      "keyward/sample.py": ""}, "activities.sample:3: imports keyward.sample"),
    ({"starter.py": "def main():\n    import hvac\n"}, "starter:2: imports hvac"),
])
def test_a_lazy_import_of_a_required_module_is_reported(
        tmp_path: Path, files: dict[str, str], expected: str) -> None:
    problems = lazy_import_violations(discover(tree(tmp_path, files)))
    assert [problem[:len(expected)] for problem in problems] == [expected], problems


def test_lazy_imports_of_optional_dependencies_pass(tmp_path: Path) -> None:
    """An extra, a module that needs one, the dev stack from worker.py, type-only imports
    and anything in a test are fine inside a function."""
    root = tree(tmp_path, {
        "keyward/needs_kube.py": "import kubernetes.client\n",
        "keyward/needs_it_too.py": "from keyward.needs_kube import x\n",
        "keyward/sample.py": ("from typing import TYPE_CHECKING\n"
                              "def f():\n    import kubernetes\n    from azure.identity import C\n"
                              "    from keyward.needs_it_too import y\n"
                              "    if TYPE_CHECKING:\n        import json\n"),
        "worker.py": "def dev():\n    from keyward_devstack.stack import start\n",
        "tests/test_x.py": "def test():\n    import hvac\n",
    })
    modules = discover(root)
    assert lazy_import_violations(modules) == []
    assert needs_optional(modules) == {"keyward.needs_kube", "keyward.needs_it_too"}


@pytest.mark.parametrize(("source", "expected"), [
    ("from temporalio import workflow\nasync def f():\n"
     "    await workflow.execute_activity('ReadTransitKey', 1)\n",
     "workflows.sample:3: execute_activity outside workflows.activity_calls"),
    ("from temporalio import workflow\nasync def f(cls):\n"
     "    await workflow.execute_activity_method(cls.read, 1)\n",
     "workflows.sample:3: execute_activity_method outside"),
    ("from temporalio.workflow import start_local_activity\nasync def f():\n"
     "    await start_local_activity('Local', 1)\n",
     "workflows.sample:3: start_local_activity outside"),
])
def test_a_workflow_starting_an_activity_directly_is_reported(
        tmp_path: Path, source: str, expected: str) -> None:
    problems = activity_call_violations(discover(tree(tmp_path, {"workflows/sample.py":
                                                                 source})))
    assert [problem[:len(expected)] for problem in problems] == [expected], problems


def test_the_activity_caller_must_name_activities_by_contract(tmp_path: Path) -> None:
    """Inside ``run_activity`` too: the name comes from the contract, not a literal."""
    caller = ("from temporalio import workflow\nasync def run_activity(contract, arg):\n"
              "    return await workflow.execute_activity({name}, arg)\n")
    root = tree(tmp_path, {"workflows/activity_calls.py": caller.format(name="'Read'")})
    assert activity_call_violations(discover(root)) == [
        "workflows.activity_calls:3: an activity named by a literal, not a contract"]
    root = tree(tmp_path, {"workflows/activity_calls.py": caller.format(name="contract.name")})
    assert activity_call_violations(discover(root)) == []


@pytest.mark.parametrize(("source", "reported"), [
    ("from keyward.contracts.transit import ReadKeyInput\n", True),
    ("import keyward.policy.retention\n", True),
    ("from temporalio import workflow\nwith workflow.unsafe.imports_passed_through():\n"
     "    from keyward.contracts.transit import ReadKeyInput\n", False),
    ("from temporalio.workflow import unsafe\nwith unsafe.imports_passed_through():\n"
     "    import keyward.policy.retention\n", False),
    ("from temporalio import workflow\nwith workflow.unsafe.imports_passed_through():\n"
     "    pass\nfrom keyward.contracts import WORKFLOWS\n", True),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
     "    from keyward.contracts.transit import ReadKeyInput\n", False),
    ("import json\nfrom temporalio import workflow\n", False),
])
def test_a_workflow_loading_a_contract_in_the_sandbox_is_reported(
        tmp_path: Path, source: str, reported: bool) -> None:
    problems = passthrough_violations(discover(tree(tmp_path, {"workflows/sample.py": source})))
    assert bool(problems) is reported, problems


def test_an_import_cycle_is_reported(tmp_path: Path) -> None:
    """Within one layer too, and also when a function-level import closes the loop (the
    shape keyward.rotation.inputs, workflows and activities had before contracts)."""
    root = tree(tmp_path, {
        "keyward/a.py": "import keyward.b\n",
        "keyward/b.py": "from keyward.c import x\n",
        "keyward/c.py": "def f():\n    from keyward import a\n",
        "keyward/d.py": "import keyward.a\n",   # leads into the loop, is not part of it
    })
    assert cycle_violations(discover(root)) == [
        "import cycle: keyward.a -> keyward.b -> keyward.c -> keyward.a"]
    (root / "keyward" / "c.py").write_text("from typing import TYPE_CHECKING\n"
                                           "if TYPE_CHECKING:\n    from keyward import a\n")
    assert cycle_violations(discover(root)) == []


def test_a_cycle_through_a_package_init_is_reported(tmp_path: Path) -> None:
    """``import activities.x`` runs ``activities/__init__.py``: the loop the lazy import in
    ``RotationSettingsActivities.resolve`` used to break went through it."""
    root = tree(tmp_path, {
        "activities/__init__.py": "from activities.settings import S\n",
        "activities/settings.py": "from keyward.inputs import make\n",
        "activities/transit.py": "",
        "keyward/inputs.py": "from workflows.rotate import Input\n",
        "workflows/rotate.py": "from activities.transit import Info\n",
        "keyward/policy/__init__.py": "from keyward.policy.cadence import c\n",
        "keyward/policy/cadence.py": "from keyward.policy.units import u\n",
        "keyward/policy/units.py": "",
    })
    assert cycle_violations(discover(root)) == ["import cycle: activities -> activities.settings"
                                                " -> keyward.inputs -> workflows.rotate -> "
                                                "activities"]
