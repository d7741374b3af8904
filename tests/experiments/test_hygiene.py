"""Hygiene sentences: they appear when, and only when, something is off."""

from __future__ import annotations

from studio.experiments.experiment import AssignmentCounts
from studio.experiments.hygiene import check_assignments


def test_a_clean_assignment_says_nothing():
    assert check_assignments(AssignmentCounts()) == []


def test_units_in_several_arms_and_repeats_are_counted_in_words():
    notes = check_assignments(AssignmentCounts(1_204, 3), "recipients")
    assert notes[0].startswith("1,204 recipients were assigned to more than one arm")
    assert notes[1].startswith("3 assignments repeat recipients already assigned")
