"""Which person counts a reader of aggregates may not see: primary and complementary cell suppression.

A reporter reads persons by colour for the district, its towns, communities and grids. A count from 1 to 4 could
point at a person, so it is hidden (primary suppression). Hiding it alone protects nothing: every unit's count
is the sum of its children's, so a town's figure minus its shown communities gives back the one hidden
community. Each such sum is an equation ``parent = child₁ + … + childₖ`` over published cells, and a hidden cell
can be computed exactly as soon as one equation holds it as its only unknown. So, until no equation has exactly
one hidden cell, a second cell of that equation is hidden too (complementary suppression):

- a hidden child alone: its smallest shown non-zero sibling (a shown 0 protects nothing: it can only be 0;
  ties broken by code), else, when every sibling is 0, the parent itself;
- a hidden parent alone: its smallest non-zero child.

Each added cell may leave another equation (its own children's, or its parent's) with one hidden cell, so the
rule runs to a fixed point; it only ever hides more, so it ends. In a hierarchy, no equation with exactly one
hidden cell is also enough: any hidden cell can then be moved by some amount, the change taken up by another
hidden cell of each equation it touches, down its subtree and up its path, so no combination of published
figures pins it (tests/evaluation/test_disclosure.py checks this with the equations' null space).

The pattern is computed once over the reader's whole scope and every query shows the cells of it, so two queries
(two areas, two levels) cannot be combined either. Units are named by their codes, which are unique across
levels (district 6 digits, town 9, community 12, grid 15).

>>> tree = {"4406": ["440601", "440602"]}
>>> sorted(hidden_cells(tree, {"4406": 12, "440601": 3, "440602": 9}))
['440601', '440602']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SUPPRESS_BELOW = 5  # counts from 1 to SUPPRESS_BELOW - 1 are hidden


def hidden_cells(children: Mapping[str, Sequence[str]], counts: Mapping[str, int]) -> set[str]:
    """The units whose count must not be shown: those from 1 to 4 and their complements (see the module's notes).

    ``children`` maps each unit to the units it is the sum of; ``counts`` gives every unit's count.
    """
    hidden = {unit for unit, n in counts.items() if 0 < n < SUPPRESS_BELOW}
    parents = list(children)
    changed = True
    while changed:
        changed = False
        for parent in parents:
            kids = children[parent]
            unknown = [cell for cell in (parent, *kids) if cell in hidden]
            if len(unknown) != 1:
                continue
            shown = sorted((counts[k], k) for k in kids if k not in hidden and counts[k] > 0)
            if not shown and unknown[0] == parent:  # a non-zero parent of zeros: not a sum of its children
                raise ValueError(f"unit {parent}: its count is not the sum of its children's")
            hidden.add(shown[0][1] if shown else parent)
            changed = True
    return hidden
