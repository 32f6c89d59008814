"""Domain errors: each kind states its HTTP status, stable code and title in its class line."""

from __future__ import annotations

from layers.analysis.budget import OverBudget
from layers.errors import DomainError, NotFound, ValidationFailed


def test_a_kind_of_error_keeps_what_it_states_and_inherits_the_rest() -> None:
    assert (NotFound.status, NotFound.code, NotFound.title) == (404, "not-found", "Not found")
    # OverBudget names its own code and title; its status is ValidationFailed's.
    assert (OverBudget.status, OverBudget.code, OverBudget.title) == (
        422, "analysis-too-large", "Analysis too large")
    assert (ValidationFailed.code, DomainError.code) == ("validation-failed", "bad-request")
    error = OverBudget("too large", details=[{"field": "ring"}])
    assert isinstance(error, ValidationFailed)
    assert (error.message, error.details, str(error)) == ("too large", [{"field": "ring"}],
                                                          "too large")
