"""The one generic trainer, its configuration and callbacks (imports neither mlflow nor optuna)."""

from gan_bench.train.callbacks import Callback
from gan_bench.train.config import GanSpec, TrainConfig
from gan_bench.train.trainer import Trainer, TrainingDiverged, TrainResult, to_uint8

__all__ = ["Callback", "GanSpec", "TrainConfig", "Trainer", "TrainingDiverged", "TrainResult", "to_uint8"]
