"""Fine-tune a Qwen VLM into a RoboReward reward model (video + instruction -> 1-5 progress score) with TRL.

# Full fine-tune, 8 GPUs, DeepSpeed ZeRO-3 (RoboReward 4B / 8B; Qwen2.5-VL 3B / 7B likewise)
```bash
accelerate launch --config_file recipes/accelerate_configs/zero3.yaml recipes/sft_reward.py \
    --config recipes/qwen3-vl-4b/sft/config_full.yaml
accelerate launch --config_file recipes/accelerate_configs/zero3.yaml recipes/sft_reward.py \
    --config recipes/qwen3-vl-8b/sft/config_full.yaml
```

# QLoRA (nf4 + double quant, LoRA on the language model), 8 GPUs with DDP, or one GPU
```bash
accelerate launch --config_file recipes/accelerate_configs/ddp.yaml recipes/sft_reward.py \
    --config recipes/qwen3-vl-8b/sft/config_qlora.yaml
python recipes/sft_reward.py --config recipes/qwen2.5-vl-7b/sft/config_qlora.yaml
```

# Tiny random Qwen3-VL on the CPU (pipeline check, minutes)
```bash
roboreward build --source sample --out data/sample
python recipes/sft_reward.py --config recipes/tiny/sft/config_tiny.yaml --dataset_name data/sample
```

Any recipe key can be overridden on the command line (``--learning_rate 1e-5``); unknown or misspelt keys are
refused with the closest known one. ``roboreward train --config <recipe> [key=value ...]`` runs this script.
The library provides the pieces: arguments (:mod:`roboreward.training.config`), the video collator, the trainer
subclass and the MAE metrics (:mod:`roboreward.training.trainer`), the model card and the Hub push.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import EarlyStoppingCallback
from transformers.trainer_utils import get_last_checkpoint
from trl import SFTConfig, get_peft_config

from roboreward.scoring.vlm import freeze_vision_tower, load_model, model_family, score_token_ids
from roboreward.training import (
    RUN_INFO,
    SKIP_LOG,
    RecipeError,
    RewardCollator,
    RewardMetrics,
    RewardModelConfig,
    RewardScriptArguments,
    RewardSFTTrainer,
    ScoreLogits,
    build_run_info,
    checkpoint_name,
    configure_training_args,
    count_lines,
    find_dataset,
    kbit_device_map,
    load_examples,
    merge_adapter,
    parse_args,
    push_model,
    quantization_config,
    resolve_model_path,
    training_dataset,
    world_size,
    write_model_card,
)


def main(script_args: RewardScriptArguments, training_args: SFTConfig, model_args: RewardModelConfig) -> dict[str, Any]:
    """Train, keep the best checkpoint by validation MAE, save it (safetensors + processor) with its card."""
    push = configure_training_args(training_args, script_args, world_size())
    out = Path(training_args.output_dir)
    evaluate = training_args.eval_strategy != "no"

    ################
    # Dataset (checked before the model loads)
    ################
    train_split, eval_split = script_args.dataset_train_split, script_args.dataset_test_split
    root = find_dataset(
        script_args.dataset_name,
        (train_split, eval_split) if evaluate else (train_split,),
        script_args.dataset_revision,
    )
    train_rows = load_examples(root, train_split, script_args.max_train_samples)
    eval_rows = load_examples(root, eval_split, script_args.max_eval_samples) if evaluate else []

    ################
    # Model & processor
    ################
    model_path = resolve_model_path(model_args.model_name_or_path)
    quantization = quantization_config(model_args)
    model, processor = load_model(
        model_path,
        dtype=model_args.dtype or "auto",
        device_map=kbit_device_map() if quantization is not None else None,
        quantization_config=quantization,
        attn_implementation=model_args.attn_implementation,
        trust_remote_code=training_args.trust_remote_code,
        revision=model_args.model_revision,
    )
    family = model_family(model.config)
    frozen = freeze_vision_tower(model) if script_args.freeze_vision_tower else 0
    peft_config = get_peft_config(model_args)
    score_ids = score_token_ids(processor.tokenizer)

    ################
    # Training
    ################
    sampling = script_args.sampling()
    collator = RewardCollator(processor, family, sampling, skip_log=out / SKIP_LOG, fallback=train_rows)
    trainer = RewardSFTTrainer(
        model=model,
        args=training_args,
        train_dataset=training_dataset(train_rows),
        eval_dataset=training_dataset(eval_rows) if eval_rows else None,
        processing_class=processor,
        data_collator=collator,
        peft_config=peft_config,
        compute_metrics=RewardMetrics(score_ids, [r.subset for r in eval_rows]) if eval_rows else None,
        preprocess_logits_for_metrics=ScoreLogits(score_ids) if eval_rows else None,
        callbacks=[EarlyStoppingCallback(script_args.early_stopping_patience)]
        if script_args.early_stopping_patience and eval_rows
        else None,
    )
    resume = training_args.resume_from_checkpoint or (get_last_checkpoint(str(out)) if out.is_dir() else None)
    if resume:
        trainer.accelerator.print(f"Resuming from {resume}")
    train_result = trainer.train(resume_from_checkpoint=resume)
    history = list(trainer.state.log_history)  # before the final evaluation of the best model
    eval_metrics = trainer.evaluate() if eval_rows else {}

    ################
    # Save the best model (safetensors) with its processor, run_info.json and the model card; then push
    ################
    trainer.save_model(str(out / "adapter") if peft_config is not None else str(out))
    trainer.accelerator.wait_for_everyone()
    info: dict[str, Any] = {}
    if trainer.accelerator.is_main_process:
        if peft_config is not None and script_args.merge_lora:
            merge_adapter(model_path, out / "adapter", out, dtype=model_args.dtype or "auto")
        processor.save_pretrained(str(out))
        (out / "training_args.bin").unlink(missing_ok=True)  # a pickle; run_info.json records the arguments
        info = build_run_info(
            base_model=model_args.model_name_or_path,
            family=family,
            dataset=script_args.dataset_name,
            splits={train_split: len(train_rows), eval_split: len(eval_rows)},
            sampling=sampling.as_dict(),
            training_args=training_args,
            model_args=model_args,
            world_size=world_size(),
            eval_metrics=eval_metrics,
            train_metrics=dict(train_result.metrics),
            best_checkpoint=checkpoint_name(trainer.state.best_model_checkpoint, out),
            best_metric=trainer.state.best_metric,
            log_history=history,
            skipped_videos=count_lines(out / SKIP_LOG),
            frozen_vision_parameters=frozen,
            quantization=quantization.to_dict() if quantization is not None else None,
            peft=peft_config.to_dict() if peft_config is not None else None,
            license=script_args.model_license,
            eval_split=eval_split,
        )
        (out / RUN_INFO).write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
        if script_args.write_model_card:
            write_model_card(out, info)
        if push:
            repo_id = training_args.hub_model_id or out.name
            push_model(out, repo_id, private=training_args.hub_private_repo, token=training_args.hub_token)
    trainer.end()
    return info


if __name__ == "__main__":
    ################
    # Arguments: TrlParser((RewardScriptArguments, SFTConfig, RewardModelConfig)) over the YAML + CLI
    ################
    try:
        args = parse_args()
    except RecipeError as exc:  # an unknown or misspelt key, a missing recipe: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
    main(*args)
