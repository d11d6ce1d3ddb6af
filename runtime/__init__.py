"""The runtime: run a bundle on camera frames. What a Jetson installs; never imports TensorFlow.

    from runtime import Model, open_source, open_outputs, run

    with Model("bundles/pilotnet") as model, open_source("synthetic://road") as source:
        for frame in source:
            result = model(frame.image)          # {'steering': 0.12, ...}

`python -m runtime run BUNDLE --source URI` is the same loop with outputs and statistics.
"""

from .bundle import Bundle, BundleError, load as load_bundle
from .errors import UserError
from .model import Model
from .outputs import open_outputs
from .pipeline import run
from .sources import open_source

__all__ = ["Bundle", "BundleError", "Model", "UserError", "load_bundle", "open_outputs", "open_source", "run"]
