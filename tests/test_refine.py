"""The posterior's local cells over the last crop (``--refine-grid``, saccade.models.refine):
where they sit, what mass they get, what imitation teaches them, and their ablation."""

import pytest
import torch

import saccade
from saccade.glimpse import scale_to_fraction
from saccade.models.refine import NO_WINDOW, local_cells_off
from saccade.train.imitation import component_of
from tests.helpers import imitate, zoom_batch, zoom_model

K = 4


@pytest.fixture(scope="module")
def ds():
    return saccade.make_dataset("zoom", split="test", size=32768, seed=0)


def refine_model(**kw):
    torch.manual_seed(0)
    return zoom_model(where_memory=True, crop_to_rnn=True, refine_grid=K, **kw).eval()


def test_local_cells_lie_over_the_last_crop_and_have_no_mass_before_it(ds):
    model = refine_model()
    batch = zoom_batch(ds)
    trace = model(batch["image"], batch["proxy"], 3)
    q, g2 = trace.where, model.config.where_grid**2
    B = len(batch["label"])
    logits = q.logits.view(3, B, -1)
    assert logits.shape[-1] == g2 + K * K
    assert (logits[0, :, g2:] == NO_WINDOW).all()  # no crop yet
    assert torch.softmax(logits[0], -1)[:, g2:].sum() == 0
    # from step 2 on, the local centres tile the last crop's window, k x k
    centres = q.centres.view(3, B, -1, 2)[1:, :, g2:]  # (2, B, k², 2)
    z = trace.z[:-1]  # the crops before
    half = scale_to_fraction(z[..., 0], **model.scales)  # (2, B)
    u = (centres - z[:, :, None, 1:]) / half[..., None, None]
    expected = torch.tensor([-0.75, -0.25, 0.25, 0.75])
    assert torch.allclose(u[..., 0].amin(-1), expected[0].expand_as(u[..., 0, 0]), atol=1e-5)
    assert torch.allclose(u[..., 0].view(2, B, K, K)[0, 0, 0], expected, atol=1e-5)
    assert torch.allclose(u[..., 1].view(2, B, K, K)[0, 0, :, 0], expected, atol=1e-5)
    # the cell map the app draws folds the local mass onto the proxy's cells: still a distribution
    assert torch.allclose(trace.cell_probs.flatten(2).sum(-1), torch.ones(3, B), atol=1e-5)


def test_a_strong_local_gate_makes_the_next_crop_refine_inside_the_last(ds):
    model = refine_model()
    with torch.no_grad():
        model.posterior.refine.gate.bias.fill_(100.0)
    batch = zoom_batch(ds)
    trace = model(batch["image"], batch["proxy"], 3)
    half = scale_to_fraction(trace.z[:, :, 0], **model.scales)  # (T, B)
    inside = (trace.z[1:, :, 1:] - trace.z[:-1, :, 1:]).abs() < half[:-1, :, None]
    assert inside.all()
    # masked (the ablation), the same weights jump among the proxy's cells instead
    with local_cells_off(model):
        off = model(batch["image"], batch["proxy"], 3)
    assert model.posterior.refine.enabled  # restored
    assert not torch.allclose(off.z[1:], trace.z[1:])
    assert (off.where.logits.view(3, 4, -1)[:, :, -K * K :] == NO_WINDOW).all()


