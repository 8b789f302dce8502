"""The project's MNIST classifier: architecture, seeded CPU training, and the shipped checkpoint.

TTUR (Heusel et al. 2017) advises scoring MNIST GANs with a classifier trained on MNIST rather
than with Inception. This module defines that classifier (`MnistNet`), trains it reproducibly
(`train_mnist_classifier`, called by `gan-bench evaluator train mnist`) and pins the checkpoint
shipped in `gan_bench/assets/mnist_classifier.pt` by its sha256 (`MNIST_CLASSIFIER_SHA256`).
The feature extractor `mnist_classifier` (metrics/features.py) loads that checkpoint and refuses
any file whose sha256 differs. Scores from different classifiers are not comparable: every run
records the extractor's weights hash next to its numbers.

Input convention: images uint8 (N, 1, 28, 28) in [0, 255] -> float (x/255 - 0.1307) / 0.3081
(the MNIST train mean and std), done by `MnistNet.preprocess`.
"""

from __future__ import annotations

import io
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_bench.cache import atomic_write_bytes, atomic_write_json, sha256_file

__all__ = ["MnistNet", "train_mnist_classifier", "evaluate_accuracy", "load_mnist_classifier",
           "random_shift", "MNIST_CLASSIFIER_PATH", "MNIST_CLASSIFIER_SHA256", "MNIST_MEAN",
           "MNIST_STD", "N_FEATURES", "shipped_record"]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # MNIST train pixel mean/std of x/255
N_FEATURES = 128  # penultimate width: the features of the domain FID
MNIST_CLASSIFIER_PATH = Path(__file__).resolve().parent.parent / "assets" / "mnist_classifier.pt"
# sha256 of the shipped checkpoint; must equal the one in assets/mnist_classifier.json
MNIST_CLASSIFIER_SHA256 = "ce597e9bd606583fb060391e37e28a60bebd59647ba00ec5df6e9699abee3418"


