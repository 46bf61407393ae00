"""How failures become Consul-style answers."""

from __future__ import annotations

from waypost.api.common import error_response
from waypost.store.outcome import TxnOutcomeUnknownError


def test_a_write_whose_outcome_is_unknown_is_a_500_that_says_so_never_a_false() -> None:
    response = error_response(
        TxnOutcomeUnknownError("the transaction was interrupted and its outcome is unknown")
    )
    assert response.status == 500
    assert response.body == (
        b"Internal error: the transaction was interrupted and its outcome is unknown"
        b" (the write may have applied: read it back)"
    )
