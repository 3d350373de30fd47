"""The models: variational saccading (``saccade.models.vs``, "vs") and the baselines it is
measured against ("resnet18-full", "resnet18-grid", "resnet18-proxy", "ram"), each one file,
all behind ``saccade.models.registry``."""

from .registry import Output, create_model, model_class, model_names, register_model, settings_of

__all__ = ["Output", "create_model", "model_class", "model_names", "register_model", "settings_of"]
