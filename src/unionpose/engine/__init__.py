"""The training engine: config schema, training loop, schedule, EMA, checkpoints and exact resume, torchrun/DDP."""
from unionpose.engine.checkpoint import Progress, latest_checkpoint, load_checkpoint, save_checkpoint
from unionpose.engine.config import Config, load_config, save_config
from unionpose.engine.trainer import TrainResult, Trainer, train
from unionpose.engine.validation import CropValidator, Validator

__all__ = [
    "Config", "CropValidator", "Progress", "TrainResult", "Trainer", "Validator", "latest_checkpoint",
    "load_checkpoint", "load_config", "save_checkpoint", "save_config", "train",
]