class MnistNet(nn.Module):
    """Small VGG-style CNN: 4 conv(3x3)+BN+ReLU, 2 max-pools, fc 128 (features) -> fc 10.

    ~198k parameters. `embed` maps normalised float (N, 1, 28, 28) to the 128-d penultimate
    activations (after ReLU; dropout 0.3 acts only in training); `forward` returns 10 logits.
    """

    def __init__(self, n_features: int = N_FEATURES, n_classes: int = 10, dropout: float = 0.3):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.body = nn.Sequential(
            *block(1, 32), *block(32, 32), nn.MaxPool2d(2),   # 28 -> 26 -> 24 -> 12
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2),  # 12 -> 10 -> 8 -> 4
            nn.Flatten(), nn.Linear(64 * 4 * 4, n_features), nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(n_features, n_classes)

    @staticmethod
    def preprocess(images_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 1, 28, 28) in [0, 255] -> float32 (x/255 - mean) / std."""
        return (images_uint8.float() / 255.0 - MNIST_MEAN) / MNIST_STD

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float (N, 1, 28, 28) -> penultimate features (N, 128), >= 0."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float (N, 1, 28, 28) -> logits (N, 10)."""
        return self.head(self.dropout(self.embed(x)))


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image of (N, C, H, W) by its own integer (dy, dx) in [-s, s], zero fill."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    s = max_shift
    padded = F.pad(x, (s, s, s, s))
    dy, dx = torch.randint(0, 2 * s + 1, (2, n), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # (N, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # (N, 1, 1, W)
    chans = torch.arange(x.shape[1])[None, :, None, None]
    return padded[torch.arange(n)[:, None, None, None], chans, rows, cols]


@torch.no_grad()
def evaluate_accuracy(model: MnistNet, images: torch.Tensor, labels: torch.Tensor,
                      batch_size: int = 1000) -> float:
    """Top-1 accuracy in [0, 1] of `model` (eval mode) on uint8 (N, 1, 28, 28) images."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(images), batch_size):
        x = MnistNet.preprocess(images[i:i + batch_size].to(device))
        correct += int((model(x).argmax(1).cpu() == labels[i:i + batch_size]).sum())
    model.train(was_training)
    return correct / len(images)


def _train_epoch(model: MnistNet, opt: torch.optim.Optimizer,
                 sched: torch.optim.lr_scheduler.LRScheduler, images: torch.Tensor,
                 labels: torch.Tensor, batch_size: int, max_shift: int,
                 gen: torch.Generator) -> float:
    """One pass over a seeded permutation; returns the mean training loss."""
    model.train()
    device = next(model.parameters()).device
    perm = torch.randperm(len(images), generator=gen)
    total, steps = 0.0, 0
    for i in range(0, len(perm), batch_size):
        idx = perm[i:i + batch_size]
        # shift the uint8 pixels so the fill is black (0), not the normalised mean
        x = MnistNet.preprocess(random_shift(images[idx], max_shift, gen)).to(device)
        x = x.contiguous(memory_format=torch.channels_last)  # ~1.5x faster convs on CPU
        loss = F.cross_entropy(model(x), labels[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total, steps = total + loss.item(), steps + 1
    return total / max(steps, 1)


def train_mnist_classifier(out_path: str | Path, seed: int = 0, epochs: int = 5,
                           device: str = "cpu", batch_size: int = 128, lr: float = 1e-3,
                           max_shift: int = 2, num_threads: int | None = 2,
                           command: str | None = None, log: Callable[[str], object] = print,
                           n_train: int | None = None, n_test: int | None = None
                           ) -> dict[str, Any]:
    """Train MnistNet on MNIST train, test on MNIST test, write `out_path` and its .json.

    Adam(lr) with a per-step cosine decay to 0, batch `batch_size`, random shifts of up to
    `max_shift` px (seeded), dropout 0.3 on the 128-d features. Seeded and deterministic on
    the CPU for a given torch version and thread count (`num_threads`, set process-wide).
    The checkpoint (float32 state_dict, torch.save, byte-identical across identical runs)
    and the json (sha256, test accuracy, seed, epochs, wall time, versions, command) are
    written atomically. Returns the json's content. `n_train` / `n_test` use
    only the first images of each split (smoke tests; never for a shipped checkpoint).
    """
    from gan_bench.data import load_dataset

    out_path = Path(out_path)
    if num_threads:
        torch.set_num_threads(num_threads)
    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    torch.set_flush_denormal(True)  # denormal gradients made CPU steps up to 2x slower
    try:
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
        train = train.subset(n_train) if n_train else train
        test = test.subset(n_test) if n_test else test
        # torch's stubs: no Module.to overload takes a device and memory_format together; runtime does
        model = MnistNet().to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        steps = epochs * math.ceil(len(train) / batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps)))
        t0 = time.perf_counter()
        epoch_s = []
        for epoch in range(epochs):
            te = time.perf_counter()
            loss = _train_epoch(model, opt, sched, train.data, train.labels, batch_size,
                                max_shift, gen)
            epoch_s.append(round(time.perf_counter() - te, 1))
            acc = evaluate_accuracy(model, test.data, test.labels)
            log(f"epoch {epoch + 1}/{epochs}: loss {loss:.4f} test acc {acc:.4f} "
                f"({epoch_s[-1]:.0f} s)")
        wall = time.perf_counter() - t0
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_flush_denormal(False)  # torch's default
    model = model.cpu().eval()
    state = {k: (v.float() if v.is_floating_point() else v).contiguous()
             for k, v in model.state_dict().items()}
    buf = io.BytesIO()  # saving to a file names the zip's root after it: bytes would vary
    torch.save(state, buf)
    atomic_write_bytes(out_path, buf.getvalue())
    record = {
        "file": out_path.name, "sha256": sha256_file(out_path),
        "bytes": out_path.stat().st_size,
        "test_accuracy": acc, "test_split": f"mnist/test ({len(test)} images)",
        "n_params": sum(p.numel() for p in model.parameters()),
        "seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "schedule": "Adam, per-step cosine decay to 0", "max_shift_px": max_shift,
        "preprocess": f"(x/255 - {MNIST_MEAN}) / {MNIST_STD}", "n_features": N_FEATURES,
        "wall_time_s": round(wall, 1), "epoch_time_s": epoch_s, "device": device,
        "num_threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
        "command": command or " ".join(sys.argv),
        "train_source": train.source,
    }
    atomic_write_json(out_path.with_suffix(".json"), record)
    for path in (out_path, out_path.with_suffix(".json")):
        path.chmod(0o644)  # atomic writes leave mkstemp's 0600; the checkpoint is shipped
    return record


def load_mnist_classifier(path: str | Path | None = None, sha256: str | None = None,
                          device: str | torch.device = "cpu") -> MnistNet:
    """MnistNet in eval mode from a checkpoint whose sha256 must equal the pin.

    Defaults: the shipped checkpoint and `MNIST_CLASSIFIER_SHA256`. A mismatch raises
    IntegrityError and the file is never deserialised.
    """
    from gan_bench.errors import IntegrityError

    path = Path(path) if path is not None else MNIST_CLASSIFIER_PATH
    want = sha256 if sha256 is not None else MNIST_CLASSIFIER_SHA256
    got = sha256_file(path)
    if got != want:
        raise IntegrityError(f"{path}: sha256 {got} != pinned {want}; refused")
    model = MnistNet()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(device).eval()


def shipped_record() -> dict[str, Any]:
    """The shipped checkpoint's json record (accuracy, seed, command, versions)."""
    return json.loads(MNIST_CLASSIFIER_PATH.with_suffix(".json").read_text())
