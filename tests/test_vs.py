"""The VRNN: shapes, the posterior family and its KL, the loss terms, the variance modes, and
that it learns."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import saccade
from saccade.models.objective import LossWeights, loss
from saccade.models.posterior import WhereDistribution, where_kl
from saccade.models.vs import ModelConfig, VariationalSaccader
from saccade.train.loop import collate
from tests.helpers import small_model


@pytest.fixture(scope="module")
def batch():
    ds = saccade.make_dataset("cluttered", task="sum", split="train")
    return collate([ds[i] for i in range(8)])


def test_output_shapes(batch):
    model = small_model()
    trace = model(batch["image"], batch["proxy"], n_saccades=5)
    assert trace.logits.shape == (5, 8, 19)
    for name in ("mu", "sigma", "z"):
        assert getattr(trace, name).shape == (5, 8, 3)
    for name in ("kl", "log_q_cell"):
        assert getattr(trace, name).shape == (5, 8)
    g = model.config.where_grid
    assert trace.cell_probs.shape == (5, 8, g, g)
    assert torch.allclose(trace.cell_probs.sum((-1, -2)), torch.ones(5, 8), atol=1e-5)
    assert trace.crops.shape == (5, 8, 32, 32)
    assert trace.recon.shape == (5, 8, 32, 32)
    assert (trace.sigma > 0).all() and (trace.kl >= -1e-5).all()
    # the posterior's mode lies inside the image
    assert trace.mu[..., 1:].abs().max() < 1


def test_the_crop_goes_where_the_posterior_puts_most_mass(batch):
    """No rule overrides the network: at evaluation every crop centre lies in the cell of
    highest posterior probability, also when that cell is forced by the network's weights."""
    model = small_model().eval()
    g = model.config.where_grid
    for forced in (None, 5 * g + 2):
        if forced is not None:
            with torch.no_grad():
                model.posterior.cell_head.bias[0] = 0.0
                model.posterior.w_sal.zero_()
                model.posterior.cell_head.weight.zero_()
            # a large score on one cell through the saliency weight of a one-hot proxy
            proxy = torch.zeros_like(batch["proxy"])
            side = proxy.shape[-1] // g
            proxy[:, 5 * side : 6 * side, 2 * side : 3 * side] = 1.0
            with torch.no_grad():
                model.posterior.w_sal.fill_(20.0)
        else:
            proxy = batch["proxy"]
        trace = model(batch["image"], proxy)
        best = trace.cell_probs.flatten(2).argmax(-1)  # (T, B)
        col = ((trace.z[..., 1] + 1) / 2 * g).floor().long()
        row = ((trace.z[..., 2] + 1) / 2 * g).floor().long()
        assert torch.equal(row * g + col, best)
        if forced is not None:
            assert (best == forced).all()


def test_eval_uses_the_mode_and_training_samples(batch):
    model = small_model().eval()
    trace = model(batch["image"], batch["proxy"])
    assert torch.equal(trace.z, trace.mu) and not trace.sampled
    sampled = model(batch["image"], batch["proxy"], sample=True)
    assert sampled.sampled and not torch.allclose(sampled.z, sampled.mu)


def test_fixed_sigma_is_constant_and_learnt_varies(batch):
    fixed = small_model(variance="fixed", fixed_sigma=0.07).eval()
    s = fixed(batch["image"], batch["proxy"]).sigma
    assert torch.allclose(s[..., 0], torch.full_like(s[..., 0], 0.07))  # the scale's σ
    assert (s[..., 1:] >= 0.07 - 1e-6).all()  # the offset's σ plus the cells' spread
    learnt = small_model(variance="learnt")
    opt = torch.optim.AdamW(learnt.parameters(), lr=3e-3)
    for _ in range(5):  # a few steps so that the σ heads depart from their uniform init
        trace = learnt(batch["image"], batch["proxy"])
        total, _ = loss(trace, batch["label"], batch["proxy"])
        opt.zero_grad()
        total.backward()
        opt.step()
    s = learnt.eval()(batch["image"], batch["proxy"]).sigma
    assert s.std(dim=0).max() > 1e-4  # varies across steps
    assert s.std(dim=1).max() > 1e-4  # and across images


