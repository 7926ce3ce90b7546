"""Reading a DPO run's training log: TRL writes one ``log_history`` entry per logged optimizer step, and the
reward margins there are what says whether a preference round moved the model at all.

One place for both readers: the leaderboard's note on each DPO row (from run_dpo's manifest) and
bench/dpo_effect.py's margin curves (from ``trainer_state.json``).
"""

from __future__ import annotations

MARGIN = "rewards/margins"
CURVE_KEYS = (MARGIN, "rewards/accuracies", "logps/chosen", "logps/rejected", "loss")


def margin_curve(log_history: list[dict]) -> list[dict]:
    """The logged DPO steps: step number and the margins, accuracies, log-probs and loss TRL recorded there."""
    return [{"step": entry["step"], **{key: entry[key] for key in CURVE_KEYS if key in entry}}
            for entry in log_history if MARGIN in entry]


def window_mean(curve: list[dict], where: float, key: str = MARGIN) -> float:
    """Mean of ``key`` over a tenth of the logged steps, starting at fraction ``where`` of the run (1.0: the last
    tenth). One step's margin is one batch's, too noisy to read alone."""
    if not curve:
        raise ValueError("no logged DPO steps to average")
    width = max(1, len(curve) // 10)
    start = min(int(where * len(curve)), len(curve) - width)
    return sum(row[key] for row in curve[start:start + width]) / width
