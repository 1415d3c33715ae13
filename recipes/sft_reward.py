"""Fine-tune a Qwen VLM into a RoboReward reward model (video + instruction -> 1-5 progress score).

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
python recipes/sft_reward.py --config recipes/tiny/sft/config_tiny.yaml --dataset_name data/sample
```

Any recipe key can be overridden on the command line (``--learning_rate 1e-5``). The same entry point is
``roboreward train --config <recipe> [key=value ...]``. The logic lives in :mod:`roboreward.train`.
"""

from roboreward.train import main, parse_args

if __name__ == "__main__":
    ################
    # Arguments: TrlParser((RewardScriptArguments, SFTConfig, RewardModelConfig)) over the YAML + CLI
    ################
    script_args, training_args, model_args = parse_args()

    ################
    # Model & processor, dataset, training: see roboreward.train.main
    ################
    main(script_args, training_args, model_args)