def test_max_sigma_bounds_the_learnt_sigma_that_predict_returns(batch):
    """With ``max_sigma`` the σ that ``predict`` returns stays below it however the heads
    are pushed (here: their biases set to a σ' of 20, 400 times the bound), and without it
    the same heads give σ' itself."""
    bounded = small_model(variance="learnt", max_sigma=0.05, seed=3)
    free = small_model(variance="learnt", seed=3)
    for model in (bounded, free):
        with torch.no_grad():
            model.posterior.cell_head.bias[3:] = np.log(20.0)
            model.posterior.scale.bias[1] = np.log(20.0)
    image = batch["image"][0].numpy()
    out = saccade.predict(bounded.eval(), image, n_saccades=3)
    assert (out.sigma[:, 0] <= 0.05).all() and out.sigma[:, 0].min() > 0.049
    assert (out.offset_sigma <= 0.05).all()
    assert saccade.predict(free.eval(), image, n_saccades=3).sigma[:, 0].min() > 19
    with pytest.raises(ValueError, match="max_sigma=0.0005 must be greater than min_sigma"):
        small_model(max_sigma=5e-4)


def _random_where(g: int, cells: int, generator) -> WhereDistribution:
    B = 4
    return WhereDistribution(
        logits=torch.randn(B, g * g, generator=generator),
        offset_mu=0.1 * torch.randn(B, cells, 2, generator=generator),
        offset_sigma=torch.rand(B, cells, 2, generator=generator) * 0.1 + 0.02,
        scale_mu=torch.randn(B, generator=generator) * 0.3,
        scale_sigma=torch.rand(B, generator=generator) * 0.2 + 0.05,
    )


def test_kl_matches_torch_distributions_and_a_monte_carlo_estimate():
    gen = torch.Generator().manual_seed(0)
    g = 3
    q, p = _random_where(g, g * g, gen), _random_where(g, 1, gen)
    kl = where_kl(q, p)
    # the cell part and the scale part against torch.distributions
    D = torch.distributions
    cell = D.kl_divergence(D.Categorical(logits=q.logits), D.Categorical(logits=p.logits))
    scale = D.kl_divergence(
        D.Normal(q.scale_mu, q.scale_sigma), D.Normal(p.scale_mu, p.scale_sigma)
    )
    off = D.kl_divergence(
        D.Normal(q.offset_mu, q.offset_sigma), D.Normal(p.offset_mu, p.offset_sigma)
    ).sum(-1)
    pi = torch.softmax(q.logits, -1)
    assert torch.allclose(kl, cell + (pi * off).sum(-1) + scale, atol=1e-5)
    # the whole joint KL against a Monte Carlo estimate E_q[log q(cell, δ, s) - log p(...)]
    n = 200_000
    B = q.logits.shape[0]
    cells = torch.multinomial(pi, n, replacement=True, generator=gen)  # (B, n)
    rows = torch.arange(B)[:, None]
    mq, sq = q.offset_mu[rows, cells], q.offset_sigma[rows, cells]  # (B, n, 2)
    mp, sp = p.offset_mu.expand(-1, n, -1), p.offset_sigma.expand(-1, n, -1)
    delta = mq + sq * torch.randn(mq.shape, generator=gen)
    s = q.scale_mu[:, None] + q.scale_sigma[:, None] * torch.randn(B, n, generator=gen)
    log_q = (
        F.log_softmax(q.logits, -1).gather(1, cells)
        + D.Normal(mq, sq).log_prob(delta).sum(-1)
        + D.Normal(q.scale_mu[:, None], q.scale_sigma[:, None]).log_prob(s)
    )
    log_p = (
        F.log_softmax(p.logits, -1).gather(1, cells)
        + D.Normal(mp, sp).log_prob(delta).sum(-1)
        + D.Normal(p.scale_mu[:, None], p.scale_sigma[:, None]).log_prob(s)
    )
    mc = (log_q - log_p).mean(1)
    stderr = (log_q - log_p).std(1) / n**0.5
    assert ((mc - kl).abs() < 4 * stderr + 1e-3).all(), (mc, kl, stderr)


