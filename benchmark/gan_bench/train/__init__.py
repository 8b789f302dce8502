"""The one generic trainer, its configuration and callbacks (imports neither mlflow nor optuna)."""

from gan_bench.train.callbacks import Callback
from gan_bench.train.config import GanSpec, TrainConfig
from gan_bench.train.results import TrainingDiverged, TrainResult
from gan_bench.train.sampling import to_uint8
from gan_bench.train.trainer import PackedTrainer, Trainer, Trial

__all__ = ["Callback", "GanSpec", "TrainConfig", "Trainer", "PackedTrainer", "Trial",
           "TrainingDiverged", "TrainResult", "to_uint8"]
