"""Pretraining and midtraining on a token-budgeted mixture of plain text, packed into full sequences.

    python src/phi4_recipes/run_pretrain.py recipes/tiny/pretrain.yaml
    python src/phi4_recipes/run_pretrain.py recipes/tiny/midtrain.yaml   # 4x context, RoPE base 250K

Midtraining is the same script with another mixture phase, a longer `max_length` and
`model_config_overrides` that raise the RoPE base and the position limit of the pretrained checkpoint.
"""

from __future__ import annotations

from trl import SFTConfig, SFTTrainer

from phi4_recipes.configs import ModelConfig, ScriptArguments, parse_recipe
from phi4_recipes.cpu_threads import configure_threads
from phi4_recipes.data.mixture import MixtureBuilder, load_mixture
from phi4_recipes.data.sources import first_rows
from phi4_recipes.logs import get_logger
from phi4_recipes.model_loading import PHI_MODEL_TYPES, get_tokenizer, load_training_model, model_type
from phi4_recipes.training import finish, require_requested_distribution, start_run

logger = get_logger(__name__)


def main(script_args, training_args, model_args):
    run = start_run(script_args, training_args, model_args, stage=script_args.mixture_phase)
    if not script_args.dataset_mixture or not script_args.mixture_phase:
        raise ValueError("pretraining needs dataset_mixture (a mixture YAML) and mixture_phase")

    kind = model_type(model_args.model_name_or_path, model_args.model_revision)
    if kind not in PHI_MODEL_TYPES:
        raise ValueError(f"model_name_or_path {model_args.model_name_or_path} is a {kind} model: pretraining "
                         "and midtraining are Phi-4 specific (a preset or a Phi-3/Phi-4 checkpoint); post-train "
                         "other models with run_sft.py, run_pts.py and run_dpo.py")
    tokenizer = get_tokenizer(script_args.tokenizer_name_or_path, model_args.model_name_or_path)
    builder = MixtureBuilder(load_mixture(script_args.dataset_mixture), tokenizer, seed=training_args.seed)
    plan = builder.plan(script_args.mixture_phase)
    logger.info("\n%s", plan.table())
    dataset = first_rows(builder.build(script_args.mixture_phase).select_columns(["text"]),
                         script_args.dataset_max_rows)

    model = load_training_model(model_args, tokenizer, script_args, training_args, use_liger=run.use_liger)
    if training_args.max_length and training_args.max_length > model.config.max_position_embeddings:
        raise ValueError(f"max_length {training_args.max_length} exceeds the model's "
                         f"max_position_embeddings {model.config.max_position_embeddings}")

    # Pretraining trains every weight (no PEFT), on packed text: TRL's SFTTrainer with plain-text rows.
    trainer = SFTTrainer(model=model, args=run.trainer_args(training_args), train_dataset=dataset, processing_class=tokenizer)
    require_requested_distribution(trainer.accelerator.distributed_type)
    train_result = trainer.train(resume_from_checkpoint=run.resume_from_checkpoint)
    finish(trainer, script_args=script_args, training_args=training_args, model_args=model_args,
           train_result=train_result, inputs=builder.fingerprints, plan=run,
           extra={"mixture_plan": [vars(s) for s in plan.sources], "mixture_phase": plan.phase},
           mixture_table=plan.table())


if __name__ == "__main__":
    configure_threads()  # before the recipe parser: it takes `--threads N` out of argv
    main(*parse_recipe(ScriptArguments, SFTConfig, ModelConfig))
