"""The site config: defaults, unknown keys rejected, errors naming the key path and value."""
from __future__ import annotations

import copy

import pytest

from queue_server.config import ConfigError, load_config, parse_config
from tests.conftest import BASE_CONFIG, make_config


def problems_of(data: dict) -> list[tuple]:
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    return error.value.problems


def with_change(change) -> dict:
    data = copy.deepcopy(BASE_CONFIG)
    change(data)
    return data


def test_defaults():
    config = make_config()
    assert config.site.timezone == "Asia/Ho_Chi_Minh"
    assert [level.id for level in config.rating.levels] == ["very_satisfied", "satisfied", "unsatisfied"]
    assert [level.name.vi for level in config.rating.levels] == ["Rất hài lòng", "Hài lòng", "Không hài lòng"]
    assert [r.id for r in config.priority.reasons] == ["elderly", "disabled", "pregnant", "small-child", "merit"]
    assert config.policy_for(config.counter("quay-3")) == ("strict", 2)
    assert config.policy_for(config.counter("quay-1")) == ("interleaved", 2)


def test_sample_config_is_valid():
    from importlib import resources

    with resources.as_file(resources.files("queue_server") / "sample_site.toml") as path:
        config = load_config(path)
    assert config.site.id == "hcc-demo" and len(config.fields) >= 4


@pytest.mark.parametrize(
    ("change", "path", "value"),
    [
        (lambda d: d["site"].update(colour="red"), "site.colour", "red"),
        (lambda d: d.update(fiels=[]), "fiels", []),
        (lambda d: d["fields"][1].update(letter="AB"), "fields[1].letter", "AB"),
        (lambda d: d["fields"][0].update(target_wait_min=0), "fields[0].target_wait_min", 0),
        (lambda d: d["fields"][2].update(letter="A"), "fields[2].letter", "A"),
        (lambda d: d["fields"][0].update(id="Đất"), "fields[0].id", "Đất"),
        (lambda d: d["counters"][1]["fields"].append("nope"), "counters[1].fields[2]", "nope"),
        (lambda d: d["counters"][2].update(number=1), "counters[2].number", 1),
        (lambda d: d["clerks"][0].update(counters=["quay-7"]), "clerks[0].counters[0]", "quay-7"),
        (lambda d: d["site"].update(timezone="Asia/Saigon-ish"), "site.timezone", "Asia/Saigon-ish"),
        (lambda d: d.update(holidays=["2026-02-30"]), "holidays[0]", "2026-02-30"),
        (lambda d: d.update(opening_hours=[{"days": ["mon"], "open": "17:00", "close": "07:30"}]), "opening_hours[0]", None),
        (lambda d: d.update(opening_hours=[{"days": ["funday"], "open": "07:00", "close": "08:00"}]), "opening_hours[0].days[0]", "funday"),
        (lambda d: d.update(priority={"policy": "random"}), "priority.policy", "random"),
        (lambda d: d.update(rating={"levels": [{"id": "ok", "name": {"vi": "Được", "en": "OK"}, "colour": "#00ff00", "satisfied": True}]}), "rating.levels", None),
        (lambda d: d.update(rating={"window_s": 5}), "rating.window_s", 5),
    ],
)
def test_errors_name_the_key_path_and_value(change, path, value):
    problems = problems_of(with_change(change))
    paths = [p[0] for p in problems]
    assert path in paths, problems
    if value is not None:
        assert dict((p[0], p[1]) for p in problems)[path] == value


def test_rating_scale_needs_satisfied_and_unsatisfied_levels():
    levels = [{"id": f"l{i}", "name": {"vi": "x", "en": "x"}, "colour": "#000000", "satisfied": True} for i in range(3)]
    problems = problems_of(with_change(lambda d: d.update(rating={"levels": levels})))
    assert problems[0][0] == "rating" and "satisfied" in problems[0][2]


def test_a_field_no_counter_serves_is_an_error():
    def change(data):
        data["fields"].append({"id": "xay-dung", "letter": "E", "name": {"vi": "Xây dựng", "en": "Construction"}})

    assert [p[0] for p in problems_of(with_change(change))] == ["fields[3].id"]


def test_file_errors(tmp_path):
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError):
        load_config(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("[site\nid = 1", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(broken)
    assert "not valid TOML" in str(error.value)
