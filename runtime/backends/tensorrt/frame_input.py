"""Preprocessing as TensorRT layers in front of the network (issue 30, on the GPU): the engine takes the
camera's uint8 frame (1 x H x W x 3, BGR as OpenCV gives it) and crops, area-resizes, converts colour and scales
itself, for one frame size (engines are built per camera size).

Layers, after the ONNX parser has built the network (the board has no `onnx` package to edit the model): a
UINT8 input, a cast to FLOAT (TensorRT converts uint8 only to and from float and half), a slice (the crop), a
shuffle to 3 x h x w planes, the area resize as two MatMuls with constant weights (rows: h x ch, then columns:
cw x w; ONNX's Resize has no area mode), a ROUND (half to even, as the CPU path rounds its uint8 result), the
colour map and scale as a 3 -> C MatMul plus a bias, and a shuffle to the network's layout; the network's own
input is then replaced by the result in every layer that read it, and removed. Names as NVIDIA's Python bindings
8.6.1, 10.3 and 11.4 spell them (add_input, add_cast, add_slice, add_shuffle, add_constant, add_matrix_multiply,
MatrixOperation.NONE, add_unary with UnaryOperation.ROUND, add_elementwise with ElementWiseOperation.SUM,
ILayer.set_input, remove_tensor; where precision is a builder flag also ILayer.precision and set_output_type).
frame_weights and reference() are the same computation in numpy, to check it against the CPU path where no GPU
is; unsupported() says in one line why a contract or frame size stays on the CPU. The engine build
(build.py, `runtime engine --frame-size WxH`) calls add_frame_input after the ONNX parse.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...preprocess import _COLORS, crop_box

FRAME_INPUT = "frame"

FrameWeights = namedtuple("FrameWeights", "frame_hw box rows cols colour bias layout out_hwc")


def area_matrix(n_in, n_out):
    """The n_out x n_in weights of an area resize along one axis: each output's box [i * n_in / n_out, (i + 1) *
    n_in / n_out) and the share of every input pixel in it, divided by the box's length (exact, float64)."""
    edges = np.arange(n_out + 1) * (n_in / float(n_out))
    left, right = edges[:-1, None], edges[1:, None]
    pixel = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(right, pixel + 1) - np.maximum(left, pixel), 0, None)
    return overlap / (n_in / float(n_out))


def unsupported(preprocess, frame_wh):
    """Why frames of frame_wh (width, height) cannot be preprocessed by layers for this contract, in one line; None
    where they can. Only an area downscale is built (the weights are exact: the CPU path's tensor within one uint8
    step); a linear resize would have to copy OpenCV's fixed-point INTER_LINEAR bit for bit, nearest is not done,
    and OpenCV's INTER_AREA upscale is a bilinear of its own: those stay on the CPU."""
    resize = preprocess["resize"]
    how = resize.get("interpolation", "linear")
    if how != "area":
        return ("the bundle's resize is %s: only an area resize is built into the engine (a %s resize stays on the "
                "CPU)" % (how, how))
    x0, y0, x1, y1 = crop_box(preprocess.get("crop"), int(frame_wh[0]), int(frame_wh[1]))
    w, h = int(resize["width"]), int(resize["height"])
    if x1 - x0 < w or y1 - y0 < h:
        return ("the crop of a %dx%d frame (%dx%d) is smaller than the network's %dx%d input: an area upscale stays "
                "on the CPU" % (frame_wh[0], frame_wh[1], x1 - x0, y1 - y0, w, h))
    return None


def frame_weights(preprocess, input_spec, frame_hw) -> FrameWeights:
    """The constant weights for frames of frame_hw (height, width): the crop's box, rows (h x ch), cols (cw x w),
    colour (C x 3) and bias (C), the layout and the network input's (h, w, C). Only where unsupported() says
    nothing (ValueError otherwise)."""
    why = unsupported(preprocess, (frame_hw[1], frame_hw[0]))
    if why:
        raise ValueError(why)
    resize = preprocess["resize"]
    w, h = int(resize["width"]), int(resize["height"])
    box = crop_box(preprocess.get("crop"), frame_hw[1], frame_hw[0])
    matrix, bias = _COLORS[preprocess["color"]]
    channels = len(matrix)
    scale = np.broadcast_to(np.asarray(preprocess["scale"], np.float64), (channels,))
    offset = np.broadcast_to(np.asarray(preprocess["offset"], np.float64), (channels,))
    return FrameWeights(tuple(frame_hw), box, area_matrix(box[3] - box[1], h).astype(np.float32),
                        area_matrix(box[2] - box[0], w).T.astype(np.float32),
                        (matrix * scale[:, None]).astype(np.float32), (bias * scale + offset).astype(np.float32),
                        input_spec["layout"], (h, w, channels))


