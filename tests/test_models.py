"""Contract tests for every registered architecture (tiny size, CPU), plus per-family checks.

Parametrised over ARCHITECTURES, so a newly registered family is tested the moment it exists.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

import gan_bench.models as models
from gan_bench.errors import UnknownNameError
from gan_bench.models import Architecture, ArchOptions, Discriminator, Generator, build_models
from gan_bench.models.base import ModelConfigError, data_kind
from gan_bench.models.options import MinibatchDiscrimination, MinibatchStd, pack_input
from gan_bench.registry import ARCHITECTURES, load_builtins

load_builtins()

N = 8  # batch size in every test: divisible by pack=2 and by MinibatchStd's group of 4
SHAPES = [(1, 28, 28), (3, 28, 28), (3, 32, 32), (2,)]
CASES = [(name, shape) for name in ARCHITECTURES.names() for shape in SHAPES
         if data_kind(shape) in ARCHITECTURES.get(name).supports]
IDS = [f"{name}-{'x'.join(map(str, shape))}" for name, shape in CASES]
OPTIONS = {
    "spectral_norm": {"spectral_norm": True},
    "minibatch_std": {"minibatch_std": True},
    "minibatch_disc": {"minibatch_disc": True},
    "pack2": {"pack": 2},
    "conditional": {"conditional": True},
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny nets run fastest on one thread: with two OpenMP threads on a busy 2-core machine each
    small conv waits ~30 ms for the other thread (measured), ten times this file's compute."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(name, shape, **options):
    return build_models(name, shape, size="tiny", **options)


def real_batch(shape, n=N, seed=0):
    """Stand-in data: images uniform in [-1, 1], points N(0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    if len(shape) == 1:
        return torch.randn(n, *shape, generator=gen)
    return torch.rand(n, *shape, generator=gen) * 2 - 1


def fakes(g, n=N, seed=1):
    z = g.sample_z(n, generator=torch.Generator().manual_seed(seed))
    y = g.sample_y(n, generator=torch.Generator().manual_seed(seed)) if g.conditional else None
    return g(z, y)


def snapshot(module):
    return {k: p.detach().clone() for k, p in module.named_parameters()}


def changed(before, module):
    return {k for k, p in module.named_parameters() if not torch.equal(before[k], p)}


def weight_names(module):
    """Parameters holding weight matrices / kernels (biases and BN scales excluded)."""
    return {k for k, p in module.named_parameters() if p.dim() >= 2}


# ---------------------------------------------------------------- catalogue and public API

def test_builtin_architectures_registered():
    assert {"mlp", "toy_mlp", "dcgan", "infogan"} <= set(ARCHITECTURES.names())
    for name in ARCHITECTURES.names():
        arch = ARCHITECTURES.get(name)
        assert isinstance(arch, Architecture) and arch.name == name and arch.summary
    supports = {e["name"]: e["supports"] for e in ARCHITECTURES.catalogue()}
    assert supports["dcgan"] == ["images28", "images32"]
    assert supports["infogan"] == ["images28"] and supports["toy_mlp"] == ["points"]


def test_public_api():
    assert {"ArchOptions", "Generator", "Discriminator", "Architecture",
            "build_models"} <= set(models.__all__)


# ---------------------------------------------------------------- shapes, ranges, latents

@pytest.mark.parametrize("name,shape", CASES, ids=IDS)
def test_shapes_and_ranges(name, shape):
    g, d = tiny(name, shape)
    assert isinstance(g, Generator) and isinstance(d, Discriminator)
    assert g.out_shape == shape and d.pack == 1
    z = g.sample_z(N, generator=torch.Generator().manual_seed(0))
    assert z.shape == (N, g.nz) and z.dtype == torch.float32
    x = g(z)
    assert x.shape == (N, *shape) and x.dtype == torch.float32 and torch.isfinite(x).all()
    if len(shape) == 3:
        assert x.min() >= -1 and x.max() <= 1
    for batch in (x, real_batch(shape)):
        logits = d(batch)
        assert logits.shape == (N,) and logits.dtype == torch.float32
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ARCHITECTURES.names())
def test_sample_z_distribution(name):
    shape = next(s for n, s in CASES if n == name)
    g, _ = tiny(name, shape)
    z = g.sample_z(20_000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (20_000, g.nz)
    assert z.mean().item() == pytest.approx(0.0, abs=0.02)
    if g.latent == "uniform":  # U(-1, 1): bounded, std 1/sqrt(3)
        assert z.min() >= -1 and z.max() <= 1 and z.min() < -0.99 and z.max() > 0.99
        assert z.std().item() == pytest.approx(1 / math.sqrt(3), rel=0.02)
    else:
        assert g.latent == "normal"
        assert z.std().item() == pytest.approx(1.0, rel=0.02)
        assert z.abs().max() > 3
    expected = {"infogan": "uniform", "dcgan": "normal", "mlp": "normal", "toy_mlp": "normal"}
    assert g.latent == expected.get(name, g.latent)
    assert g.nz == {"infogan": 64, "dcgan": 100, "mlp": 100, "toy_mlp": 2}.get(name, g.nz)


# ---------------------------------------------------------------- options

@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("name,shape", CASES, ids=IDS)
def test_each_option_builds_and_runs(name, shape, option):
    g, d = tiny(name, shape, **OPTIONS[option])
    x = fakes(g)
    assert x.shape == (N, *shape) and torch.isfinite(x).all()
    logits = d(x)
    assert torch.isfinite(logits).all()
    assert logits.shape == ((N // 2,) if option == "pack2" else (N,))
    if option == "pack2":
        assert d.pack == 2
        with pytest.raises(ValueError, match="not divisible by pack=2"):
            d(x[:N - 1])
    if option == "conditional":
        out, cls = d.forward_aux(x)
        assert out.shape == (N,) and cls.shape == (N, 10)
        assert torch.isfinite(cls).all()
        with pytest.raises(ValueError, match="pass labels"):
            g(g.sample_z(N))
    else:
        with pytest.raises(ValueError, match="no auxiliary classifier"):
            d.forward_aux(x)
    if option == "spectral_norm":
        layers = [m for m in d.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
        assert not any(parametrize.is_parametrized(m) for m in g.modules())
        d.eval()  # the head is one row: its normalised weight has unit norm
        assert torch.linalg.vector_norm(d.head.weight).item() == pytest.approx(1.0, rel=1e-4)
    if option == "minibatch_std":
        assert any(isinstance(m, MinibatchStd) for m in d.modules())
    if option == "minibatch_disc":  # Salimans' defaults, and D's logit reads the whole batch
        mbd = [m for m in d.modules() if isinstance(m, MinibatchDiscrimination)]
        assert len(mbd) == 1 and (mbd[0].kernels, mbd[0].kernel_dim) == (100, 5)
        d.eval()
        x2 = x.clone()
        x2[-1] = -x2[-1]
        changed = (d(x2)[:-1] - d(x)[:-1]).abs().max().item()
        assert changed > 0  # another sample of the batch moved the others' logits


@pytest.mark.parametrize("name,shape", CASES, ids=IDS)
def test_conditional_labels(name, shape):
    g, d = tiny(name, shape, conditional=True, n_classes=4, spectral_norm=True)
    assert parametrize.is_parametrized(d.aux_head, "weight")  # SN reaches the AC-GAN head
    z = g.sample_z(N, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3] * (N // 4))
    g.eval()
    x0, x1 = g(z, y), g(z, (y + 1) % 4)
    assert not torch.allclose(x0, x1)  # the label reaches the output
    assert d.forward_aux(x0)[1].shape == (N, 4)
    d.eval()
    torch.testing.assert_close(d(x0, y), d(x0))  # D ignores y (AC-GAN predicts it)
    with pytest.raises(ValueError, match="integer"):
        g(z, y.float())


def test_unconditional_generator_rejects_labels_and_bad_latents():
    g, _ = tiny("mlp", (2,))
    with pytest.raises(ValueError, match="unconditional"):
        g(g.sample_z(N), torch.zeros(N, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(N, 100\)"):
        g(torch.zeros(N, 3))
    with pytest.raises(ValueError, match="unconditional"):
        g.sample_y(N)


def test_discriminator_rejects_wrong_sample_shape():
    _, d = tiny("dcgan", (1, 28, 28))
    with pytest.raises(ValueError, match=r"\(1, 28, 28\)"):
        d(torch.zeros(N, 3, 28, 28))


# ---------------------------------------------------------------- one D step, one G step

COMBOS = {"plain": {}, "sn+mbstd+pack2": {"spectral_norm": True, "minibatch_std": True, "pack": 2},
          "sn+mbdisc+pack2": {"spectral_norm": True, "minibatch_disc": True, "pack": 2}}


@pytest.mark.parametrize("combo", list(COMBOS))
@pytest.mark.parametrize("name,shape", CASES, ids=IDS)
def test_one_d_step_and_one_g_step(name, shape, combo):
    options = COMBOS[combo]
    torch.manual_seed(0)
    g, d = tiny(name, shape, **options)
    lr = 0.1
    opt_d = torch.optim.SGD(d.parameters(), lr=lr)
    opt_g = torch.optim.SGD(g.parameters(), lr=lr)
    bce = F.binary_cross_entropy_with_logits

    g_before, d_before = snapshot(g), snapshot(d)
    real_logits, fake_logits = d(real_batch(shape)), d(fakes(g).detach())
    d_loss = (bce(real_logits, torch.ones_like(real_logits))
              + bce(fake_logits, torch.zeros_like(fake_logits)))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    assert torch.isfinite(d_loss)
    assert weight_names(d) <= changed(d_before, d)
    assert not changed(g_before, g)

    g_before, d_before = snapshot(g), snapshot(d)
    fake_logits = d(fakes(g, seed=2))
    g_loss = bce(fake_logits, torch.ones_like(fake_logits))  # non-saturating
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    assert torch.isfinite(g_loss)
    assert weight_names(g) <= changed(g_before, g)
    assert not changed(d_before, d)


# ---------------------------------------------------------------- determinism

@pytest.mark.parametrize("name,shape", CASES, ids=IDS)
def test_same_seed_same_init(name, shape):
    def build(seed):
        torch.manual_seed(seed)
        g, d = tiny(name, shape, spectral_norm=True)
        return {**g.state_dict(), **{f"D.{k}": v for k, v in d.state_dict().items()}}

    a, b, c = build(0), build(0), build(1)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


# ---------------------------------------------------------------- errors

def test_unknown_option_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown architecture option\(s\) 'spectral_nrom'.*"
                                         r"known: spectral_norm"):
        build_models("dcgan", (1, 28, 28), spectral_nrom=True)
    with pytest.raises(ModelConfigError, match="pack and conditional cannot be combined"):
        build_models("mlp", (2,), pack=2, conditional=True)
    for bad in ({"pack": 0}, {"n_classes": 1}, {"nz": 0}, {"size": "huge"},
                {"spectral_norm": "yes"}):
        with pytest.raises(ValueError):
            build_models("mlp", (2,), **bad)
    with pytest.raises(ValueError, match="no BatchNorm in D"):
        build_models("mlp", (2,), batch_norm_d=True)
    with pytest.raises(UnknownNameError, match="unknown architecture 'resnet'.*dcgan"):
        build_models("resnet", (3, 32, 32))


@pytest.mark.parametrize("name,shape,supported", [
    ("dcgan", (2,), "images28 (C, 28, 28), images32 (C, 32, 32)"),
    ("infogan", (3, 32, 32), "images28 (C, 28, 28)"),
    ("toy_mlp", (1, 28, 28), "points (2,)"),
    ("mlp", (1, 30, 30), "images28 (C, 28, 28), images32 (C, 32, 32), points (2,)"),
])
def test_unsupported_shape_names_shape_and_supported(name, shape, supported):
    with pytest.raises(ValueError) as info:
        build_models(name, shape, size="tiny")
    assert str(info.value) == (f"architecture {name!r} does not support data shape {shape}; "
                               f"it supports {supported}")


def test_options_object_and_keyword_override():
    arch = ARCHITECTURES.get("toy_mlp")
    g, d = arch((2,), ArchOptions(size="tiny", pack=4), nz=8)
    assert g.nz == 8 and d.pack == 4 and d(real_batch((2,))).shape == (N // 4,)


# ---------------------------------------------------------------- option helpers, known answers

def test_pack_input_groups_consecutive_samples():
    x = torch.arange(4 * 2 * 3 * 3, dtype=torch.float32).view(4, 2, 3, 3)
    p = pack_input(x, 2)
    assert p.shape == (2, 4, 3, 3)
    torch.testing.assert_close(p[1], torch.cat([x[2], x[3]]))
    pts = torch.arange(8.0).view(4, 2)
    torch.testing.assert_close(pack_input(pts, 2), torch.tensor([[0., 1, 2, 3], [4, 5, 6, 7]]))


def test_minibatch_std_known_values():
    # samples 0, 1 are all 0 and samples 2, 3 all 2. Groups of 2 take samples {0, 2} and {1, 3}
    # (Karras' strided grouping), so every feature has std 1 in both groups.
    x = torch.tensor([0.0, 0.0, 2.0, 2.0])[:, None].expand(4, 3)
    out = MinibatchStd(group_size=2)(x)
    assert out.shape == (4, 4)
    torch.testing.assert_close(out[:, 3], torch.ones(4))
    imgs = torch.tensor([0.0, 0.0, 2.0, 2.0, 4.0, 4.0]).view(6, 1, 1, 1).expand(6, 2, 3, 3)
    out = MinibatchStd(group_size=4)(imgs)  # 6 % 4 != 0: the whole batch is one group
    assert out.shape == (6, 3, 3, 3)
    torch.testing.assert_close(out[:, 2], torch.full((6, 3, 3), math.sqrt(8 / 3)))
    assert torch.isfinite(MinibatchStd()(torch.ones(1, 5))).all()  # one sample: sqrt(eps)


def test_minibatch_discrimination_known_values():
    # T = identity-like: feature a of a sample is kernel a's first coordinate, the rest 0. Three
    # samples with scalar features 0, 1, 3: o_i = mean_{j != i} exp(-|f_i - f_j|) per kernel.
    mbd = MinibatchDiscrimination(1, kernels=2, kernel_dim=2)
    with torch.no_grad():
        mbd.T.copy_(torch.tensor([[1.0, 0.0, 2.0, 0.0]]))  # kernel 0: f, kernel 1: 2 f
    f = torch.tensor([[0.0], [1.0], [3.0]])
    out = mbd(f)
    e = math.exp
    want0 = [(e(-1) + e(-3)) / 2, (e(-1) + e(-2)) / 2, (e(-3) + e(-2)) / 2]
    want1 = [(e(-2) + e(-6)) / 2, (e(-2) + e(-4)) / 2, (e(-6) + e(-4)) / 2]
    torch.testing.assert_close(out, torch.tensor([[0.0, want0[0], want1[0]], [1.0, want0[1], want1[1]],
                                                  [3.0, want0[2], want1[2]]]))
    # a collapsed batch (identical samples) gets the largest possible o = 1 per kernel
    same = MinibatchDiscrimination(4)(torch.ones(5, 4))
    torch.testing.assert_close(same[:, 4:], torch.full((5, 100), 1.0))
    assert MinibatchDiscrimination(4)(torch.ones(1, 4))[:, 4:].abs().max() == 0  # no other sample


# ---------------------------------------------------------------- DCGAN guidelines

@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_dcgan_layer_types_and_batchnorm_placement(shape):
    g, d = tiny("dcgan", shape)
    d_types = {type(m) for m in d.modules() if not list(m.children())}
    assert d_types == {nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU}  # no Linear, no pooling
    body = list(d.body)
    assert isinstance(body[0], nn.Conv2d) and isinstance(body[1], nn.LeakyReLU)  # no BN on input
    convs = [i for i, m in enumerate(body) if isinstance(m, nn.Conv2d)]
    assert all(body[i].stride == (2, 2) for i in convs)
    assert all(isinstance(body[i + 1], nn.BatchNorm2d) for i in convs[1:])
    assert isinstance(d.head, nn.Conv2d) and d.head.out_channels == 1
    layers = list(g.net)
    deconvs = [i for i, m in enumerate(layers) if isinstance(m, nn.ConvTranspose2d)]
    assert len(deconvs) == 4 and deconvs[-1] == len(layers) - 1  # no BN after the output layer
    assert all(isinstance(layers[i + 1], nn.BatchNorm2d) for i in deconvs[:-1])
    assert all(isinstance(layers[i + 2], nn.ReLU) for i in deconvs[:-1])
    assert not any(isinstance(m, nn.Linear) for m in g.modules())
    _, d_cond = tiny("dcgan", shape, conditional=True)
    linears = [m for m in d_cond.modules() if isinstance(m, nn.Linear)]
    assert linears == [d_cond.aux_head]  # the AC-GAN head is the only Linear
    _, d_nobn = tiny("dcgan", shape, batch_norm_d=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d_nobn.modules())


def test_dcgan_full_size_init():
    torch.manual_seed(0)
    g, d = build_models("dcgan", (3, 32, 32))
    assert [m.out_channels for m in d.body if isinstance(m, nn.Conv2d)] == [64, 128, 256]
    for w in (d.body[2].weight, g.net[0].weight):  # 64->128 conv, z->256 deconv
        assert w.mean().item() == pytest.approx(0.0, abs=1e-3)
        assert w.std().item() == pytest.approx(0.02, rel=0.02)
    bn = d.body[3]
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.01)
    assert bn.weight.std().item() == pytest.approx(0.02, rel=0.25)
    assert torch.equal(bn.bias, torch.zeros_like(bn.bias))


# ---------------------------------------------------------------- Lucic's InfoGAN-style nets

def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_infogan_full_size_parameter_counts():
    # From the layer list in PROTOCOLS.md, with compare_gan's biases on every layer and
    # BatchNorm scale + shift (2 per feature). MNIST (1, 28, 28), nz = 64.
    g_expected = (
        (64 * 1024 + 1024) + 2 * 1024             # fc 1024 + BN          66,560 +     2,048
        + (1024 * 6272 + 6272) + 2 * 6272         # fc 128*7*7 + BN    6,428,800 +    12,544
        + (128 * 64 * 16 + 64) + 2 * 64           # deconv 64 4x4 + BN   131,136 +       128
        + (64 * 1 * 16 + 1)                       # deconv 1 4x4           1,025
    )
    d_expected_no_bn = (
        (1 * 64 * 16 + 64)                        # conv 64 4x4            1,088
        + (64 * 128 * 16 + 128)                   # conv 128 4x4         131,200
        + (6272 * 1024 + 1024)                    # fc 1024            6,423,552
        + (1024 + 1)                              # fc 1                   1,025
    )
    assert (g_expected, d_expected_no_bn) == (6_642_241, 6_556_865)
    g, d = build_models("infogan", (1, 28, 28))
    assert n_params(g) == 6_642_241
    assert n_params(d) == 6_556_865 + 2 * 128 + 2 * 1024 == 6_559_169  # BN in D by default
    _, d_no_bn = build_models("infogan", (1, 28, 28), batch_norm_d=False)
    assert n_params(d_no_bn) == 6_556_865


def test_infogan_output_is_rescaled_sigmoid_and_tf_init():
    g, d = tiny("infogan", (1, 28, 28))
    g.eval()
    z = g.sample_z(N, generator=torch.Generator().manual_seed(0))
    a = g.deconv(g.fc(z).view(N, g.wide, 7, 7))  # pre-activation
    torch.testing.assert_close(g(z), 2 * torch.sigmoid(a) - 1)
    conv = d.conv[0].weight
    assert conv.abs().max() <= 0.04  # truncated at 2 std
    assert all(torch.equal(m.weight, torch.ones_like(m.weight))
               for m in [*g.modules(), *d.modules()] if isinstance(m, nn.BatchNorm1d))
    assert all(m.momentum == pytest.approx(1e-3) and m.eps == pytest.approx(1e-3)
               for m in g.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))
