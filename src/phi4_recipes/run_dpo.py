"""DPO on preference pairs: round 1 on Pivotal Token Search pairs, round 2 on judge-guided pairs.

    python src/phi4_recipes/run_dpo.py recipes/tiny/dpo_pts.yaml
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml src/phi4_recipes/run_dpo.py recipes/dpo_pts.yaml

Pairs reach the trainer as exact token ids (see data/preference.py): PTS pairs keep the ids the search
found, and pairs longer than max_length are dropped and counted rather than truncated.
"""

from __future__ import annotations

from trl import DPOConfig, DPOTrainer, get_peft_config

from phi4_recipes.configs import ModelConfig, ScriptArguments, parse_recipe
from phi4_recipes.cpu_threads import configure_threads
from phi4_recipes.data.preference import ID_COLUMNS, prepare_preference_pairs
from phi4_recipes.logs import get_logger
from phi4_recipes.model_loading import get_tokenizer, is_preset, load_training_model
from phi4_recipes.training import (
    check_lora_targets,
    dpo_round,
    finish,
    load_training_data,
    require_requested_distribution,
    start_run,
)

logger = get_logger(__name__)


class TokenExactDPOTrainer(DPOTrainer):
    """DPOTrainer that trains on the token ids we prepared instead of re-tokenising text (exact PTS tokens)."""

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if not set(ID_COLUMNS) <= set(dataset.column_names):
            raise ValueError(f"{dataset_name} dataset must be prepared with prepare_preference_pairs first")
        return dataset


def main(script_args, training_args, model_args):
    plan = start_run(script_args, training_args, model_args, stage=None)

    raw, inputs = load_training_data(script_args)
    plan = plan.named(dpo_round(raw))
    name = script_args.dataset_name or inputs[0]["source"]
    tokenizer = get_tokenizer(script_args.tokenizer_name_or_path, model_args.model_name_or_path,
                              script_args.chat_template)
    pairs = prepare_preference_pairs(raw, tokenizer, training_args.max_length, name)
    logger.info("DPO pairs: %d kept, %d dropped for exceeding max_length=%s, %d with exact ids from the data",
                pairs.kept, pairs.dropped_too_long, training_args.max_length, pairs.exact_ids)
    if pairs.kept == 0:
        raise ValueError(f"dataset {name}: no pair fits max_length={training_args.max_length}")

    model = load_training_model(model_args, tokenizer, script_args, training_args, use_liger=plan.use_liger)
    check_lora_targets(model, model_args)
    # The reference is the same starting checkpoint, frozen; not needed with PEFT (adapters off) or when its
    # log-probs are precomputed (the 14B recipes, to save memory under ZeRO-3).
    ref_model = None
    if not (model_args.use_peft or training_args.precompute_ref_log_probs):
        if is_preset(model_args.model_name_or_path):
            raise ValueError("DPO starts from a trained checkpoint (e.g. the SFT output folder), not a preset")
        ref_model = load_training_model(model_args, tokenizer, script_args, training_args, use_liger=plan.use_liger)

    trainer = TokenExactDPOTrainer(
        model=model,
        ref_model=ref_model,
        args=plan.trainer_args(training_args),
        train_dataset=pairs.dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    require_requested_distribution(trainer.accelerator.distributed_type)
    train_result = trainer.train(resume_from_checkpoint=plan.resume_from_checkpoint)
    finish(trainer, script_args=script_args, training_args=training_args, model_args=model_args,
           train_result=train_result, inputs=inputs, plan=plan,
           extra={"pairs": {"kept": pairs.kept, "dropped_too_long": pairs.dropped_too_long,
                            "exact_ids": pairs.exact_ids}})


if __name__ == "__main__":
    configure_threads()  # before the recipe parser: it takes `--threads N` out of argv
    main(*parse_recipe(ScriptArguments, DPOConfig, ModelConfig))