def test_location_sigma_is_the_mixture_std():
    gen = torch.Generator().manual_seed(1)
    g = 4
    q = _random_where(g, g * g, gen)
    centres = (2 * torch.arange(g, dtype=torch.float32) + 1) / g - 1
    xy = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), -1).reshape(-1, 2)
    mean, std = q.location_moments(xy)
    n = 200_000
    cells = torch.multinomial(torch.softmax(q.logits, -1), n, replacement=True, generator=gen)
    rows = torch.arange(4)[:, None]
    draws = (
        xy[cells]
        + q.offset_mu[rows, cells]
        + q.offset_sigma[rows, cells] * torch.randn(4, n, 2, generator=gen)
    )
    assert torch.allclose(draws.mean(1), mean, atol=5e-3)
    assert torch.allclose(draws.std(1), std, atol=5e-3)


def test_loss_terms_are_logged_and_add_up(batch):
    model = small_model()
    trace = model(batch["image"], batch["proxy"])
    w = LossWeights(beta_recon=0.5, beta_kl=0.25, cell_weight=1.0)
    total, terms = loss(trace, batch["label"], batch["proxy"], w)
    assert set(terms) == {"loss", "bound", "ce", "recon", "kl", "acc", "cell_entropy"}
    expected = terms["ce"] + 0.5 * terms["recon"] + 0.25 * terms["kl"]
    assert abs(terms["bound"] - expected) < 1e-3 * abs(expected)
    assert terms["kl"] >= 0 and terms["recon"] > 0
    # with the mode (no sample) the score-function term is absent
    model.eval()
    _, terms = loss(model(batch["image"], batch["proxy"]), batch["label"], batch["proxy"], w)
    assert terms["loss"] == terms["bound"]


def test_ce_steps_keeps_the_class_term_of_the_last_steps_only(batch):
    """--ce-steps K: the class term is the mean cross-entropy of the last K steps (1: the
    paper's bound), and the earlier steps' logits get no gradient from it."""
    model = small_model().eval()
    trace = model(batch["image"], batch["proxy"], n_saccades=5)
    trace.logits.retain_grad()
    ce_t = [F.cross_entropy(trace.logits[t], batch["label"]).item() for t in range(5)]
    w = LossWeights(beta_recon=0.0, beta_kl=0.0, cell_weight=0.0)
    for k, expected in ((0, np.mean(ce_t)), (1, ce_t[-1]), (2, np.mean(ce_t[-2:]))):
        w.ce_steps = k
        total, terms = loss(trace, batch["label"], batch["proxy"], w)
        assert terms["ce"] == pytest.approx(expected, rel=1e-5)
    w.ce_steps = 2
    total, _ = loss(trace, batch["label"], batch["proxy"], w)
    total.backward()
    grad = trace.logits.grad.abs().sum((1, 2))
    assert (grad[:3] == 0).all() and (grad[3:] > 0).all()
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="ce_steps"):
            LossWeights(ce_steps=bad)


