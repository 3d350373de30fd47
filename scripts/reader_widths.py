"""What a wider crop encoder costs: the VS training step (forward, loss, backward, AdamW) at
batch 64 on cluttered sum, T = 4, for crop encoder widths 16 (shipped), 24 and 32, timed in
turns so that the machine's load falls on all alike. Issue 26 allows the step to grow by at
most 1.5x; docs/results.md quotes this script's output.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/reader_widths.py [ROUNDS]
"""

import dataclasses
import statistics
import sys
import time

import torch

import saccade
from saccade.bench.timing import step_fns
from saccade.models.registry import create_model
from saccade.train.loop import collate

WIDTHS = (16, 24, 32)


def main() -> None:
    torch.set_num_threads(1)
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    shipped = saccade.load("checkpoints/cluttered-sum-learnt")
    ds = saccade.make_dataset("cluttered", task="sum", split="train")
    batch = collate([ds[i] for i in range(64)])
    steps = {}
    for w in WIDTHS:
        torch.manual_seed(0)
        model = create_model("vs", dataclasses.replace(shipped.config, crop_width=w))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        steps[w] = step_fns(model, opt, batch, torch.device("cpu"))[0]
        steps[w]()  # warm-up
    times = {w: [] for w in WIDTHS}
    for _ in range(rounds):
        for w in WIDTHS:
            start = time.perf_counter()
            steps[w]()
            times[w].append(time.perf_counter() - start)
    base = statistics.median(times[16])
    for w in WIDTHS:
        ms = 1e3 * statistics.median(times[w])
        print(
            f"crop_width {w}: {ms:.0f} ms per step of 64 (median of {rounds}), {ms / 1e3 / base:.2f}x"
        )


if __name__ == "__main__":
    main()
