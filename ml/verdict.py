"""The verdict rule: the one place that turns a calibrated fake probability into what users read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VerdictRule:
    """Threshold and uncertain band come from the model card, where they were chosen on validation data."""

    threshold: float = 0.5
    uncertain_low: float = 0.35
    uncertain_high: float = 0.65

    def verdict(self, fake_probability: float | None) -> str:
        if fake_probability is None:
            return "no_face"
        return "fake" if fake_probability >= self.threshold else "real"

    def is_uncertain(self, fake_probability: float | None) -> bool:
        return fake_probability is not None and self.uncertain_low <= fake_probability < self.uncertain_high
