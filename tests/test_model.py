"""The VRNN: shapes, the loss terms, the variance modes, and that it learns."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import saccade
from saccade.model import gaussian_kl, loss
from saccade.train import collate
from tests.conftest import small_model


@pytest.fixture(scope="module")
def batch():
    ds = saccade.make_dataset("cluttered", task="sum", split="train")
    return collate([ds[i] for i in range(8)])


def test_output_shapes(batch):
    model = small_model()
    trace = model(batch["image"], batch["proxy"], n_saccades=5)
    assert trace.logits.shape == (5, 8, 19)
    for name in ("mu", "sigma", "prior_mu", "prior_sigma", "z"):
        assert getattr(trace, name).shape == (5, 8, 3)
    assert trace.crops.shape == (5, 8, 32, 32)
    assert trace.recon.shape == (5, 8, 32, 32)
    assert (trace.sigma > 0).all()
    # the posterior mean lies inside the image
    assert trace.mu[..., 1:].abs().max() < 1


def test_eval_uses_the_mean_and_training_samples(batch):
    model = small_model().eval()
    trace = model(batch["image"], batch["proxy"])
    assert torch.equal(trace.z, trace.mu)
    sampled = model(batch["image"], batch["proxy"], sample=True)
    assert not torch.allclose(sampled.z, sampled.mu)


def test_fixed_sigma_is_constant_and_learnt_varies(batch):
    fixed = small_model(variance="fixed", fixed_sigma=0.07).eval()
    s = fixed(batch["image"], batch["proxy"]).sigma
    assert torch.allclose(s, torch.full_like(s, 0.07))
    assert fixed.posterior.sigma is None  # nothing to learn
    learnt = small_model(variance="learnt")
    opt = torch.optim.AdamW(learnt.parameters(), lr=3e-3)
    for _ in range(5):  # a few steps so that the σ head departs from its uniform init
        trace = learnt(batch["image"], batch["proxy"])
        total, _ = loss(trace, batch["label"], batch["proxy"])
        opt.zero_grad()
        total.backward()
        opt.step()
    s = learnt.eval()(batch["image"], batch["proxy"]).sigma
    assert s.std(dim=0).max() > 1e-4  # varies across steps
    assert s.std(dim=1).max() > 1e-4  # and across images


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mq, mp = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    sq, sp = torch.rand(4, 3, generator=g) + 0.1, torch.rand(4, 3, generator=g) + 0.1
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(mq, sq), torch.distributions.Normal(mp, sp)
    ).sum(-1)
    assert torch.allclose(gaussian_kl(mq, sq, mp, sp), ref, atol=1e-6)


def test_loss_terms_are_logged_and_add_up(batch):
    model = small_model()
    trace = model(batch["image"], batch["proxy"])
    total, terms = loss(trace, batch["label"], batch["proxy"], beta=0.5)
    assert set(terms) == {"loss", "ce", "recon", "kl", "acc"}
    expected = terms["ce"] + 0.5 * (terms["recon"] + terms["kl"])
    assert abs(terms["loss"] - expected) < 1e-3 * abs(expected)
    assert terms["kl"] >= 0 and terms["recon"] > 0


def test_loss_falls_when_overfitting_a_tiny_set(batch):
    model = small_model()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    final_ce = []  # the class after all saccades: one crop alone cannot tell a sum
    for step in range(60):
        # the posterior is held still for the first 20 steps, as training's --where-warmup
        trace = model(batch["image"], batch["proxy"], where_grad=step >= 20)
        total, _ = loss(trace, batch["label"], batch["proxy"])
        opt.zero_grad()
        total.backward()
        opt.step()
        final_ce.append(F.cross_entropy(trace.logits[-1], batch["label"]).item())
    assert np.mean(final_ce[-5:]) < 0.5 * np.mean(final_ce[:5])


def test_where_gradient_reaches_the_posterior(batch):
    model = small_model()
    trace = model(batch["image"], batch["proxy"])
    trace.logits[-1].logsumexp(-1).sum().backward()
    assert model.posterior.w_sal.grad.abs() > 0  # through the crops into z
    model.zero_grad()
    trace = model(batch["image"], batch["proxy"], where_grad=False)
    total, _ = loss(trace, batch["label"], batch["proxy"])
    total.backward()
    assert model.posterior.w_sal.grad is None or model.posterior.w_sal.grad.abs() == 0


def test_bad_config_and_saccades():
    with pytest.raises(ValueError, match="variance='noisy'"):
        small_model(variance="noisy")
    model = small_model()
    img = torch.zeros(2, 100, 100, dtype=torch.uint8)
    with pytest.raises(ValueError, match="n_saccades=0"):
        model(img, torch.zeros(2, 32, 32), n_saccades=0)
