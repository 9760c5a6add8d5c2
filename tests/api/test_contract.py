"""The typed edge: a request that does not fit its model is a 422 naming the field, in Chinese and English."""

from __future__ import annotations

import pytest

from api import models
from api.contract import validated
from gis.errors import InvalidRequest


@pytest.mark.parametrize(("model", "data", "field", "words"), [
    (models.NewTask, {"kind": "home_visit", "grid_code": "440605011001001"}, "title", "title is required"),
    (models.NewTask, {"kind": "home_visit", "grid_code": "440605011001001", "title": ""}, "title",
     "title is required"),
    (models.NewTask, {"kind": "tea_break", "grid_code": "440605011001001", "title": "x"}, "kind",
     "must be one of lead_verification"),
    (models.NewTask, {"kind": "home_visit", "grid_code": 440605011001001, "title": "x"}, "grid_code",
     "must be a string"),
    (models.NewTask, {"kind": "home_visit", "grid_code": "4406", "title": "x"}, "grid_code", "does not match"),
    (models.NewTask, {"kind": "home_visit", "grid_code": "440605011001001", "title": "x", "dispatch": "yes"},
     "dispatch", "must be true or false"),
    (models.NewTask, {"kind": "home_visit", "grid_code": "440605011001001", "title": "x", "detail": "长" * 1001},
     "detail", "longer than 1000 characters"),
    (models.NewLeadReport, {"description": "有情况", "location": {"lon": "东经", "lat": 23}}, "location.lon",
     "must be a number"),
    (models.Transition, {"action": "accept"}, "version", "version is required"),
    (models.Transition, {"action": "accept", "version": 0}, "version", "must be at least 1"),
    (models.Transition, {"action": "handle", "version": 3, "photos": [1, "two"]}, "photos", "must be an integer"),
    (models.TaskQuery, {"status": "dispatched,asleep"}, "status", "must be one of created"),
    (models.TaskQuery, {"limit": "1001"}, "limit", "must be at most 1000"),
    (models.TaskQuery, {"overdue": "perhaps"}, "overdue", "must be true or false"),
    (models.StatsQuery, {"level": "street"}, "level", "must be one of district"),
])
def test_a_request_off_its_model_names_the_field(model, data, field, words):
    with pytest.raises(InvalidRequest) as refused:
        validated(model, data)
    assert refused.value.field == field and words in str(refused.value)
    assert "/ " in str(refused.value)  # Chinese first, then English


def test_a_query_string_is_read_leniently_and_empty_values_are_left_out():
    query = validated(models.TaskQuery, {"status": "dispatched,accepted", "overdue": "true", "limit": "20",
                                         "grid": ""})
    assert (query.status, query.overdue, query.limit, query.grid, query.offset) == (
        ["dispatched", "accepted"], True, 20, None, 0)


def test_a_body_treats_empty_fields_as_left_out():
    task = validated(models.NewTask, {"kind": "home_visit", "grid_code": "440605011001001", "title": "入户",
                                      "detail": "", "person_key": None, "assignee_id": 12})
    assert (task.detail, task.person_key, task.assignee_id, task.dispatch) == (None, None, 12, True)
    assert task.model_dump(exclude_unset=True) == {"kind": "home_visit", "grid_code": "440605011001001",
                                                    "title": "入户", "assignee_id": 12}
