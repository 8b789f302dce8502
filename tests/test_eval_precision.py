"""Evaluation precision (issue 15): feature extraction runs in strict float32 whatever the process
flags say, records what it used, and the real-feature cache key names the precision and device.

torch leaves cuDNN's TF32 for convolutions on by default and the trainer turns TF32 on for its
own steps, so without `float32_math` evaluation convolutions on cuda would run in TF32 while the
protocol said float32. The flags are plain process attributes, so all of this is checked on a
CPU; tests/test_gpu.py compares cuda features with CPU features on a GPU.
"""

from __future__ import annotations

import pytest
import test_evaluate
import torch
from test_evaluate import _uint8

from gan_bench.errors import UserInputError
from gan_bench.metrics import features, real_features
from gan_bench.metrics.evaluator import Evaluator
from gan_bench.metrics.features import (
    MnistClassifierFeatures,
    RandomTiny,
    applied_precision,
    float32_math,
    get_extractor,
)

tiny_mnist = test_evaluate.tiny_mnist  # fixtures: MNIST replaced by random digits,
fresh_memo = test_evaluate.fresh_memo  # and no real features memoised across tests


def _flags() -> tuple[bool, bool, str]:
    return (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
            torch.get_float32_matmul_precision())


STRICT = (False, False, "highest")
TF32 = (True, True, "high")


@pytest.fixture
def tf32_on():
    """The process flags as a TF32 training step leaves them inside train_context."""
    saved = _flags()
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    yield
    torch.set_float32_matmul_precision(saved[2])
    torch.backends.cudnn.allow_tf32 = saved[0]


def test_float32_math_forces_strict_fp32_and_restores_the_flags(tf32_on):
    assert _flags() == TF32
    with float32_math():
        assert _flags() == STRICT
    assert _flags() == TF32
    with pytest.raises(RuntimeError, match="boom"), float32_math():
        raise RuntimeError("boom")
    assert _flags() == TF32  # restored on the way out of an error too
    with float32_math():
        with float32_math(tf32=True):
            assert _flags() == TF32
        assert _flags() == STRICT
    assert _flags() == TF32


class _SpyTiny(RandomTiny):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.seen = []

    def _features(self, x):
        self.seen.append(_flags())
        return super()._features(x)


def test_every_forward_pass_runs_strict_whatever_the_process_flags(tf32_on):
    spy = _SpyTiny()
    spy.features(_uint8(2))
    spy(_uint8(2))  # forward: torchmetrics' entry point
    assert spy.seen == [STRICT, STRICT] and _flags() == TF32
    mnist = MnistClassifierFeatures()
    seen = []
    mnist.net.body.register_forward_pre_hook(lambda module, args: seen.append(_flags()))
    mnist.features(_uint8(2))
    mnist.logits(_uint8(2))
    mnist.per_channel_logits(_uint8(2, c=3))
    assert seen == [STRICT] * 3 and _flags() == TF32
    bf16 = _SpyTiny(dtype="bfloat16")
    bf16.features(_uint8(2))
    assert bf16.seen == [STRICT]  # autocast runs inside the strict float32 math


def test_the_protocol_records_the_precision_used():
    assert RandomTiny().protocol()["precision"] == "fp32-strict"
    assert RandomTiny(precision="tf32").protocol()["precision"] == "fp32-strict"  # no TF32 on CPU
    assert applied_precision("tf32", "cuda") == "tf32"
    assert applied_precision("fp32", "cuda") == applied_precision("fp32", "cpu") == "fp32-strict"
    with pytest.raises(ValueError, match="precision"):
        RandomTiny(precision="fp16")
    assert get_extractor("random_tiny", precision="fp32") is get_extractor("random_tiny")


def test_records_carry_the_precision_and_bad_precision_is_refused(tiny_mnist):
    ev = Evaluator("mnist", metrics=["fid@random_tiny", "is_mnist"], n_real=60)
    recs = ev.evaluate(_uint8(30))
    assert {r.protocol["precision"] for r in recs.values()} == {"fp32-strict"}
    with pytest.raises(UserInputError, match="precision must be one of fp32, tf32"):
        Evaluator("mnist", metrics=["fid"], precision="fp16")


def test_real_feature_key_names_device_type_and_precision(tiny_mnist):
    ev = Evaluator("mnist", metrics=["fid@random_tiny"], n_real=60)
    key = ev.real_features("random_tiny").key
    assert key["device_type"] == "cpu" and key["precision"] == "fp32-strict"
    assert key["key_version"] == real_features.KEY_VERSION == 2
    # on a CPU "tf32" computes the same features, so it shares the entry
    tf32 = Evaluator("mnist", metrics=["fid@random_tiny"], n_real=60, precision="tf32")
    assert tf32.real_features("random_tiny").digest == ev.real_features("random_tiny").digest
    data = {k: key[k] for k in ("dataset", "options", "split", "n_real", "subset_seed",
                                "data_sha256")}
    proto = key["extractor_protocol"]
    assert real_features.feature_key(data, proto, "cpu") == {
        k: v for k, v in key.items() if k != "key_version"}
    tf32_proto = {**proto, "precision": "tf32"}
    digests = {real_features.key_digest(real_features.feature_key(data, p, d))
               for p, d in [(proto, "cpu"), (proto, "cuda"), (tf32_proto, "cuda")]}
    assert len(digests) == 3  # cpu vs cuda, and strict vs TF32 on cuda: three entries


def test_extract_keeps_the_flags_of_its_caller(tf32_on):
    out = features.extract(RandomTiny(), _uint8(5), batch_size=2)
    assert out.shape == (5, 16) and _flags() == TF32


def test_generation_for_evaluation_is_strict_fp32_too(tf32_on):
    """Trainer.generate and PackedTrial.generate draw the scored samples: G's convolutions must
    not run in TF32 either (the flags seen inside G's forward are the strict ones)."""
    from gan_bench.data import load_dataset
    from gan_bench.registry import load_builtins
    from gan_bench.train import GanSpec, PackedTrainer, TrainConfig, Trainer

    load_builtins()
    data = load_dataset("ring8", "test")
    spec = GanSpec("toy_mlp", "non_saturating", arch_options={"size": "tiny"})
    cfg = TrainConfig(iterations=1, batch_size=32, device="cpu")
    seen = []
    trainer = Trainer(spec, cfg, data)
    hook = trainer.G.register_forward_hook(lambda *a: seen.append(_flags()))
    trainer.generate(10, seed=0)
    hook.remove()
    pack = PackedTrainer(spec, [cfg, cfg.with_(seed=1)], data)
    template = pack.modules["G"]  # the template each trial's G is copied from, hooks included
    template.register_forward_hook(lambda *a: seen.append(_flags()))
    pack.trials[1].generate(10, seed=0)
    assert seen and all(flags == STRICT for flags in seen)
    assert _flags() == TF32  # restored afterwards
