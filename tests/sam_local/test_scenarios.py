"""Every file in events/ has its scenario, for a function of the template (so `sam local invoke` runs each of them)."""

from __future__ import annotations

from ..cloud.harness import EVENTS, load_template
from .scenarios import SCENARIOS


def test_every_event_file_has_a_scenario_for_a_function_of_the_template() -> None:
    # GIVEN the sample events and the template's functions
    functions = {
        name
        for name, resource in load_template()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    # THEN each event has a scenario, and each scenario names one of those functions
    assert set(SCENARIOS) == {path.name for path in EVENTS.glob("*.json")}
    assert {scenario.function for scenario in SCENARIOS.values()} == functions
