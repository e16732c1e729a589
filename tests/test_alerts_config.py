"""The [alerts] section of the site config: defaults, and errors naming the key path and value."""
from __future__ import annotations

import copy
import re
import tomllib
from importlib import resources

import pytest

from queue_server.config import ConfigError, parse_config
from tests.conftest import BASE_CONFIG


def with_alerts(alerts: dict) -> dict:
    data = copy.deepcopy(BASE_CONFIG)
    data["alerts"] = alerts
    return data


def problems_of(data: dict) -> dict[str, tuple]:
    """key path → (value, message) of every problem."""
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    return {path: (value, message) for path, value, message in error.value.problems}


def rules(*rules: dict) -> dict:
    return with_alerts({"rules": list(rules)})


def test_a_config_without_the_section_gets_the_example_rules():
    alerts = parse_config(copy.deepcopy(BASE_CONFIG)).alerts
    assert alerts.evaluate_every_s == 30 and alerts.recent_hours == 24
    assert [(r.id, r.kind, r.severity) for r in alerts.rules] == [
        ("unsatisfied", "unsatisfied_share", "warning"),
        ("wait-over-target", "wait_over_target", "warning"),
        ("device-offline", "device_offline", "critical"),
        ("printer", "printer_problem", "critical"),
    ]


def test_every_setting_has_a_default_and_a_description():
    from queue_server.config import AlertRule, AlertsConfig

    for model in (AlertsConfig, AlertRule):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
            if name not in ("id", "kind"):
                assert not info.is_required(), f"{model.__name__}.{name} has no default"


@pytest.mark.parametrize(
    ("data", "path", "value"),
    [
        (rules({"id": "sat", "kind": "unsatisfied_share", "share": 1.5}), "alerts.rules[0].share", 1.5),
        (rules({"id": "sat", "kind": "unsatisfied_share", "share": 0}), "alerts.rules[0].share", 0),
        (rules({"id": "sat", "kind": "unsatisfied_share", "window_min": 0}), "alerts.rules[0].window_min", 0),
        (rules({"id": "sat", "kind": "unsatisfied_share", "min_ratings": 0}), "alerts.rules[0].min_ratings", 0),
        (rules({"id": "off", "kind": "device_offline", "grace_min": -1}), "alerts.rules[0].grace_min", -1),
        (rules({"id": "p", "kind": "printer_problem", "printer_states": ["paper_gone"]}), "alerts.rules[0].printer_states[0]", "paper_gone"),
        (rules({"id": "p", "kind": "printer_problem", "printer_states": []}), "alerts.rules[0].printer_states", []),
        (rules({"id": "x", "kind": "coffee_low"}), "alerts.rules[0].kind", "coffee_low"),
        (rules({"id": "X Y", "kind": "wait_over_target"}), "alerts.rules[0].id", "X Y"),
        (rules({"id": "w", "kind": "wait_over_target", "severity": "panic"}), "alerts.rules[0].severity", "panic"),
        (rules({"kind": "wait_over_target"}), "alerts.rules[0].id", None),
        (rules({"id": "sat", "kind": "unsatisfied_share", "treshold": 0.5}), "alerts.rules[0].treshold", 0.5),
        (with_alerts({"evaluate_every_s": 1}), "alerts.evaluate_every_s", 1),
        (with_alerts({"colour": "red"}), "alerts.colour", "red"),
    ],
)
def test_errors_name_the_key_path_and_value(data, path, value):
    problems = problems_of(data)
    assert path in problems, problems
    assert problems[path][0] == value


def test_a_parameter_of_another_kind_is_named():
    problems = problems_of(rules({"id": "off", "kind": "device_offline", "grace_min": 3, "share": 0.3}))
    value, message = problems["alerts.rules[0]"]
    assert "share" in message and "device_offline" in message and "grace_min" in message
    assert value["share"] == 0.3


def test_counters_and_fields_a_rule_names_must_exist():
    problems = problems_of(rules(
        {"id": "sat", "kind": "unsatisfied_share", "counters": ["quay-1", "quay-9"]},
        {"id": "wait", "kind": "wait_over_target", "fields": ["xay-dung"]},
    ))
    assert problems["alerts.rules[0].counters[1]"][0] == "quay-9"
    assert "unknown counter id" in problems["alerts.rules[0].counters[1]"][1]
    assert problems["alerts.rules[1].fields[0]"][0] == "xay-dung"
    assert "alerts.rules[0].counters[0]" not in problems


def test_rule_ids_are_unique():
    problems = problems_of(rules({"id": "same", "kind": "wait_over_target"}, {"id": "same", "kind": "device_offline"}))
    assert problems["alerts.rules[1].id"] == ("same", "duplicate of alerts.rules[0]")


def test_the_sample_configs_commented_example_is_valid_once_uncommented():
    text = (resources.files("queue_server") / "sample_site.toml").read_text(encoding="utf-8")
    block = re.search(r"^# \[alerts\]\n(?:#.*\n)+", text, re.MULTILINE)
    assert block, "the sample config has no commented [alerts] example"
    uncommented = "\n".join(re.sub(r"^# ?", "", line) for line in block.group(0).splitlines())
    data = tomllib.loads(text.replace(block.group(0), uncommented + "\n"))
    alerts = parse_config(data).alerts
    defaults = parse_config(copy.deepcopy(BASE_CONFIG)).alerts.rules
    assert alerts.rules[:4] == defaults  # the example shows the defaults as they are
    assert [(r.id, r.printer_states) for r in alerts.rules[4:]] == [("paper-low", ["paper_low"])]
