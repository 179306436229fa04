"""CLEVR front end: read scenes and questions, execute programs, parse questions, score masks.

The stages, in pipeline order: :mod:`.io` (files -> typed values), :mod:`.executor` (program + scene
-> answer, node outputs, referred objects), :mod:`.parser` (question text or gold program -> mentions
and relations, and each mention's objects in a scene), :mod:`.metrics` (chosen vs referred objects ->
precision/recall report). Nothing here builds PSL rules or images; later stages consume these values.
"""
from .errors import ClevrDataError, ProgramExecutionError, QuestionParseError
from .executor import Execution, execute_program, output_matches, referred_objects
from .io import (
    ProgramStep,
    Question,
    Scene,
    SceneObject,
    load_questions,
    load_scenes,
    normalize_answer,
)
from .metrics import (
    ParserEvaluation,
    PrecisionRecallReport,
    PRRow,
    SetScore,
    evaluate_parser,
    precision_recall_report,
    score_sets,
)
from .parser import (
    Mention,
    ParseFailure,
    QuestionKind,
    QuestionParse,
    Relation,
    mention_objects,
    parse_program,
    parse_question,
    parse_signature,
    referred_mention_objects,
    require_parse,
)
from .torch_data import Vocabulary, build_vocabularies, tokenize
from .vocabulary import FAMILY_GROUPS, family_group

__all__ = [
    # errors
    "ClevrDataError",
    "ProgramExecutionError",
    "QuestionParseError",
    # io
    "SceneObject",
    "Scene",
    "ProgramStep",
    "Question",
    "load_scenes",
    "load_questions",
    "normalize_answer",
    # executor
    "Execution",
    "execute_program",
    "referred_objects",
    "output_matches",
    # parser
    "QuestionKind",
    "Mention",
    "Relation",
    "QuestionParse",
    "ParseFailure",
    "parse_question",
    "parse_program",
    "mention_objects",
    "referred_mention_objects",
    "parse_signature",
    "require_parse",
    # metrics
    "SetScore",
    "PRRow",
    "PrecisionRecallReport",
    "score_sets",
    "precision_recall_report",
    "ParserEvaluation",
    "evaluate_parser",
    # teacher inputs (torch is imported only by ClevrMaskDataset, via vqa_adapters.clevr.torch_data)
    "Vocabulary",
    "build_vocabularies",
    "tokenize",
    # vocabulary
    "FAMILY_GROUPS",
    "family_group",
]