def test_kl_cell_prior_trains_the_prior_cells_not_the_posterior_cells(batch):
    """--kl-cell prior: the loss keeps its value, but the KL's gradient no longer reaches the
    posterior's cell logits (with the cell term off they then get none at all), while the
    prior's cells still learn from it; "both" (the default) reaches both."""
    grads, values = {}, {}
    for mode in ("both", "prior"):
        model = small_model().eval()  # at the mode: the class term does not reach the cells
        trace = model(batch["image"], batch["proxy"], n_saccades=3)
        trace.where.logits.retain_grad()
        w = LossWeights(beta_recon=0.0, beta_kl=1.0, cell_weight=0.0, kl_cell=mode)
        total, values[mode] = loss(trace, batch["label"], batch["proxy"], w)
        total.backward()
        grads[mode] = (trace.where.logits.grad, model.prior.cells.weight.grad)
    assert values["prior"]["bound"] == pytest.approx(values["both"]["bound"], rel=1e-6)
    assert grads["both"][0].abs().sum() > 0
    assert grads["prior"][0] is None or grads["prior"][0].abs().sum() == 0
    assert grads["prior"][1].abs().sum() > 0
    with pytest.raises(ValueError, match="kl_cell"):
        LossWeights(kl_cell="posterior")


@pytest.mark.slow
def test_loss_falls_when_overfitting_a_tiny_set(batch):
    model = small_model()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    final_ce = []  # the class after all saccades: one crop alone cannot tell a sum
    for _ in range(60):
        trace = model(batch["image"], batch["proxy"])
        total, _ = loss(trace, batch["label"], batch["proxy"])
        opt.zero_grad()
        total.backward()
        opt.step()
        final_ce.append(F.cross_entropy(trace.logits[-1], batch["label"]).item())
    assert np.mean(final_ce[-5:]) < 0.5 * np.mean(final_ce[:5])


def test_where_gradient_reaches_the_posterior(batch):
    """The offset and the scale learn through the crop; the cell through the score-function
    term, present only when z was sampled."""
    model = small_model()
    trace = model(batch["image"], batch["proxy"])  # training mode: sampled
    trace.logits[-1].logsumexp(-1).sum().backward()  # the class term alone, through the crops
    head = model.posterior.cell_head.weight.grad
    assert head[1:3].abs().sum() > 0  # offsets
    assert model.posterior.scale.weight.grad.abs().sum() > 0  # scale
    model.zero_grad()
    no_kl = LossWeights(beta_kl=0.0)
    total, _ = loss(model(batch["image"], batch["proxy"]), batch["label"], batch["proxy"], no_kl)
    total.backward()
    assert model.posterior.cell_head.weight.grad[0].abs().sum() > 0  # the cell's score
    model.zero_grad()
    off = LossWeights(beta_kl=0.0, cell_weight=0.0)
    total, _ = loss(model(batch["image"], batch["proxy"]), batch["label"], batch["proxy"], off)
    total.backward()
    assert model.posterior.cell_head.weight.grad[0].abs().sum() == 0


def test_bad_config_and_saccades():
    with pytest.raises(ValueError, match="variance='noisy'"):
        small_model(variance="noisy")
    model = small_model()
    img = torch.zeros(2, 100, 100, dtype=torch.uint8)
    with pytest.raises(ValueError, match="n_saccades=0"):
        model(img, torch.zeros(2, 32, 32), n_saccades=0)


