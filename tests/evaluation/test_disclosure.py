"""Complementary suppression: no hidden count can be computed from the shown ones and the sums that hold."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.disclosure import SUPPRESS_BELOW, hidden_cells


def determined(children: dict[str, list[str]], counts: dict[str, int], hidden: set[str]) -> set[str]:
    """The hidden cells that the equations parent = Σ children pin to one value, given every shown count: a cell is
    pinned when every vector of the null space of the equations over the hidden cells is 0 there."""
    unknowns = sorted(hidden)
    if not unknowns:
        return set()
    column = {cell: i for i, cell in enumerate(unknowns)}
    rows = []
    for parent, kids in children.items():
        row = np.zeros(len(unknowns))
        for cell, sign in ((parent, 1.0), *((k, -1.0) for k in kids)):
            if cell in column:
                row[column[cell]] += sign
        if row.any():
            rows.append(row)
    if not rows:
        return set()
    matrix = np.array(rows)
    _, values, vt = np.linalg.svd(matrix)
    rank = int((values > 1e-9).sum())
    null = vt[rank:]
    return {cell for cell, i in column.items() if null.shape[0] == 0 or np.all(np.abs(null[:, i]) < 1e-9)}


def tree(rng: np.random.Generator, zero_share: float) -> tuple[dict[str, list[str]], dict[str, int]]:
    """A district of 2-4 towns of 1-5 communities of 1-6 grids, grid counts mostly small, many of them zero."""
    children: dict[str, list[str]] = {"d": []}
    counts: dict[str, int] = {}
    for t in range(rng.integers(2, 5)):
        town = f"d.{t}"
        children["d"].append(town)
        children[town] = []
        for c in range(rng.integers(1, 6)):
            community = f"{town}.{c}"
            children[town].append(community)
            children[community] = []
            for g in range(rng.integers(1, 7)):
                grid = f"{community}.{g}"
                children[community].append(grid)
                counts[grid] = 0 if rng.random() < zero_share else int(rng.integers(1, 12))
    for unit in sorted(children, key=len, reverse=True):  # the deepest first: their sums are known by then
        counts[unit] = sum(counts[k] for k in children[unit])
    return children, counts


@pytest.mark.parametrize("seed", range(300))
def test_no_hidden_count_can_be_computed_and_every_small_one_is_hidden(seed):
    rng = np.random.default_rng(seed)
    children, counts = tree(rng, zero_share=[0.0, 0.3, 0.7][seed % 3])
    hidden = hidden_cells(children, counts)
    assert {u for u, n in counts.items() if 0 < n < SUPPRESS_BELOW} <= hidden
    assert determined(children, counts, hidden) == set()


def test_primary_suppression_alone_lets_the_sums_give_the_counts_back():
    """The check above can fail: hiding only the 1-4 counts, a parent minus its shown children pins them."""
    children = {"d": ["t1", "t2"], "t1": ["c1", "c2"], "t2": ["c3"]}
    counts = {"d": 20, "t1": 12, "t2": 8, "c1": 3, "c2": 9, "c3": 8}
    assert determined(children, counts, {"c1"}) == {"c1"}
    assert determined(children, counts, hidden_cells(children, counts)) == set()


def test_a_single_child_and_a_lone_count_among_zeros_hide_their_parents():
    children = {"d": ["t1", "t2"], "t1": ["c1"], "t2": ["c2", "c3"], "c1": ["g1"], "c2": ["g2", "g3"],
                "c3": ["g4"]}
    counts = {"g1": 3, "g2": 2, "g3": 0, "g4": 30, "c1": 3, "c2": 2, "c3": 30, "t1": 3, "t2": 32, "d": 35}
    hidden = hidden_cells(children, counts)
    assert {"g1", "c1", "t1", "g2", "c2"} <= hidden  # the lone 2 among zeros takes its community with it
    assert determined(children, counts, hidden) == set()


def test_counts_that_do_not_add_up_are_refused_not_looped_on():
    with pytest.raises(ValueError, match="not the sum"):
        hidden_cells({"d": ["t1"]}, {"d": 3, "t1": 0})
