"""saccade's Gradio app: see where a Variational Saccading model looks, compare learnt and
fixed posterior variance, train a small model, read the results.

    python app.py                 # http://127.0.0.1:7860, offline, models from checkpoints/
    python app.py --help          # --host, --port, --checkpoints, --runs, --no-train, --images

The entry point the Space runs; the app itself is the package ``saccade/app/``.
"""

from saccade.app import App, build_demo, launch, main  # noqa: F401

if __name__ == "__main__":
    main()
