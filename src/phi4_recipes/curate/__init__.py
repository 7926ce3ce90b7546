"""Web and document curation (Phi-4 report, section 2): HTML-to-text that keeps math, code, tables and
threads; fastText language id; a hashed n-gram quality classifier; corruption filters; exact and MinHash
dedup (core in data.near_dedup); n-gram decontamination (index in data.ngrams); long-document tiers. `steps` wraps each as a datatrove pipeline step and
`pipeline` chains them for datatrove's local and Slurm executors (driven by `run_curate.py`).

Only light modules are imported here (the quality classifier pulls in scikit-learn: import
`phi4_recipes.curate.quality` directly), so `eval/decontaminate.py` can import `decontaminate` cheaply."""

from phi4_recipes.curate.corruption import CorruptionThresholds, corruption_reason
from phi4_recipes.curate.extract import html_to_text
from phi4_recipes.curate.langid import detect_language, detect_paragraph_languages
from phi4_recipes.curate.long_docs import count_tokens, long_context_tier

__all__ = [
    "CorruptionThresholds", "corruption_reason", "count_tokens", "detect_language", "detect_paragraph_languages",
    "html_to_text", "long_context_tier",
]
