"""tests/sam_local/env.json, the `--env-vars` file of the tests and of the README's `sam local invoke` commands,
keeps up with the template: sam local passes a function only the variables its template declares, and cannot
resolve those that name a resource (``!Ref JobsTable``, ``!GetAtt ...``), which would reach the function empty."""

from __future__ import annotations

from typing import Any

from ..cloud.harness import load_template
from .stack import SETTINGS


def declared_variables() -> dict[str, Any]:
    """Every environment variable a function of the template declares, with its template value."""
    template = load_template()
    declared = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            declared |= resource["Properties"].get("Environment", {}).get("Variables", {})
    return declared


def test_env_file_sets_every_variable_sam_local_cannot_resolve_and_nothing_undeclared() -> None:
    # GIVEN the variables the functions declare, and those whose value names a resource or another parameter
    declared = declared_variables()
    unresolved = {name for name, value in declared.items() if isinstance(value, dict)}

    # THEN the file sets each of those, and no variable that no function declares (sam would drop it silently)
    assert unresolved - set(SETTINGS) == set()
    assert set(SETTINGS) - set(declared) == set()
    assert "AWS_ENDPOINT_URL" in SETTINGS
