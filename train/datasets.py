"""Datasets by name, loaded as RGB uint8 images and prepared for a model by train's input pipeline.

    digits        the real handwritten digits inside scikit-learn (1,797 8x8 images, 10 classes)
    road          the procedural road (runtime.road), labelled with the steering that follows the lane
    mnist         keras.datasets.mnist, from Keras's cache or the network
    cifar10       keras.datasets.cifar10, likewise
    folder:PATH   an image folder with one subfolder per class (the cats-vs-dogs layout)

`check(name)` validates a name without importing TensorFlow; `load(name, spec)` does the work.
"""

from __future__ import annotations

import os
import socket
import sys

import numpy as np

from runtime.errors import UserError

NAMES = ("digits", "road", "mnist", "cifar10", "folder:PATH")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")  # what tf.io.decode_image reads
CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
ROAD_SIZE = (320, 180)  # width, height of generated road frames
SAMPLES = 32  # held-out raw frames kept with the run, for export's parity check and calibration


class Dataset:
    """Prepared train/validation arrays plus a few raw held-out frames (RGB uint8) for the bundle."""

    def __init__(self, name, task, labels, x_train, y_train, x_val, y_val, raw_samples, sample_targets):
        self.name, self.task, self.labels = name, task, labels
        self.x_train, self.y_train, self.x_val, self.y_val = x_train, y_train, x_val, y_val
        self.raw_samples, self.sample_targets = raw_samples, sample_targets


def check(name: str, spec=None) -> str:
    """The dataset's task kind ('classification' or 'steering'); UserError for a bad name or folder, or
    for a dataset that does not fit the model. Cheap: nothing is loaded."""
    task = _check_name(name)
    if spec is None:
        return task
    if (task == "steering") != (spec.task == "steering"):
        raise UserError("%s is a %s model but %s is a %s dataset (use --data %s)"
                        % (spec.name, spec.task, name, task, spec.default_data or "folder:PATH"))
    classes = len(_classes(name[len("folder:"):])) if name.startswith("folder:") else 10
    if spec.task == "binary" and classes != 2:
        raise UserError("%s is a binary classifier but %s has %d classes (use --data folder:PATH with two "
                        "class subfolders)" % (spec.name, name, classes))
    return task


def _check_name(name):
    if name in ("digits", "mnist", "cifar10"):
        return "classification"
    if name == "road":
        return "steering"
    if name.startswith("folder:"):
        path = name[len("folder:"):]
        if not path:
            raise UserError("folder: needs a path, as in folder:data/cats_vs_dogs")
        if not os.path.isdir(path):
            raise UserError("folder %s does not exist (folder:PATH needs one subfolder of images per class)"
                            % path)
        classes = _classes(path)
        if len(classes) < 2:
            raise UserError("folder %s has %d class subfolder(s); a classifier needs at least 2 "
                            "(one subfolder of images per class)" % (path, len(classes)))
        for c in classes:
            if len(_images_in(os.path.join(path, c))) < 2:
                raise UserError("class folder %s has fewer than 2 images (%s)"
                                % (os.path.join(path, c), ", ".join(IMAGE_EXTS)))
        return "classification"
    raise UserError("unknown dataset %r (choose from: %s)" % (name, ", ".join(NAMES)))


def _classes(path):
    return sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))


def _images_in(folder):
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTS))


def _split(n, val_fraction, seed, strata=None):
    """Indices of a deterministic train/validation split, stratified by class when strata is given."""
    rng = np.random.RandomState(seed)
    if strata is None:
        order = rng.permutation(n)
        k = max(1, int(round(n * val_fraction)))
        return order[k:], order[:k]
    train, val = [], []
    for c in np.unique(strata):
        idx = rng.permutation(np.nonzero(strata == c)[0])
        k = max(1, int(round(len(idx) * val_fraction)))
        val.extend(idx[:k])
        train.extend(idx[k:])
    return np.array(sorted(train)), np.array(sorted(val))


def _gray_to_rgb(images):
    return np.repeat(images[..., None], 3, axis=-1) if images.ndim == 3 else images


def _load_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 ink -> 0..255
    return _gray_to_rgb(images), digits.target.astype(np.int64), [str(i) for i in range(10)]


def _keras_cache(fname):
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(base, "datasets", fname)


