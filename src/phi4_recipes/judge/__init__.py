"""Judge-guided preference data (Phi-4 report, DPO round 2) and the one LLM-judge client.

    from phi4_recipes.judge import JudgeClient, parse_pairwise_verdict
    client = JudgeClient("gpt-4o", base_url="https://api.openai.com/v1")
    parse_pairwise_verdict(client.ask("... Reply [[A]], [[B]] or [[tie]]."))   # 'A' | 'B' | 'tie' | None

`client` and `verdicts` serve every LLM-as-judge / LLM-as-annotator call in the project (ArenaHard and
SimpleQA grading in evaluation/, pair labelling here, synthetic-data annotators). Layering: judge/ sits
beside pts/synth/curate, above generation/verify, below evaluation; it never imports evaluation.
"""

from .client import JudgeClient, ask_judge, judge_from_env, user_messages
from .verdicts import PAIRWISE_VERDICTS, parse_choice, parse_pairwise_verdict

__all__ = [
    "PAIRWISE_VERDICTS",
    "JudgeClient",
    "ask_judge",
    "judge_from_env",
    "parse_choice",
    "parse_pairwise_verdict",
    "user_messages",
]
