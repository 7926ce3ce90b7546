"""Synthetic-data workflows of the Phi-4 report over any generation backend, and the I/O around them.

    seed_curation         annotator scores pages, then passages (two-stage seed filter)
    plurality             k answers, majority vote; all-agree and no-plurality dropped
    qa_extraction         deduction chains -> QA pairs with the supporting span
    rewrite               writer -> critic rubric -> revise, every round kept
    instruction_reversal  code -> instruction -> code, kept only when faithful
    validation            sandboxed tests for code, the math oracle for math
"""

from .chat_model import ChatModel
from .export import export_run
from .instruction_reversal import InstructionReversal
from .model_output import BadModelOutput, BadRow
from .plurality import PluralityFilter, Vote, plurality_vote
from .qa_extraction import QAExtraction
from .rewrite import RewriteWithRevision
from .seed_curation import SeedCuration
from .validation import Validation
from .workflow import SourceResult, Workflow

WORKFLOW_CLASSES: dict[str, type[Workflow]] = {
    cls.name: cls
    for cls in (SeedCuration, PluralityFilter, QAExtraction, RewriteWithRevision, InstructionReversal, Validation)
}

__all__ = [
    "WORKFLOW_CLASSES",
    "BadModelOutput",
    "BadRow",
    "ChatModel",
    "InstructionReversal",
    "PluralityFilter",
    "QAExtraction",
    "RewriteWithRevision",
    "SeedCuration",
    "SourceResult",
    "Validation",
    "Vote",
    "Workflow",
    "export_run",
    "plurality_vote",
]
