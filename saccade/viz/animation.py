"""Animating a figure in the browser through ``gradio.Plot``: the Play / Pause buttons and
step slider that carry a figure's frames, and the page-load JavaScript that names them.

``gradio.Plot`` hands the figure to ``Plotly.react`` and drops ``figure.frames``. So the
frames are written *into* the play button's and the slider's ``args`` (``Plotly.animate``
accepts a list of frame objects), with ``redraw=True`` so that layout shapes (the crop box)
are redrawn at every step; ``PLOTLY_FRAMES_JS`` then registers them by name so that the
slider follows Play.
"""

from __future__ import annotations

#: ``layout.meta.animation`` of a figure whose frames ``PLOTLY_FRAMES_JS`` registers by name
FRAMES_META = "saccade-frames"


def animation_controls(frames: list[dict], frame_ms: int) -> dict:
    """The layout's Play / Pause buttons and step slider, each carrying the frames as
    objects (``gradio.Plot`` drops ``figure.frames``), the slider at the last step."""
    last = len(frames) - 1
    animate_opts = {
        "frame": {"duration": frame_ms, "redraw": True},
        "transition": {"duration": 0},
        "mode": "immediate",
        "fromcurrent": False,
    }
    step_opts = {
        "frame": {"duration": 0, "redraw": True},
        "transition": {"duration": 0},
        "mode": "immediate",
    }
    return {
        "updatemenus": [
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "y": 0.0,
                "xanchor": "left",
                "yanchor": "top",
                "pad": {"t": 8, "r": 8},
                "showactive": False,
                "buttons": [
                    {"label": "▶ Play", "method": "animate", "args": [frames, animate_opts]},
                    {
                        "label": "❚❚ Pause",
                        "method": "animate",
                        "args": [[None], {"frame": {"duration": 0}, "mode": "immediate"}],
                    },
                ],
            }
        ],
        "sliders": [
            {
                "active": last,
                # right of the Play / Pause buttons (about 150 px), its "step t" label at its
                # right end, where the buttons never cover it in a narrow plot
                "x": 0.3,
                "len": 0.7,
                "y": 0.0,
                "yanchor": "top",
                "pad": {"t": 8},
                "currentvalue": {"prefix": "step ", "xanchor": "right"},
                "steps": [
                    {"label": str(t + 1), "method": "animate", "args": [[frames[t]], step_opts]}
                    for t in range(len(frames))
                ],
            }
        ],
    }


#: Page-load JavaScript (``launch(js=...)``) that makes the trajectory's slider follow Play.
#:
#: Why: a plotly slider moves with an animation only through its command observer
#: (plotly.js src/plots/command.js, ``computeAnimateBindings``), which binds when every
#: step's ``args[0]`` is a one-element list holding a frame *name*; it then watches
#: ``_fullLayout._currentFrame``, which ``Plotly.animate`` sets only for frames it looked up
#: by name (frames given as objects leave it null). ``gradio.Plot`` calls ``Plotly.react``
#: without ``figure.frames``, so no frame has a name in the browser, and the figure carries
#: its frames as objects in the Play button's and the steps' args (that works, but the
#: slider stays where it was during Play).
#:
#: What: whenever a plot whose ``layout.meta.animation`` is ``FRAMES_META`` still has frame
#: objects in its Play button, register them with ``Plotly.addFrames`` (a frame of the same
#: name is replaced) and ``Plotly.relayout`` the Play button and the slider steps to use the
#: names. The figure works without this script (as before: Play and the slider animate; the
#: slider just does not follow Play). Plotly is ``window.Plotly`` once gradio has loaded it.
PLOTLY_FRAMES_JS = """
() => {
  const META = "__META__";
  const seen = new WeakSet();
  const enhance = (gd) => {
    const P = window.Plotly, lay = gd.layout;
    if (!P || !lay || seen.has(lay) || !lay.meta || lay.meta.animation !== META) return;
    const play = ((lay.updatemenus || [])[0] || {}).buttons;
    const steps = ((lay.sliders || [])[0] || {}).steps;
    if (!play || !steps || !play[0] || !Array.isArray(play[0].args)) return;
    const frames = play[0].args[0];
    if (!Array.isArray(frames) || !frames.length || typeof frames[0] !== "object") return;
    seen.add(lay);
    const names = frames.map((f) => f.name);
    const update = {"updatemenus[0].buttons[0].args": [names, play[0].args[1]]};
    steps.forEach((s, i) => {
      update["sliders[0].steps[" + i + "].args"] = [[names[i]], s.args[1]];
    });
    P.addFrames(gd, frames)
      .then(() => P.relayout(gd, update))
      .catch((e) => console.warn("saccade: named frames failed", e));
  };
  let queued = false;
  const scan = () => {
    queued = false;
    document.querySelectorAll(".js-plotly-plot").forEach(enhance);
  };
  new MutationObserver(() => {
    if (!queued) { queued = true; requestAnimationFrame(scan); }
  }).observe(document.body, {childList: true, subtree: true});
  scan();
}
""".replace("__META__", FRAMES_META)
