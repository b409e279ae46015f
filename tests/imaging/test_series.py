"""Series layout: stacks split and ordered the way a PACS shows them; gaps and duplicates reported."""

from __future__ import annotations

import random

import pytest

from aldesk.imaging.series import (
    SliceRef,
    evenly_spaced,
    layout_series,
    plane_name,
    slice_normal,
    spacing_problems,
)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def axial(i, z, **kw):
    return SliceRef(i, (0.0, 0.0, float(z)), AXIAL, **kw)


def test_planes_are_named_from_the_normal():
    assert plane_name(AXIAL) == "axial"
    assert plane_name(CORONAL) == "coronal"
    assert plane_name(SAGITTAL) == "sagittal"
    assert plane_name((1, 0, 0, 0, 0.7071, 0.7071)) == "oblique"
    assert plane_name(None) == "unknown"
    assert slice_normal((1, 0, 0, 1, 0, 0)) is None  # degenerate cosines


def test_a_shuffled_stack_is_ordered_along_the_normal_not_by_instance_number():
    refs = [axial(i, -100 + 2.5 * i, instance_number=50 - i) for i in range(40)]
    random.Random(1).shuffle(refs)
    [stack] = layout_series(refs)
    assert stack.ids == list(range(40))
    assert stack.spacing == pytest.approx(2.5)
    assert stack.problems == []


def test_orientation_splits_a_localizer_into_its_three_planes():
    refs = ([SliceRef(i, (0, 0, 5.0 * i), AXIAL) for i in range(3)]
            + [SliceRef(10 + i, (0, 5.0 * i, 0), CORONAL) for i in range(3)]
            + [SliceRef(20 + i, (5.0 * i, 0, 0), SAGITTAL) for i in range(3)])
    stacks = layout_series(reversed(refs))
    assert sorted(s.label for s in stacks) == ["axial", "coronal", "sagittal"]
    assert {s.label: s.ids for s in stacks}["coronal"] == [10, 11, 12]  # row x column = +y


def test_repeated_positions_split_by_the_attribute_that_varies():
    fmri = [axial(t * 10 + k, 3.0 * k, temporal=t + 1, instance_number=t * 10 + k) for t in range(5) for k in range(10)]
    stacks = layout_series(fmri)
    assert [s.label for s in stacks] == [f"axial t{t}" for t in range(1, 6)]
    assert all(len(s) == 10 and s.problems == [] for s in stacks)
    dual = [axial(e * 100 + k, 4.0 * k, echo=e + 1, image_type=("M" if p == 0 else "P"))
            for e in range(2) for p in range(2) for k in range(30) if (e * 100 + k) >= 0]
    dual = [SliceRef(i, r.position, r.orientation, echo=r.echo, image_type=r.image_type) for i, r in enumerate(dual)]
    labels = [s.label for s in layout_series(dual)]
    assert labels == ["axial echo 1 magnitude", "axial echo 1 phase", "axial echo 2 magnitude", "axial echo 2 phase"]


def test_attributes_that_vary_without_repeats_do_not_split():
    # some CT scanners give every axial slice its own acquisition number
    refs = [axial(i, i, acquisition=i + 1) for i in range(20)]
    assert len(layout_series(refs)) == 1


def test_repeats_nothing_tells_apart_split_by_acquisition_order():
    refs = [axial(r * 5 + k, k, instance_number=r * 5 + k + 1) for r in range(2) for k in range(5)]
    stacks = layout_series(refs)
    assert [s.label for s in stacks] == ["axial repeat 1", "axial repeat 2"]
    assert stacks[0].ids == [0, 1, 2, 3, 4]


def test_missing_duplicate_and_uneven_slices_are_reported():
    step, problems = spacing_problems([0, 2, 4, 8, 10])
    assert step == 2 and problems == ["1 missing slice (gaps of 2 mm steps)"]
    _, problems = spacing_problems([0, 2, 2, 4, 6])
    assert problems == ["1 duplicate slice position"]
    _, problems = spacing_problems([0, 2, 4, 7, 9, 11])
    assert problems == ["uneven spacing: 1 step differ from 2 mm"]
    [stack] = layout_series([axial(i, z) for i, z in enumerate([0, 5, 10, 25, 30])])
    assert stack.problems == ["2 missing slices (gaps of 5 mm steps)"]


def test_without_positions_instance_number_orders_and_gaps_are_reported():
    refs = [SliceRef(i, None, None, instance_number=n) for i, n in enumerate([3, 1, 2, 6])]
    [stack] = layout_series(refs)
    assert stack.ids == [1, 2, 0, 3]
    assert stack.problems == ["2 missing instance numbers"]      # X-ray views have no positions: not a fault
    mixed = [SliceRef(0, (0.0, 0.0, 1.0), AXIAL, instance_number=1), SliceRef(1, None, AXIAL, instance_number=2)]
    [stack] = layout_series(mixed)
    assert stack.problems[0].startswith("some slices lack a position")


@pytest.mark.parametrize("n,k,expected", [(0, 8, []), (5, 8, [0, 1, 2, 3, 4]), (9, 3, [0, 4, 8]), (300, 1, [150])])
def test_evenly_spaced_subset_is_bounded_and_spans_the_stack(n, k, expected):
    assert evenly_spaced(n, k) == expected
    assert len(evenly_spaced(1000, 16)) == 16
