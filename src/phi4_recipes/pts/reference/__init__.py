"""Reference code for tests and benchmarks, never used by a PTS run.

``baseline`` is the report's published search (the algorithm to beat); ``synthetic`` builds answer
processes whose p(correct | prefix) is known exactly, so a search's pivots can be scored against the truth.
"""

from .baseline import find_pivotal_tokens_baseline

__all__ = ["find_pivotal_tokens_baseline"]