def reference(frame, fw: FrameWeights) -> np.ndarray:
    """The layers' computation in numpy, float32: a (1, ...) network input from one uint8 H x W x 3 frame."""
    x0, y0, x1, y1 = fw.box
    planes = frame[y0:y1, x0:x1].astype(np.float32).transpose(2, 0, 1)  # 3 x ch x cw
    small = np.rint(np.matmul(np.matmul(fw.rows[None], planes), fw.cols[None]))  # 3 x h x w
    h, w, c = fw.out_hwc
    mapped = np.matmul(fw.colour, small.reshape(3, h * w)) + fw.bias[:, None]  # C x (h w)
    return _layout(mapped.reshape(c, h, w), fw.layout)


def _layout(chw, layout):
    if layout == "NCHW":
        return chw[None]
    hwc = chw.transpose(1, 2, 0)
    return hwc.reshape(1, -1) if layout == "flat" else hwc[None]


def add_frame_input(trt, network, fw: FrameWeights, keep: list, name=FRAME_INPUT):
    """Puts the layers in front of the parsed network (module docstring); returns the new input tensor. The
    weights' arrays go into `keep`, which the caller holds until the engine is built: trt.Weights copies
    nothing, and TensorRT reads them at build time, not when added (the real bindings' network takes no
    attributes to hold them, and a freed array would build wrong constants into the engine silently). Where
    precision is a builder flag (8.5-10.x) every layer is pinned to FP32, so an FP16 engine does not round the
    area sums in half precision (the build sets OBEY_PRECISION_CONSTRAINTS); a network input of HALF (an fp16
    variant exported without float32 IO) is given a cast to it at the end."""
    old = network.get_input(0)
    H, W = fw.frame_hw
    x0, y0, x1, y1 = fw.box
    h, w, c = fw.out_hwc
    out = _Pinned(trt)
    frame = network.add_input(name, trt.DataType.UINT8, (1, H, W, 3))
    t = _cast(trt, network, frame, trt.DataType.FLOAT)
    t = out(network.add_slice(t, (0, y0, x0, 0), (1, y1 - y0, x1 - x0, 3), (1, 1, 1, 1)))
    t = _shuffle(out, network, t, (0, 3, 1, 2), (3, y1 - y0, x1 - x0))
    t = _matmul(trt, out, network, _constant(out, network, fw.rows[None], keep), t)
    t = _matmul(trt, out, network, t, _constant(out, network, fw.cols[None], keep))
    t = out(network.add_unary(t, trt.UnaryOperation.ROUND))
    t = _shuffle(out, network, t, None, (3, h * w))
    t = _matmul(trt, out, network, _constant(out, network, fw.colour, keep), t)
    t = out(network.add_elementwise(t, _constant(out, network, fw.bias.reshape(c, 1), keep),
                                    trt.ElementWiseOperation.SUM))
    if fw.layout == "NCHW":
        t = _shuffle(out, network, t, None, (1, c, h, w))
    else:
        t = _shuffle(out, network, _shuffle(out, network, t, None, (c, h, w)), (1, 2, 0), (1, h, w, c) if
                     fw.layout == "NHWC" else (1, h * w * c))
    if getattr(old, "dtype", None) == trt.DataType.HALF:
        t = _cast(trt, network, t, trt.DataType.HALF)
    _rewire(network, old, t)
    return frame


class _Pinned:
    """A layer's output, the layer pinned to FP32 where precision is a builder flag (layer.precision and its
    output type: 8.5-10.x; TensorRT 11's strongly typed networks take the types as they are)."""

    def __init__(self, trt):
        self.float = trt.DataType.FLOAT if hasattr(trt.BuilderFlag, "FP16") else None

    def __call__(self, layer):
        if self.float is not None:
            layer.precision = self.float
            layer.set_output_type(0, self.float)
        return layer.get_output(0)


def _cast(trt, network, tensor, to):
    """uint8 -> float (or float -> half): add_cast where the bindings have it (8.6.1, 10.x, 11.x), else an
    identity layer told its output type (8.5)."""
    if hasattr(network, "add_cast"):
        return network.add_cast(tensor, to).get_output(0)
    layer = network.add_identity(tensor)
    layer.set_output_type(0, to)
    return layer.get_output(0)


def _shuffle(out, network, tensor, transpose, shape):
    layer = network.add_shuffle(tensor)
    if transpose is not None:
        layer.first_transpose = transpose
    layer.reshape_dims = shape
    return out(layer)


def _constant(out, network, array, keep):
    array = np.ascontiguousarray(array, dtype=np.float32)
    keep.append(array)
    return out(network.add_constant(array.shape, array))


def _matmul(trt, out, network, a, b):
    none = trt.MatrixOperation.NONE
    return out(network.add_matrix_multiply(a, none, b, none))


def _rewire(network, old, new):
    """Every layer that read the network's own input reads `new` instead; the old input is removed."""
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        for j in range(layer.num_inputs):
            tensor = layer.get_input(j)
            if tensor is not None and tensor.name == old.name:
                layer.set_input(j, new)
    network.remove_tensor(old)