def test_component_of_a_target_inside_the_last_window_is_a_local_cell():
    model = refine_model()
    g2 = model.config.where_grid**2
    s = 0.0
    half = float(scale_to_fraction(torch.tensor(s), **model.scales))
    last = torch.tensor([[s, 0.1, -0.2]] * 3)
    z = torch.tensor(
        [
            [-1.0, 0.1 + 0.9 * half, -0.2 - 0.9 * half],  # top right of the window
            [-1.0, 0.1 + 1.5 * half, -0.2],  # outside it
            [-1.0, 0.1, -0.2],  # at its centre
        ]
    )
    got = component_of(model, z, last)
    assert got[0] == g2 + 0 * K + (K - 1)  # row 0, column k - 1
    assert got[1] == model._cell_of(z[1:2])[0]
    assert got[2] == g2 + (K // 2) * K + K // 2
    nan = torch.full_like(last, float("nan"))
    assert torch.equal(component_of(model, z, nan), model._cell_of(z))


def test_imitation_teaches_the_local_cells_to_zoom_on_the_ring(ds):
    """Teacher-forced imitation steps raise the likelihood of the teacher's z, and the
    local head's weights are what moves (it is the only part that sees the crop's layout)."""
    model = refine_model()
    model.train()
    before = {k: v.clone() for k, v in model.posterior.refine.state_dict().items()}
    first, terms = imitate(model, zoom_batch(ds), 12)
    assert terms["imitation"] < first["imitation"] - 1.0
    moved = [
        k for k, v in model.posterior.refine.state_dict().items() if not torch.equal(v, before[k])
    ]
    assert any(k.startswith("head") for k in moved) and any(k.startswith("net") for k in moved)


def test_a_refine_model_saves_loads_and_runs_on_larger_and_smaller_canvases(tmp_path, ds):
    from saccade import checkpoint
    from saccade.models.vs import for_canvas

    model = refine_model()
    batch = zoom_batch(ds, 2)
    path = tmp_path / "refine"
    checkpoint.save(model, path)
    loaded = saccade.load(path).eval()
    a = model(batch["image"], batch["proxy"], 3)
    b = loaded(batch["image"], batch["proxy"], 3)
    assert torch.equal(a.z, b.z)
    big = for_canvas(loaded, 65536)
    assert big.prior.cells.out_features == big.config.where_grid**2 + K * K
    canvas = saccade.make_dataset("zoom", split="test", size=65536, seed=0)[0]
    proxy = torch.from_numpy(canvas["proxy"])[None]
    assert big([canvas["image"]], proxy, 3).z.shape == (3, 1, 3)
    # and on a smaller one: each cell merges 2 x 2 trained ones, a crop keeps its pixels
    small = for_canvas(loaded, 16384)
    assert small.config.where_grid == loaded.config.where_grid // 2
    assert small.config.proxy_size == loaded.config.proxy_size // 2
    z = torch.tensor([[0.0, 0.0, 0.0]])
    side = saccade.z_to_box(z, (32768, 32768), **loaded.scales)[0]
    half = saccade.z_to_box(z, (16384, 16384), **small.scales)[0]
    assert half[2] - half[0] == pytest.approx(side[2] - side[0])
    p = small.config.proxy_size
    canvas = saccade.make_dataset("zoom", split="test", size=16384, seed=0, proxy_size=p)[0]
    proxy = torch.from_numpy(canvas["proxy"])[None]
    assert small([canvas["image"]], proxy, 3).cell_probs.shape[-1] == small.config.where_grid


def test_evaluate_masks_the_local_cells_for_proxy_cells_and_refuses_without_them():
    from saccade.evaluate import evaluate

    model = refine_model()
    with torch.no_grad():  # the local cells hold the mass after the first crop
        model.posterior.refine.gate.bias.fill_(100.0)
    ds32 = saccade.make_dataset("zoom", split="test", size=32768, seed=0)
    on = evaluate(model, n=4, noise_levels=[0.0], dataset=ds32, policy="learnt")
    off = evaluate(model, n=4, noise_levels=[0.0], dataset=ds32, policy="proxy-cells")
    assert off["policy"] == "proxy-cells" and on["policy"] == "learnt"
    assert model.posterior.refine.enabled
    # the spread of the crop centre that evaluate reports: the same before any crop, then
    # within the last crop's window with the local cells, over the proxy's cells without them
    s_on, s_off = (r["sigma"]["0.0"]["median_per_step"] for r in (on, off))
    assert s_on[0] == pytest.approx(s_off[0])
    assert all(b > 2 * a for a, b in zip(s_on[1:], s_off[1:], strict=True)), (s_on, s_off)
    plain = zoom_model()
    with pytest.raises(ValueError, match="refine-grid"):
        evaluate(plain, n=2, noise_levels=[0.0], dataset=ds32, policy="proxy-cells")


def test_refine_grid_is_checked():
    from saccade.models.vs import ModelConfig

    with pytest.raises(ValueError, match="refine_grid"):
        ModelConfig(refine_grid=-1)
    with pytest.raises(ValueError, match="find_candidates"):
        ModelConfig(refine_grid=4, find_candidates=8, pooling="evidence")
