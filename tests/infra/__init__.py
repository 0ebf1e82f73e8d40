"""Offline checks of infra/ (Bicep): structural tests with pycep-parser and a checkov scan.

No Bicep compiler runs here (azure.md §4.3), so these helpers read the parse tree pycep-parser
builds and answer the questions the tests ask: which app settings the template sets (and whether
only under a condition), which roles it assigns, what a module is called with. In that tree a
Bicep identifier and a string literal are both plain strings; the helpers resolve a string that
names a variable of the file, and render property access (`identity.outputs.clientId`) as dotted
text."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from pycep import BicepParser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MAIN = INFRA / "main.bicep"
MODULES = INFRA / "modules"
PARAMS_FILE = INFRA / "main.bicepparam"
SKIPS_FILE = INFRA / "checkov-skips.toml"

KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=\$\{vaultUri\}secrets/(?P<name>[a-z0-9-]+)/\)$")

Tree = dict[str, Any]


@cache
def _parsed(path: Path) -> Tree:
    return cast(Tree, BicepParser().parse(file_path=path))


def parse(path: Path) -> Tree:
    """The pycep-parser tree of one Bicep file (a fresh copy: tests may change it)."""
    return copy.deepcopy(_parsed(path))


def body(declaration: Tree) -> Tree:
    """A resource's or module's properties, looking through `= if (condition) { ... }`."""
    config = declaration["config"]
    return config["config"] if "condition" in config else config


def is_conditional(declaration: Tree) -> bool:
    return "condition" in declaration["config"]


def render(expr: Any) -> str:
    """Property access as dotted text (`identity.outputs.clientId`); other expressions as repr."""
    if isinstance(expr, str):
        return expr
    if isinstance(expr, dict) and "operator" in expr and expr["operator"]["type"] == "property_accessor":
        operands = expr["operator"]["operands"]
        return f"{render(operands['operand_1'])}.{render(operands['operand_2'])}"
    return repr(expr)


def module_call(tree: Tree, module_path: str) -> Tree:
    """The body of the one `module x '<module_path>'` declaration in a file."""
    calls = [m for m in tree.get("modules", {}).values() if m["detail"]["path"] == module_path]
    assert len(calls) == 1, f"expected one call of {module_path}, found {len(calls)}"
    return body(calls[0])


def resources_of_type(tree: Tree, resource_type: str) -> dict[str, Tree]:
    return {name: r for name, r in tree.get("resources", {}).items() if r["type"] == resource_type}


def app_triggers() -> dict[str, Any]:
    """function name → trigger of every function function_app.py registers."""
    import function_app

    app = function_app.app
    app.functions_bindings = None  # get_functions() refuses a second call otherwise (azure.md §1.2)
    return {str(function.get_function_name()): function.get_trigger() for function in app.get_functions()}


@dataclass(frozen=True)
class Setting:
    """One app setting as the template writes it: its value, and whether it sits under a condition."""

    name: str
    value: Any
    conditional: bool


def object_entries(expr: Any, variables: Tree, *, conditional: bool = False) -> list[Setting]:
    """Every key an object expression can produce: object literals, variables holding them,
    `union(...)` of them and `cond ? a : b` between them (whose keys count as conditional)."""
    if isinstance(expr, str):
        if expr in variables:
            return object_entries(variables[expr]["value"], variables, conditional=conditional)
        return []
    if not isinstance(expr, dict):
        return []
    if "function" in expr:
        function = expr["function"]
        if function["type"] != "union":
            return []
        entries: list[Setting] = []
        for argument in function["parameters"].values():
            entries += object_entries(argument, variables, conditional=conditional)
        return entries
    if "operator" in expr:
        operator = expr["operator"]
        if operator["type"] != "conditional":
            return []
        operands = operator["operands"]
        return object_entries(operands["true_value"], variables, conditional=True) + object_entries(
            operands["false_value"], variables, conditional=True
        )
    return [Setting(name, value, conditional) for name, value in expr.items()]


def app_settings(main: Tree) -> dict[str, list[Setting]]:
    """The app settings main.bicep hands to modules/appSettings.bicep, by name."""
    expr = module_call(main, "modules/appSettings.bicep")["params"]["settings"]
    by_name: dict[str, list[Setting]] = {}
    for setting in object_entries(expr, main.get("variables", {})):
        by_name.setdefault(setting.name, []).append(setting)
    return by_name


def strings_in(expr: Any) -> list[str]:
    """Every string anywhere in an expression (literals, identifiers, interpolations)."""
    if isinstance(expr, str):
        return [expr]
    if isinstance(expr, dict):
        return [s for value in expr.values() for s in strings_in(value)]
    if isinstance(expr, list):
        return [s for value in expr for s in strings_in(value)]
    return []


def remove_key(tree: Tree, key: str) -> Tree:
    """A copy of a tree without any object entry named `key` (to prove a check notices)."""
    if isinstance(tree, dict):
        return {k: remove_key(v, key) for k, v in tree.items() if k != key}
    if isinstance(tree, list):
        return [remove_key(v, key) for v in tree]
    return tree


def bicepparam_assignments(path: Path = PARAMS_FILE) -> dict[str, str]:
    """`param name = value` lines of a .bicepparam file (pycep-parser does not read that format)."""
    assignments: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^param\s+(\w+)\s*=\s*(.+)$", line)
        if match:
            assignments[match.group(1)] = _without_comment(match.group(2))
    return assignments


def _without_comment(value: str) -> str:
    """Drop a trailing `// comment`, but not a `//` inside a quoted string such as a URL."""
    for match in re.finditer(r"\s+//", value):
        if value[: match.start()].count("'") % 2 == 0:
            return value[: match.start()].strip()
    return value.strip()
