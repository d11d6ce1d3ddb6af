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
ILayer.set_input, remove_tensor). frame_weights and reference() are the same computation in numpy, to check it
against the CPU path where no GPU is.
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


def frame_weights(preprocess, input_spec, frame_hw) -> FrameWeights:
    """The constant weights for frames of frame_hw (height, width): the crop's box, rows (h x ch), cols (cw x w),
    colour (C x 3) and bias (C), the layout and the network input's (h, w, C). Area resize only where the contract
    says area; the others stay on the CPU path."""
    resize = preprocess["resize"]
    if resize.get("interpolation", "linear") != "area":
        raise ValueError("only an area resize is built as layers (the contract says %s)" % resize.get("interpolation"))
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


def add_frame_input(trt, network, fw: FrameWeights, name=FRAME_INPUT):
    """Puts the layers in front of the parsed network (module docstring); returns the new input tensor. The
    weights arrays are kept on the network object (TensorRT reads them at build time, not when added)."""
    old = network.get_input(0)
    H, W = fw.frame_hw
    x0, y0, x1, y1 = fw.box
    h, w, c = fw.out_hwc
    keep = network.__dict__.setdefault("_frame_weights", []) if hasattr(network, "__dict__") else []
    frame = network.add_input(name, trt.DataType.UINT8, (1, H, W, 3))
    t = _cast(trt, network, frame)
    t = network.add_slice(t, (0, y0, x0, 0), (1, y1 - y0, x1 - x0, 3), (1, 1, 1, 1)).get_output(0)
    t = _shuffle(network, t, (0, 3, 1, 2), (3, y1 - y0, x1 - x0))
    t = _matmul(trt, network, _constant(network, fw.rows[None], keep), t)
    t = _matmul(trt, network, t, _constant(network, fw.cols[None], keep))
    t = network.add_unary(t, trt.UnaryOperation.ROUND).get_output(0)
    t = _shuffle(network, t, None, (3, h * w))
    t = _matmul(trt, network, _constant(network, fw.colour, keep), t)
    t = network.add_elementwise(t, _constant(network, fw.bias.reshape(c, 1), keep),
                                trt.ElementWiseOperation.SUM).get_output(0)
    if fw.layout == "NCHW":
        t = _shuffle(network, t, None, (1, c, h, w))
    else:
        t = _shuffle(network, _shuffle(network, t, None, (c, h, w)), (1, 2, 0), (1, h, w, c) if
                     fw.layout == "NHWC" else (1, h * w * c))
    _rewire(network, old, t)
    return frame


def _cast(trt, network, tensor):
    """uint8 -> float: add_cast where the bindings have it (8.6.1, 10.x, 11.x), else an identity layer told its
    output type (8.5)."""
    if hasattr(network, "add_cast"):
        return network.add_cast(tensor, trt.DataType.FLOAT).get_output(0)
    layer = network.add_identity(tensor)
    layer.set_output_type(0, trt.DataType.FLOAT)
    return layer.get_output(0)


def _shuffle(network, tensor, transpose, shape):
    layer = network.add_shuffle(tensor)
    if transpose is not None:
        layer.first_transpose = transpose
    layer.reshape_dims = shape
    return layer.get_output(0)


def _constant(network, array, keep):
    array = np.ascontiguousarray(array, dtype=np.float32)
    keep.append(array)
    return network.add_constant(array.shape, array).get_output(0)


def _matmul(trt, network, a, b):
    none = trt.MatrixOperation.NONE
    return network.add_matrix_multiply(a, none, b, none).get_output(0)


def _rewire(network, old, new):
    """Every layer that read the network's own input reads `new` instead; the old input is removed."""
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        for j in range(layer.num_inputs):
            tensor = layer.get_input(j)
            if tensor is not None and tensor.name == old.name:
                layer.set_input(j, new)
    network.remove_tensor(old)
