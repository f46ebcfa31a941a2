"""samconfig.toml: every environment's parameter overrides name real parameters with values the template allows."""

from __future__ import annotations

import shlex
import tomllib

from .harness import ROOT, load_template


def test_every_override_in_samconfig_is_a_parameter_with_an_allowed_value() -> None:
    # GIVEN the template's parameters and every deploy environment in samconfig.toml
    parameters = load_template()["Parameters"]
    environments = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))

    for name, sections in environments.items():
        if not isinstance(sections, dict):
            continue
        overrides = sections.get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
        for pair in shlex.split(overrides):
            key, value = pair.split("=", 1)
            # THEN each names a template parameter, and a value within its AllowedValues (a deploy would fail)
            assert key in parameters, f"{name}: {key} is not a template parameter"
            allowed = parameters[key].get("AllowedValues")
            assert allowed is None or value in [str(v) for v in allowed], f"{name}: {key}={value} not in {allowed}"
