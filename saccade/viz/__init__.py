"""Every figure, as pure functions from arrays to plotly figures; the app only shows them.

- ``trajectory``: the crop trajectory over the image, animated, with the posterior per step;
- ``panels``: the per-prediction panels (σ, proxy, class probabilities, crops, coverage);
- ``results``: training curves, the evaluations' plots and the paper's comparison figures;
- ``poster``: the seed poster's two figures from training logs, with their numbers;
- ``benchmark``: the benchmark's time and memory per image, its headline table and chart;
- ``animation``: the Play button, the step slider and the JavaScript that names the frames;
- ``images``: downscaling, enlarging and encoding images for the browser;
- ``gif``: the exported trajectory as an animated GIF for a slide (``slide_gif``);
- ``zoom_chain``: the crop chain of a large image drawn nested, one panel per step;
- ``canvas_side``: accuracy against canvas side on the zoom benchmark, VS and the baselines.

Conventions: an image is an (S, S) uint8 array; boxes are (T, 4) or (n, 4) arrays of
x0, y0, x1, y1 in full-resolution pixels; z = (scale, x, y) as in ``saccade.glimpse``.
Nothing here loads a model or touches the file system except ``load_results`` (which reads
the JSON that ``saccade.evaluate`` and ``saccade.bench`` write).
"""

from .animation import FRAMES_META, PLOTLY_FRAMES_JS
from .benchmark import PALETTE, bench_figure, bench_rows, headline_figure, headline_table
from .images import BACKGROUND_SIDE, channels_last, downscale, enlarge, png_data_uri
from .panels import (
    COORDS,
    coverage_markdown,
    gallery_items,
    gallery_pairs,
    label_dict,
    outside_share,
    placeholder_figure,
    probs_figure,
    proxy_figure,
    sigma_figure,
)
from .poster import learnt_fixed_figure, learnt_fixed_verdict, noisy_proxy_figure
from .results import (
    EVAL_COLUMNS,
    POLICY_COLOURS,
    SACCADE_COLOURS,
    VARIANCE_DASH,
    ablation_figure,
    eval_rows,
    load_results,
    localisation_figure,
    noise_figure,
    noise_train_figure,
    posterior_samples_figure,
    saccades_figure,
    training_figure,
)
from .trajectory import HEAT_COLOURS, SIGMA_COLOUR, STEP_COLOUR, TRUTH_COLOURS, trajectory_figure
from .zoom_chain import ChainStep, chain_steps, read_level, zoom_chain_figure

__all__ = [
    "BACKGROUND_SIDE",
    "ChainStep",
    "COORDS",
    "EVAL_COLUMNS",
    "FRAMES_META",
    "HEAT_COLOURS",
    "PALETTE",
    "PLOTLY_FRAMES_JS",
    "POLICY_COLOURS",
    "SACCADE_COLOURS",
    "SIGMA_COLOUR",
    "STEP_COLOUR",
    "TRUTH_COLOURS",
    "VARIANCE_DASH",
    "ablation_figure",
    "bench_figure",
    "bench_rows",
    "chain_steps",
    "channels_last",
    "coverage_markdown",
    "downscale",
    "enlarge",
    "eval_rows",
    "gallery_items",
    "gallery_pairs",
    "headline_figure",
    "headline_table",
    "label_dict",
    "learnt_fixed_figure",
    "learnt_fixed_verdict",
    "load_results",
    "localisation_figure",
    "noise_figure",
    "noise_train_figure",
    "noisy_proxy_figure",
    "outside_share",
    "placeholder_figure",
    "png_data_uri",
    "posterior_samples_figure",
    "probs_figure",
    "proxy_figure",
    "read_level",
    "saccades_figure",
    "sigma_figure",
    "training_figure",
    "trajectory_figure",
    "zoom_chain_figure",
]
