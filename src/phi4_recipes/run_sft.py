"""Supervised fine-tuning on ChatML conversations (`messages`), assistant-only loss, packing.

    python src/phi4_recipes/run_sft.py recipes/tiny/sft.yaml
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml src/phi4_recipes/run_sft.py recipes/sft.yaml
    accelerate launch --config_file recipes/accelerate_configs/fsdp.yaml src/phi4_recipes/run_sft.py recipes/sft.yaml
"""

from __future__ import annotations

from trl import SFTConfig, SFTTrainer, get_peft_config

from phi4_recipes.configs import ModelConfig, ScriptArguments, parse_recipe
from phi4_recipes.cpu_threads import configure_threads
from phi4_recipes.data.assistant_masks import needs_template_diff_masks, tokenize_with_assistant_masks
from phi4_recipes.data.sources import require_chat_messages, require_columns
from phi4_recipes.logs import get_logger
from phi4_recipes.model_loading import get_tokenizer, load_training_model
from phi4_recipes.tokenizer import end_of_turn_token
from phi4_recipes.training import (
    check_lora_targets,
    finish,
    load_training_data,
    require_requested_distribution,
    start_run,
    use_training_chat_template,
)

logger = get_logger(__name__)


def main(script_args, training_args, model_args):
    plan = start_run(script_args, training_args, model_args, stage="sft")

    dataset, inputs = load_training_data(script_args)
    name = script_args.dataset_name or inputs[0]["source"]
    require_columns(dataset, ["messages"], name)
    require_chat_messages(dataset, name)
    dataset = dataset.select_columns(["messages"])

    tokenizer = get_tokenizer(script_args.tokenizer_name_or_path, model_args.model_name_or_path,
                              script_args.chat_template)
    use_training_chat_template(tokenizer, training_args)  # {% generation %} markers for assistant_only_loss
    if needs_template_diff_masks(tokenizer, training_args):  # the model's own template has no such markers
        end_of_turn = tokenizer.convert_tokens_to_ids(end_of_turn_token(tokenizer))
        dataset = tokenize_with_assistant_masks(dataset, tokenizer, end_of_turn, name)
        plan = plan.handing(assistant_only_loss=False)  # the masks travel as `assistant_masks`; TRL builds labels
    model = load_training_model(model_args, tokenizer, script_args, training_args, use_liger=plan.use_liger)
    check_lora_targets(model, model_args)

    trainer = SFTTrainer(
        model=model,
        args=plan.trainer_args(training_args),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    require_requested_distribution(trainer.accelerator.distributed_type)
    train_result = trainer.train(resume_from_checkpoint=plan.resume_from_checkpoint)
    finish(trainer, script_args=script_args, training_args=training_args, model_args=model_args,
           train_result=train_result, inputs=inputs, plan=plan)


if __name__ == "__main__":
    configure_threads()  # before the recipe parser: it takes `--threads N` out of argv
    main(*parse_recipe(ScriptArguments, SFTConfig, ModelConfig))