def test_for_canvas_keeps_crop_pixels_and_the_priors_mass():
    from saccade.models.vs import for_canvas

    ds = saccade.make_dataset("megapixel", split="test", size=300, proxy_size=36, length=2)
    cfg = ModelConfig(
        n_classes=10,
        proxy_size=36,
        where_grid=9,
        min_scale=0.1,
        max_scale=0.2,
        hidden=16,
        features=16,
        n_saccades=2,
        dataset=ds.spec.to_dict(),
    )
    torch.manual_seed(0)
    model = VariationalSaccader(cfg).eval()
    big = for_canvas(model, 600)
    assert (big.config.where_grid, big.config.proxy_size) == (18, 72)
    assert big.config.dataset["size"] == 600 and big.config.dataset["proxy_size"] == 72
    # the same z crops the same number of pixels
    z = torch.tensor([[0.3, 0.0, 0.0]])
    small_box = saccade.z_to_box(z, (300, 300), cfg.min_scale, cfg.max_scale)[0]
    big_box = saccade.z_to_box(z, (600, 600), big.config.min_scale, big.config.max_scale)[0]
    assert big_box[2] - big_box[0] == pytest.approx(small_box[2] - small_box[0])
    # the prior's mass on a trained cell is spread over the 2 x 2 cells it becomes
    h = torch.randn(3, 16)
    with torch.no_grad():
        p_small = torch.softmax(model.prior(h).logits, -1).view(3, 9, 9)
        p_big = torch.softmax(big.prior(h).logits, -1).view(3, 9, 2, 9, 2).sum((2, 4))
    torch.testing.assert_close(p_big, p_small)
    # it runs on a 600² canvas
    data = saccade.make_dataset("megapixel", split="test", size=600, proxy_size=72, length=1)
    s = data[0]
    with torch.no_grad():
        trace = big(torch.from_numpy(s["image"])[None], torch.from_numpy(s["proxy"])[None])
    assert trace.cell_probs.shape == (2, 1, 18, 18)
    with pytest.raises(ValueError, match="whole multiples"):
        for_canvas(model, 450)


def test_for_canvas_sharing_the_layout_keeps_the_proxy_grid_and_prior_and_crop_pixels():
    """layout="share" (the zoom default): at twice the side the model keeps its proxy, its
    grid and its prior, so the same proxy gives the same cell probabilities, while the same
    z crops the same pixels; a side whose largest crop would not fit is refused by name."""
    from saccade.models.vs import for_canvas

    ds = saccade.make_dataset("zoom", split="test", size=16384, proxy_size=32, length=1)
    cfg = ModelConfig(
        n_classes=10, proxy_size=32, where_grid=8, scale_space="log", min_scale=48 / 16384,
        max_scale=0.5, hidden=16, features=16, n_saccades=2, dataset=ds.spec.to_dict(),
    )  # fmt: skip
    torch.manual_seed(0)
    model = VariationalSaccader(cfg).eval()
    big = for_canvas(model, 32768, layout="share")
    assert (big.config.where_grid, big.config.proxy_size) == (8, 32)
    assert big.config.dataset["size"] == 32768 and big.config.dataset["proxy_size"] == 32
    for s in (-1.0, 0.0, 0.7):
        z = torch.tensor([[s, 0.1, -0.2]])
        small = saccade.z_to_box(z, (16384,) * 2, cfg.min_scale, cfg.max_scale, log_scale=True)
        large = saccade.z_to_box(
            z, (32768,) * 2, big.config.min_scale, big.config.max_scale, log_scale=True
        )
        assert float(large[0, 2] - large[0, 0]) == pytest.approx(float(small[0, 2] - small[0, 0]))
    h = torch.randn(3, 16)
    with torch.no_grad():
        torch.testing.assert_close(big.prior(h).logits, model.prior(h).logits)
    s = saccade.make_dataset("zoom", split="test", size=32768, proxy_size=32, length=1)[0]
    with torch.no_grad():
        trace = big(s["image"], torch.from_numpy(s["proxy"])[None])
        mine = model(s["image"], torch.from_numpy(s["proxy"])[None], n_saccades=1)
    assert trace.cell_probs.shape == (2, 1, 8, 8)
    torch.testing.assert_close(trace.cell_probs[0], mine.cell_probs[0])
    with pytest.raises(ValueError, match="layout='share' the side must be at least 8192"):
        for_canvas(model, 4096, layout="share")
    with pytest.raises(ValueError, match="layout='tiles'"):
        for_canvas(model, 32768, layout="tiles")


