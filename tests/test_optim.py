"""train/optim.py: one trial's update is torch.optim's, a pack's stacked update equals
torch.optim trial by trial (bit for bit, masked trials untouched), fused Adam to float rounding."""

import pytest
import torch

from gan_bench.train.optim import hyperparameters, init_state, update_


def _torch(kind, params, lr, beta1, beta2):
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2))
    return torch.optim.RMSprop(params, lr=lr)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["adam", "rmsprop"])
def test_a_pack_steps_each_trial_as_torch_optim_would(kind, dtype):
    """Three trials with their own lr and betas; each step masks some of them."""
    g = torch.Generator().manual_seed(0)
    shapes = {"w": (4, 5), "b": (5,)}
    init = {k: torch.randn(3, *s, generator=g, dtype=dtype) for k, s in shapes.items()}
    lr, b1, b2 = [1e-3, 3e-2, 1e-4], [0.5, 0.0, 0.9], [0.999, 0.9, 0.99]
    stacked = {k: v.clone() for k, v in init.items()}
    state = init_state(kind, stacked, trials=3)
    hyper = hyperparameters(lr, b1, b2)
    solo = [{k: v[i].clone().requires_grad_(True) for k, v in init.items()} for i in range(3)]
    opts = [_torch(kind, list(s.values()), lr[i], b1[i], b2[i]) for i, s in enumerate(solo)]
    masks = [[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 1, 1]]
    for mask in masks:
        grads = {k: torch.randn(3, *s, generator=g, dtype=dtype) for k, s in shapes.items()}
        grads["w"][[i for i, on in enumerate(mask) if not on]] = float("nan")  # masked: ignored
        update_(kind, stacked, grads, state, hyper, torch.tensor(mask, dtype=torch.bool))
        for i, on in enumerate(mask):
            if on:
                for k, p in solo[i].items():
                    p.grad = grads[k][i].clone()
                opts[i].step()
    for i in range(3):
        for k in shapes:
            assert torch.equal(stacked[k][i], solo[i][k].detach()), (i, k)
    assert state["step"].tolist() == [4.0, 4.0, 4.0]


@pytest.mark.parametrize("kind", ["adam", "rmsprop"])
def test_one_trial_is_torch_optim(kind):
    g = torch.Generator().manual_seed(1)
    params = {"w": torch.randn(6, 3, generator=g)}
    ref = [params["w"].clone().requires_grad_(True)]
    opt = _torch(kind, ref, 2e-3, 0.5, 0.999)
    state, hyper = init_state(kind, params), hyperparameters(2e-3, 0.5, 0.999)
    for _ in range(20):
        grad = torch.randn(6, 3, generator=g)
        ref[0].grad = grad.clone()
        opt.step()
        update_(kind, params, {"w": grad}, state, hyper)
    assert torch.equal(params["w"], ref[0].detach())
    assert int(state["step"]["w"]) == 20


def test_fused_adam_agrees_with_the_single_tensor_update_to_rounding():
    g = torch.Generator().manual_seed(2)
    init = torch.randn(64, 32, generator=g)
    runs = {}
    for fused in (False, True):
        params = {"w": init.clone()}
        state, hyper = init_state("adam", params), hyperparameters(1e-3, 0.5, 0.999)
        gen = torch.Generator().manual_seed(3)
        for _ in range(30):
            update_("adam", params, {"w": torch.randn(64, 32, generator=gen)}, state, hyper,
                    fused=fused)
        runs[fused] = params["w"]
    moved = float((runs[False] - init).abs().max())
    assert moved > 1e-3  # it trained
    torch.testing.assert_close(runs[True], runs[False], rtol=1e-5, atol=1e-7)
