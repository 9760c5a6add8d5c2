"""Task kinds: the defaults of the brief, and an operator's override file."""

import pytest

from gis.errors import ConfigurationError, InvalidRequest
from tasks.kinds import load_kinds, task_kind


def test_defaults_cover_the_seven_kinds_with_a_two_hour_lead_verification():
    kinds = load_kinds()
    assert set(kinds) == {"lead_verification", "home_visit", "isolation_check", "escort", "checkpoint_alert",
                          "area_sweep", "verification"}  # the rules' 排查核实 (issue 22)
    assert kinds["lead_verification"].sla_minutes == 120 and kinds["lead_verification"].priority == 1
    with pytest.raises(InvalidRequest, match="lead_verification"):
        task_kind("picnic")


def test_an_override_file_changes_slas(tmp_path):
    path = tmp_path / "kinds.toml"
    path.write_text('[home_visit]\nsla_minutes = 240\n', encoding="utf-8")
    kinds = load_kinds(str(path))
    assert kinds["home_visit"].sla_minutes == 240 and kinds["home_visit"].needs_temperature is True
    path.write_text('[home_visit]\nsla_minutes = "soon"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="sla_minutes"):
        load_kinds(str(path))
    path.write_text('[tea_break]\nsla_minutes = 5\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="tea_break"):
        load_kinds(str(path))