@pytest.mark.slow
def test_colour_model_takes_c_channels_and_trains():
    """channels=3: proxies (B, 3, p, p) and crops (B, 3, k, k) go through; the loss falls on
    a tiny colour set whose class is the colour alone (same brightness pattern); a gray
    proxy is refused with a message naming the channels."""
    from saccade.models.vs import ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(n_classes=2, channels=3, proxy_size=16, min_scale=0.3, max_scale=0.5)
    model = saccade.VariationalSaccader(config)
    assert model.proxy_encoder.conv[0].in_channels == 3
    assert model.crop_encoder.net[0].in_channels == 3
    rng = np.random.default_rng(0)
    images = np.zeros((8, 64, 64, 3), np.uint8)
    labels = torch.tensor([0, 1] * 4)
    for b in range(8):
        y, x = rng.integers(8, 40, 2)
        images[b, y : y + 16, x : x + 16, int(labels[b]) * 2] = 255  # red or blue square
    proxy = torch.from_numpy(np.stack([saccade.make_proxy(im, 16) for im in images]))
    assert proxy.shape == (8, 3, 16, 16)
    trace = model(images, proxy, n_saccades=2)
    assert trace.crops.shape == (2, 8, 3, 32, 32)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    first = None
    for _ in range(30):
        total, terms = model.loss(model(images, proxy, 2), labels, proxy)
        opt.zero_grad()
        total.backward()
        opt.step()
        first = terms["ce"] if first is None else first
    assert terms["ce"] < 0.5 * first
    with pytest.raises(ValueError, match="3 channel"):
        model(images, proxy[:, 0], 2)


def test_the_reader_teaches_the_cell_logits_where_it_finds_a_digit(batch):
    """find_candidates: in training (sampled), m candidate cells of the first step are cropped
    and read; the reader's P(digit) there is their logits' target, a gradient to the cell
    score with the score function off. Nothing of it at evaluation."""
    model = small_model(pooling="evidence", find_candidates=6)
    trace = model(batch["image"], batch["proxy"])
    T = model.config.n_saccades
    assert trace.find_log_pi.shape == trace.find_targets.shape == (T, 8, 6)
    # a candidate that a crop has covered is no longer a target
    assert (trace.find_targets[1:] <= trace.find_targets[:1] + 1e-6).all()
    assert ((trace.find_targets >= 0) & (trace.find_targets <= 1)).all()
    assert not trace.find_targets.requires_grad
    only_find = LossWeights(beta_recon=0.0, beta_kl=0.0, cell_weight=0.0)
    total, terms = loss(trace, batch["label"], batch["proxy"], only_find)
    assert terms["find"] > 0 and 0 <= terms["found"] <= 1
    total.backward()
    assert model.posterior.cell_head.weight.grad[0].abs().sum() > 0
    model.eval()
    assert model(batch["image"], batch["proxy"]).find_log_pi is None
    with pytest.raises(ValueError, match="find_candidates=4 must be 0, or > 0 with pooling"):
        small_model(find_candidates=4)


def test_find_power_raises_the_readers_targets_to_it_and_keeps_their_ranking(batch):
    """find_power γ: the targets are r^γ of the same candidates (the same draws), so their
    order is kept and the weak ones shrink most."""
    traces = []
    for power in (1.0, 3.0):
        model = small_model(pooling="evidence", find_candidates=6, find_power=power, seed=5)
        gen = torch.Generator().manual_seed(0)
        traces.append(model(batch["image"], batch["proxy"], generator=gen).find_targets)
    plain, sharp = traces
    assert torch.allclose(sharp, plain**3, atol=1e-5)
    assert (sharp <= plain + 1e-6).all() and (sharp < plain - 1e-4).any()
    with pytest.raises(ValueError, match="find_power=0 must be > 0"):
        small_model(find_power=0)


def test_first_step_is_the_forward_passes_first_posterior(batch):
    """``first_step`` (what ``saccade.train.distil`` trains) is the posterior that the first
    saccade of ``forward`` draws from: the same cell probabilities."""
    model = small_model(seed=2).eval()
    trace = model(batch["image"], batch["proxy"], n_saccades=2)
    with torch.no_grad():
        probs = torch.softmax(model.first_step(batch["proxy"]).logits, -1)
    assert torch.allclose(probs.view_as(trace.cell_probs[0]), trace.cell_probs[0], atol=1e-6)


