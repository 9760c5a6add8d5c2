import pytest

from grids.hierarchy import grid_code_problem, make_grid_code, parse_grid_code


def test_parse_grid_code_splits_the_hierarchy():
    code = parse_grid_code("440605011001007")
    assert code.district == "440605" and code.town == "440605011" and code.community == "440605011001"
    assert code.sequence == 7


@pytest.mark.parametrize("bad", [None, "", "44060501100100", "4406050110010071", "44060501100100A", "440605011001000",
                                 float("nan")])
def test_bad_codes_have_a_reason(bad):
    assert grid_code_problem(bad)


def test_make_grid_code_pads_the_sequence():
    assert make_grid_code("440605011001", 3) == "440605011001003"
    with pytest.raises(ValueError):
        make_grid_code("440605011001", 1000)
    with pytest.raises(ValueError):
        make_grid_code("4406050110", 1)
