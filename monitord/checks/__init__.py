"""Pure judging: (Validation, Observation) -> Verdict."""

from __future__ import annotations

from monitord.model import Observation, Validation, Verdict


def judge(validation: Validation, observation: Observation, *, budget_s: float) -> Verdict:
    raise NotImplementedError