def _keras_dataset(name):
    """keras.datasets.<name>.load_data(), or a one-line error saying which file to place where."""
    import keras

    cached, origin = {
        "mnist": (_keras_cache("mnist.npz"),
                  "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"),
        "cifar10": (_keras_cache("cifar-10-batches-py-target_archive"),
                    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    }[name]
    loader = getattr(keras.datasets, name).load_data
    previous = socket.getdefaulttimeout()
    if not os.path.exists(cached):
        print("%s is not in Keras's cache (%s); trying to download it" % (name, cached), file=sys.stderr)
        socket.setdefaulttimeout(20)
    try:
        (x_train, y_train), (x_test, y_test) = loader()
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError("cannot load %s (%s): download %s and place it at %s"
                        % (name, reason, origin, cached)) from None
    finally:
        socket.setdefaulttimeout(previous)
    return x_train, y_train.reshape(-1), x_test, y_test.reshape(-1)


def _read_folder(path):
    """Every readable image of every class folder. Files that do not decode are skipped with a warning each
    (the decoder's own messages kept off the terminal); a class left with fewer than 2 images is one line."""
    import tensorflow as tf

    from runtime.errors import native_stderr_silenced

    classes = _classes(path)
    images, targets, skipped = [], [], []
    with native_stderr_silenced():  # libjpeg's and libpng's own complaints about a broken file
        for c, name in enumerate(classes):
            readable = 0
            for file in _images_in(os.path.join(path, name)):
                try:
                    image = tf.io.decode_image(tf.io.read_file(file), channels=3, expand_animations=False).numpy()
                except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, tf.errors.PermissionDeniedError):
                    skipped.append(file)
                    continue
                images.append(image)
                targets.append(c)
                readable += 1
            if readable < 2:
                break
    for file in skipped:
        print("warning: skipping %s: not a readable image" % file, file=sys.stderr)
    for c, name in enumerate(classes):
        found = targets.count(c)
        if found < 2:
            raise UserError("class folder %s has %d readable image(s) (%d could not be read); each class needs "
                            "at least 2" % (os.path.join(path, name), found,
                                            sum(os.path.dirname(f) == os.path.join(path, name) for f in skipped)))
    return images, np.array(targets, dtype=np.int64), classes


def load(name: str, spec, limit=None, seed: int = 0, road_views: str = "recovery") -> Dataset:
    """Load and prepare a dataset for a zoo Spec; limit caps (or, for road, sets) the training size.
    road_views: the road's training views (runtime.road.random_pose); validation always has recovery views."""
    from .inputs import prepare

    check(name, spec)

    def prep(images):
        return prepare(images, spec.preprocess(), spec.layout)

    if name == "road":
        from runtime import road

        n_train = limit or 3000
        n_val = max(100, n_train // 5)
        frames, y = road.sample_frames(n_train, ROAD_SIZE[0], ROAD_SIZE[1], seed=seed, views=road_views)
        x_train = prep(frames[..., ::-1])
        del frames
        val_frames, y_val = road.sample_frames(n_val, ROAD_SIZE[0], ROAD_SIZE[1], seed=seed + 100003)
        val_rgb = np.ascontiguousarray(val_frames[..., ::-1])
        return Dataset(name, "steering", [], x_train, y, prep(val_rgb), y_val, val_rgb[:SAMPLES],
                       [float(v) for v in y_val[:SAMPLES]])

    if name == "digits":
        images, targets, labels = _load_digits()
        train_idx, val_idx = _split(len(images), 0.2, seed, targets)
        train_images, y_train = images[train_idx], targets[train_idx]
        val_images, y_val = images[val_idx], targets[val_idx]
    elif name in ("mnist", "cifar10"):
        train_images, y_train, val_images, y_val = _keras_dataset(name)
        train_images, val_images = _gray_to_rgb(train_images), _gray_to_rgb(val_images)
        labels = [str(i) for i in range(10)] if name == "mnist" else CIFAR10_LABELS
    else:
        images, targets, labels = _read_folder(name[len("folder:"):])
        train_idx, val_idx = _split(len(images), 0.2, seed, targets)
        train_images, y_train = [images[i] for i in train_idx], targets[train_idx]
        val_images, y_val = [images[i] for i in val_idx], targets[val_idx]

    if limit and limit < len(y_train):
        keep = np.sort(np.random.RandomState(seed).permutation(len(y_train))[:limit])
        train_images = train_images[keep] if isinstance(train_images, np.ndarray) else [train_images[i] for i in keep]
        y_train = y_train[keep]
    order = np.unique(np.linspace(0, len(y_val) - 1, SAMPLES).astype(int))  # spread over the held-out set
    raw = [np.ascontiguousarray(val_images[i]) for i in order]
    return Dataset(name, spec.task, labels, prep(train_images), y_train, prep(val_images), y_val,
                   raw, [int(y_val[i]) for i in order])
