"""The runtime: run a bundle on camera frames. What a Jetson installs; never imports TensorFlow.

    from runtime import Model, open_source, stream

    with Model("bundles/pilotnet") as model, open_source("csi://0") as camera:
        for frame, result in stream(model, camera):   # threaded; from a camera the newest frame wins
            print(result["steering"], "%.1f ms" % frame.latency_ms)

`python -m runtime run BUNDLE --source URI` is the same loop with outputs and statistics (run()).
"""

from .bundle import Bundle, BundleError, load as load_bundle
from .errors import UserError
from .model import Model
from .networks import Networks
from .outputs import Output, open_output, open_outputs
from .pipeline import run, stream
from .sources import open_source
from . import sim, vehicle  # noqa: E402,F401  the wings: synthetic://, udp://, serial:// and ros2:// (registered)

__all__ = ["Bundle", "BundleError", "Model", "Networks", "Output", "UserError", "load_bundle", "open_output",
           "open_outputs", "open_source", "run", "stream"]