def test_init_sigma_is_the_learnt_sigma_before_training(batch):
    """init_sigma sets where the learnt σ (offset and scale) starts: σ = min_sigma + it."""
    model = small_model(variance="learnt", init_sigma=0.01, min_sigma=1e-3).eval()
    trace = model(batch["image"], batch["proxy"], n_saccades=2)
    assert torch.allclose(trace.offset_sigma, torch.full_like(trace.offset_sigma, 0.011))
    with pytest.raises(ValueError, match="init_sigma=0 must be > 0"):
        small_model(init_sigma=0)


def test_gumbel_top_k_draws_distinct_cells_by_their_mass():
    from saccade.models.find_candidates import gumbel_top_k

    logits = torch.full((2000, 50), -30.0)
    logits[:, [3, 7, 11]] = 0.0
    cells = gumbel_top_k(logits, 3, torch.Generator().manual_seed(0))
    assert all(sorted(row) == [3, 7, 11] for row in cells.tolist())
    logits = torch.zeros(4000, 10)
    logits[:, 0] = 2.0  # e² / (e² + 9) = 45% of the first draws
    first = gumbel_top_k(logits, 1, torch.Generator().manual_seed(0))[:, 0]
    assert abs((first == 0).float().mean().item() - 0.451) < 0.03


def test_seen_margin_widens_the_covered_cells():
    z = torch.tensor([[1.0, 0.0, 0.0]])  # the largest crop at the centre
    for margin, side in ((0.0, 1), (0.5, 3)):
        model = small_model(where_grid=9, min_scale=0.15, max_scale=0.15, seen_margin=margin)
        covered = model._covered_cells(z)[0]
        assert covered.sum() == side * side and covered[4, 4] == 1


def step_by_step(model: VariationalSaccader, images, proxy, T: int):
    """A reference for the parts the forward pass runs once on all T steps (crop encoder,
    classifier, prior, decoder, KL): here one call per step, on the h_{t-1} and q_t that the
    forward pass saw (read with hooks). Returns the trace and the reference's logits
    (T, B, n_classes), recon (T, B, r, r) and KL (T, B)."""
    h_prev, qs = [], []
    hooks = [
        model.rnn.register_forward_hook(lambda m, inputs, out: h_prev.append(inputs[1][0])),
        model.posterior.register_forward_hook(lambda m, inputs, out: qs.append(out)),
    ]
    try:
        trace = model(images, proxy, T)
    finally:
        for hook in hooks:
            hook.remove()
    pooled, logits, recon, kl = None, [], [], []
    for t in range(T):
        step_logits, pooled = model.classifier.step(
            model.crop_encoder(trace.crops[t]), trace.z[t], pooled, t
        )
        logits.append(step_logits)
        recon.append(model.decoder(trace.z[t], h_prev[t]))
        kl.append(where_kl(qs[t], model.prior(h_prev[t])))
    return trace, torch.stack(logits), torch.stack(recon), torch.stack(kl)


@pytest.mark.parametrize("pooling", ["max", "evidence"])
def test_the_steps_run_at_once_match_a_step_by_step_loop(pooling):
    torch.manual_seed(0)
    config = ModelConfig(n_classes=10, crop_encoder="lenet-pool", pooling=pooling)
    model = VariationalSaccader(config).eval()
    images = torch.randint(0, 255, (3, 100, 100), dtype=torch.uint8)
    with torch.no_grad():
        trace, logits, recon, kl = step_by_step(model, images, torch.rand(3, 32, 32), 5)
    assert torch.allclose(trace.logits, logits, atol=1e-5)
    assert torch.allclose(trace.recon, recon, atol=1e-5)
    assert torch.allclose(trace.kl, kl, atol=1e-5)
