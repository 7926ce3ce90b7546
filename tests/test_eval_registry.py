"""The benchmark registry resolves in lm-eval, and our local tasks grade what they should."""

import importlib.util
import json
from pathlib import Path

import pytest
from lm_eval.tasks import TaskManager

from phi4_recipes.evaluation.leaderboard import load_reference
from phi4_recipes.evaluation.registry import LOCAL_TASKS_DIR, REGISTRY_FILE, load_registry, unresolved_tasks
from phi4_recipes.recipe_checks import RecipeError

REPO = Path(__file__).resolve().parents[1]
REGISTRY = REPO / "eval" / "benchmarks.yaml"  # the repository's pointer to the packaged registry
REPORT_BENCHMARKS = ["mmlu", "gpqa", "math", "humaneval", "mgsm", "simpleqa", "drop", "mmlu_pro", "humaneval_plus",
                     "arenahard", "ifeval"]


def _task_utils(folder: str):
    spec = importlib.util.spec_from_file_location(f"{folder}_utils", LOCAL_TASKS_DIR / folder / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_repository_pointers_lead_to_the_packaged_resources():
    assert REGISTRY.resolve() == REGISTRY_FILE.resolve()
    assert (REPO / "eval" / "tasks").resolve() == LOCAL_TASKS_DIR.resolve()
    assert (REPO / "eval" / "reference" / "phi4_report.yaml").is_file()
    assert (REPO / "chat_templates" / "phi4.jinja").read_text().startswith("{#- Phi-4 ChatML")


def test_every_registry_task_resolves_in_lm_eval_or_eval_tasks():
    registry = load_registry(REGISTRY)
    task_manager = TaskManager(include_path=str(LOCAL_TASKS_DIR))  # lm-eval's built-ins plus ours
    assert unresolved_tasks(registry, task_manager) == []
    local_only = TaskManager(include_path=str(LOCAL_TASKS_DIR), include_defaults=False)
    for benchmark in registry.values():
        # "local" means the task is ours, so it must resolve without lm-eval's built-ins.
        assert (benchmark.task in local_only.all_tasks) == (benchmark.source == "local"), benchmark.name


def test_registry_covers_the_report_and_the_reference_numbers_match_it():
    registry = load_registry(REGISTRY)
    assert set(REPORT_BENCHMARKS) <= set(registry)
    published = load_reference()[0]
    assert published.label == "phi-4 (report)" and set(published.scores) == set(REPORT_BENCHMARKS)
    assert (published.scores["mmlu"], published.scores["ifeval"]) == (84.8, 63.0)


def test_code_benchmarks_never_use_lm_evals_unsandboxed_tasks():
    registry = load_registry(REGISTRY)
    for name in ("humaneval", "humaneval_plus"):
        assert registry[name].source == "local" and registry[name].task.startswith("phi4_")
    utils_source = (LOCAL_TASKS_DIR / "phi4_humaneval" / "utils.py").read_text()
    assert "check_python" in utils_source and "allow_unsandboxed" not in utils_source


@pytest.mark.parametrize("broken, message", [
    ("benchmarks:\n  x: {task: t}\n", r"benchmark 'x': missing required key\(s\) \['metric'\]"),
    ("benchmarks:\n  x: {task: t, metric: m, few_shot: 3}\n", r"benchmark 'x': unknown key 'few_shot'.*num_fewshot"),
    ("benchmarks:\n  x: {task: t, metric: m, num_fewshot: three}\n", r"benchmark 'x': key 'num_fewshot' expects int"),
    ("benchmarks:\n  x: {task: t, metric: m, source: hub}\n", r"benchmark 'x': key 'source' expects"),
    ("benchmarks:\n  x: [t, m]\n", r"benchmark 'x': expected a mapping"),
    ("tasks: []\n", "expected a top-level 'benchmarks' mapping"),
])
def test_bad_registry_names_file_and_key(tmp_path, broken, message):
    path = tmp_path / "registry.yaml"
    path.write_text(broken)
    with pytest.raises(RecipeError, match=rf"registry\.yaml: {message}"):
        load_registry(path)


@pytest.mark.sandbox
def test_humaneval_grading_runs_programs_in_the_sandbox():
    utils = _task_utils("phi4_humaneval")
    docs = [json.loads(line) for line in (REPO / "tests" / "fixtures" / "eval" / "humaneval_local.jsonl").open()]
    for doc in docs:
        full_function = f"Here it is:\n```python\n{doc['prompt']}{doc['canonical_solution']}```\n"
        assert utils.process_results(doc, [full_function]) == {"pass@1": 1}
        wrong = f"```python\n{doc['prompt']}    return None\n```"
        assert utils.process_results(doc, [wrong]) == {"pass@1": 0}
    # Model code cannot see the host: reading a file outside the sandbox's scratch fails the test.
    sneaky = "```python\nimport os\ndef add_digits(n):\n    return len(os.listdir('/work'))\n```"
    assert utils.process_results(docs[0], [sneaky]) == {"pass@1": 0}


def test_tiny_task_graders():
    arithmetic, choice, ifeval = (_task_utils(f"phi4_tiny_{name}") for name in ("arithmetic", "choice", "ifeval"))
    assert arithmetic.process_results({"answer": "43"}, ["38 + 5 = 43. The answer is 43."]) == {"accuracy": 1}
    assert arithmetic.process_results({"answer": "43"}, ["The answer is 42."]) == {"accuracy": 0}
    rows = choice.load_choice_test()["test"]
    assert len(rows) == choice.NUM_QUESTIONS and all(sorted(set(r["options"])) == sorted(r["options"]) for r in rows)
    assert [choice.load_choice_test()["test"][i]["answer"] for i in range(5)] == [r["answer"] for r in rows][:5]
    doc = rows[0]
    first_problem = json.loads((REPO / "data" / "tiny" / "arithmetic_test.jsonl").open().readline())
    assert doc["question"] == first_problem["question"]
    assert doc["options"]["ABCD".index(doc["answer"])] == first_problem["answer"]
    assert choice.process_results(doc, [f"The answer is ({doc['answer']})."]) == {"accuracy": 1}
    prompts = ifeval.load_prompts()["test"]
    start_no = next(p for p in prompts if p["key"] == "start-no-end")
    assert ifeval.process_results(start_no, ["No, 2 + 2 is not 5. It is 4."]) == {
        "prompt_level_strict_acc": 1, "inst_level_strict_acc": [True, True]}
    assert ifeval.process_results(start_no, ["Yes. It is 4."]) == {
        "prompt_level_strict_acc": 0, "inst_level_strict_acc": [False, True]}
    assert ifeval.mean_over_instructions([[True, False], [True]]) == pytest.approx(2 / 3)


def test_judge_reply_parsers():
    simpleqa, arenahard = _task_utils("phi4_simpleqa"), _task_utils("phi4_arenahard")
    assert simpleqa.parse_grade("A") == "correct" and simpleqa.parse_grade("Grade: B") == "incorrect"
    assert simpleqa.parse_grade("I am unsure") == "not_attempted"
    assert arenahard.parse_verdict("... so [[A>B]] at first, but on reflection [[B>>A]]") == 0.0
    assert arenahard.parse_verdict("My final verdict is tie: [[A=B]]") == 0.5
    assert arenahard.parse_verdict("no label here") is None
    assert arenahard.mean_of_valid([1.0, None, 0.5]) == 0.75


def test_simpleqa_grading_goes_through_an_openai_compatible_judge(monkeypatch):
    # A real local server (tests/openai_server) in front of a tiny random model stands in for
    # the judge endpoint: the grade must be the parse of what that endpoint answers to the grader prompt.
    import torch

    from openai_server import OpenAICompatibleServer
    from phi4_recipes.data.tiny import tokenizer_corpus
    from phi4_recipes.generation import build_generator
    from phi4_recipes.model import Phi4Config, Phi4ForCausalLM
    from phi4_recipes.tokenizer import train_tiny_tokenizer

    tokenizer = train_tiny_tokenizer(tokenizer_corpus(), vocab_size=512)
    torch.manual_seed(0)
    model = Phi4ForCausalLM(Phi4Config.from_preset("tiny", vocab_size=len(tokenizer), num_hidden_layers=1))
    simpleqa = _task_utils("phi4_simpleqa")
    doc, answer = {"problem": "Capital of France?", "answer": "Paris"}, "Paris"
    with OpenAICompatibleServer(build_generator("transformers", model, tokenizer), model_name="judge") as server:
        monkeypatch.setenv("PHI4_JUDGE_MODEL", "judge")
        monkeypatch.setenv("PHI4_JUDGE_BASE_URL", server.base_url)
        grades = simpleqa.process_results(doc, [answer])
        prompt = simpleqa.GRADER_PROMPT.format(question=doc["problem"], gold=doc["answer"], predicted=answer)
        reply = simpleqa.ask_judge(prompt, max_new_tokens=simpleqa.GRADER_MAX_TOKENS)
    assert isinstance(reply, str) and reply
    assert sum(grades.values()) == 1 and grades[simpleqa.parse_grade(reply)] == 1
