"""How well does a Megapixel MNIST proxy tell a digit from a noise stroke? (docs/results.md)

Each ink blob of N training canvases (``saccade.evaluate.metrics.ink_blobs``: a connected
component of the canvas of at least 31 pixels) becomes the proxy patch around its centre,
labelled "digit" when a digit's centre lies within 14 px; a small MLP (128 hidden units,
class-weighted BCE, 300 full-batch Adam steps) is fit on 70% of the patches and its held-out AUC printed (0.5: no information).
This reads ground-truth boxes: it measures the proxy, and trains nothing that is shipped.

    PYTHONPATH=. python scripts/proxy_blobs.py PROXY_SIDE [N]   # e.g. 180, 375; N = 300
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

from saccade.data import make_dataset
from saccade.evaluate.metrics import ink_blobs


def patches(proxy_side: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    ds = make_dataset("megapixel", split="train", size=1500, proxy_size=proxy_side, length=n)
    f = proxy_side / 1500
    half = max(3, int(round(20 * f)))  # a 40 px window of the canvas
    xs, ys = [], []
    for i in range(n):
        s = ds[i]
        proxy = np.pad(s["proxy"], half)
        centres, is_digit = ink_blobs(s["image"], s["boxes"])
        for c, digit in zip(centres, is_digit, strict=True):
            x, y = int(c[0] * f) + half, int(c[1] * f) + half
            xs.append(proxy[y - half : y + half, x - half : x + half].astype(np.float32).ravel())
            ys.append(float(digit))
    return torch.tensor(np.stack(xs)), torch.tensor(ys)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    side, n = int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 300
    x, y = patches(side, n)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = order[: int(0.7 * len(x))], order[int(0.7 * len(x)) :]
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 128), torch.nn.ReLU(), torch.nn.Linear(128, 1)
    )
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    weight = (1 - y.mean()) / y.mean()
    for _ in range(300):
        opt.zero_grad()
        logit = net(x[train])[:, 0]
        F.binary_cross_entropy_with_logits(logit, y[train], pos_weight=weight).backward()
        opt.step()
    with torch.no_grad():
        score = net(x[test])[:, 0]
    pos, neg = score[y[test] == 1], score[y[test] == 0]
    auc = (pos[:, None] > neg[None]).float().mean().item()
    print(f"proxy {side}²: {len(x)} blobs, {y.mean():.1%} digits; held-out AUC {auc:.3f}")


if __name__ == "__main__":
    main()
