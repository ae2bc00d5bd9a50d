"""Split names: train, validation (also called dev) and test."""

from __future__ import annotations

import pytest

from flare_xlt.errors import FlareError
from flare_xlt.tasks.splits import FILE_NAMES, SPLITS, check_split


@pytest.mark.parametrize(
    ("name", "split"), [("train", "train"), ("validation", "validation"), ("dev", "validation")]
)
def test_dev_is_another_name_of_validation(name, split):
    assert check_split(name) == split


def test_other_split_names_are_refused_with_the_valid_ones():
    with pytest.raises(FlareError, match="split must be one of train, validation, test, dev"):
        check_split("valid")


def test_every_split_has_file_names_validation_first():
    assert tuple(FILE_NAMES) == SPLITS
    assert FILE_NAMES["validation"] == ("validation", "dev")
