"""keras.applications' families as a user brings them to export: each at a small input size with random weights,
woken (BatchNormalization's statistics set from real frames, so that outputs move with the input), and each
family's own input scaling (its preprocess_input), so that parity is judged in the model's real range. Shared by
tests/export/test_export_any.py and benchmarks/export_routes.py."""

SIZE = 96  # small, yet enough room in the deepest feature maps that a woken random network is well conditioned

TF = {"scale": 1 / 127.5, "offset": -1.0}  # preprocess_input's mode "tf": pixels to [-1, 1]
CAFFE = {"color": "bgr", "scale": 1.0, "offset": [-103.939, -116.779, -123.68]}  # "caffe": BGR less ImageNet's mean
TORCH = {"scale": [1 / (255 * s) for s in (0.229, 0.224, 0.225)],  # "torch": [0, 1], less the mean, over the std
         "offset": [-m / s for m, s in ((0.485, 0.229), (0.456, 0.224), (0.406, 0.225))]}

# one model a family (the smallest), and its input scaling; {} for the models that begin with their own
# Rescaling or Normalization (include_preprocessing) and take raw pixels, which export works out by itself
FAMILIES = {
    "ConvNeXtTiny": {}, "DenseNet121": TORCH, "EfficientNetB0": {}, "EfficientNetV2B0": {},
    "InceptionV3": TF, "InceptionResNetV2": TF, "MobileNet": TF, "MobileNetV2": TF, "MobileNetV3Small": {},
    "MobileNetV3Large": {}, "NASNetMobile": TF, "ResNet50": CAFFE, "ResNet50V2": TF, "VGG16": CAFFE,
    "Xception": TF,
}
# RegNet is not in keras.applications as installed (Keras 3: keras_hub has it), so it is not here


def frames(count, seed):
    from runtime.sim import road

    found, _ = road.sample_frames(count, 64, 48, seed=seed)
    return list(found)


def inputs(frame_list, color="rgb", scale=1.0, offset=0.0, size=SIZE):
    """Frames as a network with this input scaling takes them, by the runtime's own preprocessing."""
    from runtime.preprocess import Preprocessor

    pre = {"crop": None, "resize": {"width": size, "height": size, "interpolation": "linear"}, "color": color,
           "scale": scale, "offset": offset}
    return Preprocessor(pre, {"shape": [None, size, size, 3], "layout": "NHWC"}).batch(frame_list)


def wake(model, **scaling):
    """Random weights leave BatchNormalization's moving statistics at 0 and 1, and deep networks then give
    the same output for every input (export would rightly call parity on it vacuous). One pass in training
    mode with momentum 0 (and dropout off, so that the pass flows as inference will) sets each layer's
    statistics to what it sees, as a trained network's would be. A network without BatchNormalization
    (ConvNeXt: LayerNormalization; VGG) is left as it is."""
    import keras

    layers = list(model._flatten_layers())
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    drops = [layer for layer in layers if isinstance(layer, keras.layers.Dropout)]
    saved = [layer.momentum for layer in norms], [layer.rate for layer in drops]
    for layer in norms:
        layer.momentum = 0.0
    for layer in drops:
        layer.rate = 0.0
    if norms:
        model(inputs(frames(16, seed=11), **scaling), training=True)
    for layer, momentum in zip(norms, saved[0]):
        layer.momentum = momentum
    for layer, rate in zip(drops, saved[1]):
        layer.rate = rate


def family(name):
    """The family's network with random weights, woken, giving logits: a woken random network's logits
    can be large and close, and the argmax of a softmax over them flips with rounding (Keras's own predict
    and eager call disagree), which would test the weights, not the conversion."""
    import keras

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, input_shape=(SIZE, SIZE, 3), classes=3,
                                              classifier_activation=None)
    wake(model, **FAMILIES[name])
    return model
