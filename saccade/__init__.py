"""saccade: Variational Saccading (Ramapuram et al., BMVC 2019) in PyTorch.

A model looks at a cheap low-resolution proxy of a huge image, proposes where to look with a
variational recurrent network, takes a few small crops of the full-resolution image through a
differentiable glimpse, and classifies from those crops.
"""

from .checkpoint import list_checkpoints, load, save
from .data import make_dataset
from .data.proxy import make_proxy
from .data.slide import Slide
from .data.slide_pyramid import SlidePyramid
from .glimpse import Pyramid, box_to_z, glimpse, z_to_box
from .infer import Prediction, predict
from .models.vs import ModelConfig, VariationalSaccader

__version__ = "0.1.0"

__all__ = [
    "ModelConfig",
    "Prediction",
    "Pyramid",
    "Slide",
    "SlidePyramid",
    "VariationalSaccader",
    "box_to_z",
    "glimpse",
    "list_checkpoints",
    "load",
    "make_dataset",
    "make_proxy",
    "predict",
    "save",
    "z_to_box",
]
