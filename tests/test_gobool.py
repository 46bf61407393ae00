from __future__ import annotations

import pytest

from waypost.gobool import GO_BOOLS


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_true_spellings(text: str) -> None:
    assert GO_BOOLS[text] is True


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_false_spellings(text: str) -> None:
    assert GO_BOOLS[text] is False


@pytest.mark.parametrize("text", ["", "yes", "no", "tRuE", "fALSE", "on", " true", "2"])
def test_other_spellings_are_not_booleans(text: str) -> None:
    assert text not in GO_BOOLS
