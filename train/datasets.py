"""Datasets by name: RGB uint8 images in memory, or image files read as training needs them (train/pipeline.py).

    digits          the real handwritten digits inside scikit-learn (1,797 8x8 images, 10 classes)
    road            the procedural road (runtime.sim.road), labelled with the steering that follows the lane
    mnist:PATH      MNIST from its IDX files or mnist.npz in PATH (train/classic.py); never downloaded
    cifar10:PATH    CIFAR-10 from its python or binary batches, or their .tar.gz as downloaded
    mnist, cifar10  keras.datasets' copies, from Keras's cache (or the network, where there is one)
    folder:PATH     an image folder with one subfolder per class (the cats-vs-dogs layout), read from disk
    drivelog:PATH   driving logs (Udacity's simulator, DonkeyCar tubs v1/v2), several joined with commas
                    (train/drivelog.py), read from disk
    road-obstacles  detection: the procedural road with cones, boxes, parked cars, pedestrians and stop signs
                    (runtime.sim.obstacles), exact boxes and ignore regions
    yolo:PATH, voc:PATH, coco:PATH
                    detection: YOLO txt (Ultralytics' layout), Pascal VOC XML, COCO JSON (train/detection_formats.py)
    road-freespace  segmentation: the procedural road with obstacles, every pixel labelled (runtime.sim.segmentation)
    masks:PATH      segmentation: images/ and masks/ folders of image/mask pairs (PNG masks of class indices, or
                    colours with a colour map) and labels.json (train/segmentation_formats.py), read from disk

Detection datasets come as a DetectionSet (train/detection_formats.py) from `load_detection` (and from `load` for a
detection spec): images in memory with per-image targets (boxes in the images' pixels, classes, ignore flags).

`check(name)` validates a name without importing TensorFlow; `load(name, spec)` does the work. The
validation split is seeded: stratified by class for classifiers, whole stretches of driving for logs (frames a
few milliseconds apart are near copies: a random split would validate on the training set). A training set whose
targets are all the same (one class, or one steering: a misread log, a drive that never turned) is one warning
line: a model trained on it can only learn to answer that constant.

Names of any bytes work: files go to TensorFlow as bytes (train/pipeline.py), and what is printed or written
of a name (warnings, the dataset's name and a folder's class names in plots and meta.json) shows the bytes that
are not UTF-8 as \\xNN. In a folder, what is named like an image but is not a file (a FIFO, whose reader would
wait for ever; a folder) is skipped with a warning.
"""

from __future__ import annotations

import os
import socket
import stat
import sys

import numpy as np

from runtime.errors import UserError, printable
from runtime.sim import obstacles, road

from . import classic, detection_formats, drivelog, segmentation_formats
from .classic import CIFAR10_LABELS
from .inputs import prepare
from .pipeline import Split, decode_file, readable

NAMES = ("digits", "road", "mnist:PATH", "cifar10:PATH", "folder:PATH", "drivelog:PATH[,PATH...]", "mnist",
         "cifar10", "road-obstacles", "yolo:PATH", "voc:PATH", "coco:PATH", "road-freespace", "masks:PATH")
DETECTION_FORMATS = ("yolo", "voc", "coco")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")  # what tf.io.decode_image reads
VAL_FRACTION = 0.2
STRETCH = 50  # samples of a driving log that go to the same side of the split
ROAD_SIZE = (320, 180)  # width, height of generated road frames
SAMPLES = 32  # held-out raw frames kept with the run, for export's parity check and calibration
OBSTACLES_TRAIN = 3000  # road-obstacles' training frames without --limit
OBSTACLES_VAL = (200, 6)  # and its held-out frames: a sixth as many, at least 200
OBSTACLES_VAL_SEED = 100003  # the held-out frames' seed is the training seed plus this: other frames


class Dataset:
    """The train and validation splits (train/pipeline.py's Split: images in memory or files), a few raw
    held-out frames (RGB uint8) for the bundle, and what the manifest says of the targets. The name and the
    labels are for showing (plots, meta.json, the manifest): the bytes of a name that is not UTF-8 as \\xNN."""

    def __init__(self, name, task, labels, train, val, raw_samples, sample_targets, steering=None, notes=()):
        self.name, self.task, self.train, self.val = printable(name), task, train, val
        self.labels = [printable(label) for label in labels]
        self.raw_samples, self.sample_targets = raw_samples, sample_targets
        self.steering, self.notes = steering, list(notes)

    @property
    def y_train(self):
        return self.train.targets

    @property
    def y_val(self):
        return self.val.targets

    def inputs(self, split, spec):
        """A split's images prepared for spec, all at once (for small sets: tests, benchmarks)."""
        images = split.images if split.images is not None else [_decode(f) for f in split.files]
        return prepare(images, spec.preprocess(), spec.layout)


def check(name: str, spec=None) -> str:
    """The dataset's task kind ('classification', 'steering' or 'detection'); UserError for a bad name or folder,
    or for a dataset that does not fit the model. Cheap: nothing is loaded."""
    task = _check_name(name)
    if spec is None:
        return task
    for kind in ("detection", "segmentation", "steering"):
        if (task == kind) == (spec.task == kind):
            continue
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
    if name == "road-obstacles":
        return "detection"
    if name == "road-freespace":
        return "segmentation"
    kind, sep, path = name.partition(":")
    if sep and kind in DETECTION_FORMATS:
        detection_formats.check(kind, path)
        return "detection"
    if sep and kind == "masks":
        segmentation_formats.check(path)
        return "segmentation"
    if sep and kind in ("mnist", "cifar10"):
        if not path or not os.path.exists(path):
            raise UserError("%s: no such file or folder '%s' (give where %s's files are: %s)"
                            % (name, printable(path), kind, "the four IDX files or mnist.npz" if kind == "mnist" else
                               "cifar-10-python.tar.gz or the folder it unpacks to"))
        return "classification"
    if sep and kind == "drivelog":
        drivelog.check(path)
        return "steering"
    if sep and kind == "folder":
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
    raise UserError("unknown dataset '%s' (choose from: %s)" % (printable(name), ", ".join(NAMES)))


def _classes(path):
    return sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith("."))


def _images_in(folder, others=None):
    """The image files of a class folder, sorted. What is named like an image but is not a file (a FIFO, whose
    reader would wait for ever; a folder; a device) is left out, and added to others when given."""
    found = []
    for name in sorted(os.listdir(folder)):
        if name.lower().endswith(IMAGE_EXTS):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                found.append(path)
            elif others is not None:
                others.append(path)
    return found


def _what(path):
    """What a path that is not a file is, in words."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return exc.strerror or "not readable"
    return ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file")


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


def _decode(path):
    import tensorflow as tf

    return decode_file(tf, path).numpy()


def _readable(files, what):
    """The files TensorFlow can decode; each one that it cannot is a warning."""
    print(printable("checking %d %s" % (len(files), what)), file=sys.stderr)
    good = readable(files)
    bad = sorted(set(range(len(files))) - set(good))
    for i in bad:
        print(printable("warning: skipping %s: not a readable image" % files[i]), file=sys.stderr)
    return good


def _read_folder(path):
    """Every readable image file of every class folder, with its class. Files that do not decode are skipped
    with a warning each; a class left with fewer than 2 images is one line."""
    classes = _classes(path)
    files, targets, others = [], [], []
    for c, name in enumerate(classes):
        found = _images_in(os.path.join(path, name), others)
        files.extend(found)
        targets.extend([c] * len(found))
    for other in others:
        print(printable("warning: skipping %s: it is %s, not an image file" % (other, _what(other))), file=sys.stderr)
    good = _readable(files, "images in %s" % path)
    kept = np.array(targets, dtype=np.int64)[good]
    for c, name in enumerate(classes):
        found = int(np.sum(kept == c))
        if found < 2:
            raise UserError("class folder %s has %d readable image(s) (%d could not be read); each class needs "
                            "at least 2" % (os.path.join(path, name), found, targets.count(c) - found))
    return [files[i] for i in good], kept, classes


def _stretch_split(n, seed):
    """Train and validation indices of a driving log: whole stretches of STRETCH samples to either side."""
    blocks = (n + STRETCH - 1) // STRETCH
    if blocks < 2:
        raise UserError("a driving log of %d usable samples is too short to hold some back for validation "
                        "(at least %d)" % (n, STRETCH + 1))
    order = np.random.RandomState(seed).permutation(blocks)
    val_blocks = set(order[:max(1, int(round(blocks * VAL_FRACTION)))].tolist())
    val = np.array([i for i in range(n) if i // STRETCH in val_blocks])
    return np.setdiff1d(np.arange(n), val), val


def _load_drivelog(path, seed, side_correction, units, radius=None):
    log = drivelog.read(path, side_correction)
    for line in log.report():
        print("warning: %s" % line, file=sys.stderr)
    samples = log.samples
    good = set(_readable([s.image for s in samples], "frames of %s" % ", ".join(log.layouts)))  # warns of each
    samples = [s for i, s in enumerate(samples) if i in good]
    # rows, not samples, go to one side: a row's side cameras stay with its centre frame
    centre = [i for i, s in enumerate(samples) if s.camera == "centre"]
    if not centre:
        raise UserError("drivelog:%s: no centre-camera frame left to validate on" % path)
    row_of = np.cumsum([s.camera == "centre" for s in samples]) - 1
    train_rows, val_rows = _stretch_split(len(centre), seed)
    val_set = set(val_rows.tolist())
    train = [s for i, s in enumerate(samples) if row_of[i] not in val_set]
    val = [samples[centre[r]] for r in val_rows]  # the centre camera: what the car will see
    steering = {"units": units, "positive": "right",
                "meaning": "steering as the driving log records it (%s), positive to the right" % units}
    if radius:  # the car's turning radius at steering 1: what runtime drive and the control link need
        steering["inverse_radius_per_unit"] = 1.0 / radius
        steering["meaning"] += "; 1/r = value / %g m" % radius
    notes = ["%d training samples (%d from side cameras, corrected by %g), %d held out (centre camera)"
             % (len(train), sum(s.camera != "centre" for s in train), side_correction or 0.0, len(val))]
    return train, val, steering, notes


def _warn_if_constant(name, targets, labels=None, noun="example", side_correction=None):
    """One warning line when every training target is the same: a model trained on a constant learns to answer
    it whatever it sees (a misread log, a drive that never turned, a --limit that kept one class)."""
    targets = np.asarray(targets)
    if targets.size == 0 or not np.all(targets == targets.flat[0]):
        return
    if labels:
        what, answer = "class %s" % labels[int(targets.flat[0])], "that class"
    else:
        what = answer = "steering %g" % targets.flat[0]
        if side_correction:
            answer += " (and the side cameras' +-%g)" % side_correction
    print("warning: every training %s of %s (%d) has %s: the model can only learn to answer %s, whatever the image"
          % (noun, name, targets.size, what, answer), file=sys.stderr)


def _kept(n, limit, seed):
    """The sorted indices of a seeded random `limit` of n training examples (all of them without a limit)."""
    if not limit or limit >= n:
        return np.arange(n)
    return np.sort(np.random.RandomState(seed).permutation(n)[:limit])


def _spread(n):
    """The indices of up to SAMPLES held-out examples spread over n: the samples that travel into the bundle."""
    return np.unique(np.linspace(0, n - 1, SAMPLES).astype(int))


def load(name: str, spec, limit=None, seed: int = 0, road_views: str = "recovery", side_correction=None,
         steering_units="normalised", steering_radius=None) -> Dataset:
    """Load a dataset for a zoo Spec; limit caps (or, for road, sets) the training size.
    road_views: the road's training views (runtime.sim.road.random_pose); validation always has recovery views.
    side_correction, steering_units, steering_radius: for driving logs (train/drivelog.py)."""
    task = check(name, spec)
    if task == "detection":
        return load_detection(name, tuple(spec.size), limit, seed)
    if task == "segmentation" and name.startswith("masks:"):
        return segmentation_formats.load(name[len("masks:"):], limit, seed)
    if task == "segmentation":
        return freespace_dataset(name, limit, seed)
    kind, _, path = name.partition(":")
    if name == "road":
        return _road(name, limit, seed, road_views)
    if kind == "drivelog":
        return _drivelog(name, path, limit, seed, side_correction, steering_units, steering_radius)
    return _classes_dataset(name, spec, limit, seed)


def _road(name, limit, seed, road_views):
    """The procedural road: limit (default 3000) training frames, a fifth as many (at least 100) held out."""
    n_train = limit or 3000
    n_val = max(100, n_train // 5)
    frames, y = road.sample_frames(n_train, ROAD_SIZE[0], ROAD_SIZE[1], seed=seed, views=road_views)
    train_rgb = np.ascontiguousarray(frames[..., ::-1])
    del frames
    val_frames, y_val = road.sample_frames(n_val, ROAD_SIZE[0], ROAD_SIZE[1], seed=seed + 100003)
    val_rgb = np.ascontiguousarray(val_frames[..., ::-1])
    _warn_if_constant(name, y, noun="frame")
    return Dataset(name, "steering", [], Split(y, images=train_rgb), Split(y_val, images=val_rgb),
                   val_rgb[:SAMPLES], [float(v) for v in y_val[:SAMPLES]], road.steering_metadata())


def _drivelog(name, path, limit, seed, side_correction, steering_units, steering_radius):
    """Driving logs, split in stretches (train/drivelog.py); images stay on disk."""
    train, val, steering, notes = _load_drivelog(path, seed, side_correction, steering_units, steering_radius)
    train = [train[i] for i in _kept(len(train), limit, seed)]
    centre = [s.steering for s in train if s.camera == "centre"]  # what the log recorded
    _warn_if_constant(name, centre or [s.steering for s in train], noun="row",
                      side_correction=side_correction if len(centre) < len(train) else None)
    order = _spread(len(val))
    return Dataset(name, "steering", [], Split([s.steering for s in train], files=[s.image for s in train]),
                   Split([s.steering for s in val], files=[s.image for s in val]),
                   [_decode(val[i].image) for i in order], [float(val[i].steering) for i in order], steering,
                   notes)


def _read_classes(name, seed):
    """(training images, targets, validation images, targets, labels, whether the images are files) of a
    classification dataset: digits, MNIST or CIFAR-10 in memory, or an image folder's files."""
    kind, _, path = name.partition(":")
    if name == "digits":
        images, targets, labels = _load_digits()
        train_idx, val_idx = _split(len(images), VAL_FRACTION, seed, targets)
        return images[train_idx], targets[train_idx], images[val_idx], targets[val_idx], labels, False
    if kind in ("mnist", "cifar10"):
        if path:
            train_images, y_train, val_images, y_val, labels = (classic.read_mnist if kind == "mnist" else
                                                                 classic.read_cifar10)(path)
        else:
            train_images, y_train, val_images, y_val = _keras_dataset(name)
            labels = [str(i) for i in range(10)] if name == "mnist" else list(CIFAR10_LABELS)
        return _gray_to_rgb(train_images), y_train, _gray_to_rgb(val_images), y_val, labels, False
    files, targets, labels = _read_folder(path)
    train_idx, val_idx = _split(len(files), VAL_FRACTION, seed, targets)
    train_files, val_files = [files[i] for i in train_idx], [files[i] for i in val_idx]
    return train_files, targets[train_idx], val_files, targets[val_idx], labels, True


def _classes_dataset(name, spec, limit, seed):
    """A classification dataset (_read_classes), its training set cut to limit; samples spread over the
    validation split."""
    train_images, y_train, val_images, y_val, labels, from_files = _read_classes(name, seed)
    if limit and limit < len(y_train):
        keep = _kept(len(y_train), limit, seed)
        train_images = train_images[keep] if isinstance(train_images, np.ndarray) else [train_images[i] for i in keep]
        y_train = y_train[keep]
    _warn_if_constant(name, y_train, labels)
    order = _spread(len(y_val))
    if from_files:
        train, val = Split(y_train, files=train_images), Split(y_val, files=val_images)
        raw = [_decode(val_images[i]) for i in order]
    else:
        train, val = Split(y_train, images=train_images), Split(y_val, images=val_images)
        raw = [np.ascontiguousarray(val_images[i]) for i in order]
    return Dataset(name, spec.task, labels, train, val, raw, [int(y_val[i]) for i in order])


def load_detection(name: str, size=None, limit=None, seed: int = 0) -> detection_formats.DetectionSet:
    """A detection dataset (road-obstacles, yolo:PATH, voc:PATH, coco:PATH) as a DetectionSet: .train and .val
    (DetectionSplit: .images, .targets, one Target(boxes, classes, ignore) per image, boxes float32 x0, y0, x1, y1
    in that image's pixel edges), .labels. size (width, height): the detector's input. road-obstacles renders its
    frames at that size (default ROAD_SIZE) as one N x H x W x 3 RGB array, limit (default OBSTACLES_TRAIN)
    training frames; files from disk keep their own sizes (a list), limit caps the training images. Either way
    a box under obstacles.MIN_HEIGHT_PX high at the input size is an ignore region."""
    if check(name) != "detection":
        raise UserError("%s is not a detection dataset (choose from: road-obstacles, %s)"
                        % (printable(name), ", ".join("%s:PATH" % k for k in DETECTION_FORMATS)))
    if name == "road-obstacles":
        return _road_obstacles(name, tuple(size or ROAD_SIZE), limit, seed)
    kind, _, path = name.partition(":")
    return detection_formats.load(kind, path, size, limit, seed, obstacles.MIN_HEIGHT_PX if size else None)


def _road_obstacles(name, size, limit, seed):
    """Procedural road frames with obstacles at size: limit (default OBSTACLES_TRAIN) for training, a sixth as many
    (at least 200) held out, drawn from another seed."""
    n_train = limit or OBSTACLES_TRAIN
    n_val = max(OBSTACLES_VAL[0], n_train // OBSTACLES_VAL[1])
    sides = []
    for n, s in ((n_train, seed), (n_val, seed + OBSTACLES_VAL_SEED)):
        frames, boxes, classes, ignore = obstacles.sample_detection_frames(n, size[0], size[1], seed=s)
        targets = [detection_formats.Target(*t) for t in zip(boxes, classes, ignore)]
        sides.append(detection_formats.DetectionSplit(np.ascontiguousarray(frames[..., ::-1]), targets))
    positives = sum(int(np.sum(~t.ignore)) for t in sides[0].targets)
    notes = ["%d training frames (%d positive boxes), %d held out, %dx%d" % ((n_train, positives, n_val) + size)]
    return detection_formats.DetectionSet(name, obstacles.LABELS, sides[0], sides[1], notes)


FREESPACE_TRAIN = 2000  # road-freespace's training frames without --limit
FREESPACE_VAL = (100, 6)  # and its held-out frames: a sixth as many, at least 100


def freespace_dataset(name: str, limit=None, seed: int = 0):
    """road-freespace as a SegmentationSet (train/freespace.py): frames at ROAD_SIZE with every pixel's class,
    --limit (or FREESPACE_TRAIN) for training and a sixth as many (at least 100) held out, from another seed."""
    from runtime.sim import segmentation

    from .freespace import SegmentationSet

    n_train = limit or FREESPACE_TRAIN
    n_val = max(FREESPACE_VAL[0], n_train // FREESPACE_VAL[1])
    sides = [segmentation.sample_segmentation_frames(n, ROAD_SIZE[0], ROAD_SIZE[1], seed=s)
             for n, s in ((n_train, seed), (n_val, seed + OBSTACLES_VAL_SEED))]
    notes = ["%d training frames, %d held out, %dx%d, every pixel labelled" % ((n_train, n_val) + ROAD_SIZE)]
    return SegmentationSet(name, segmentation.CLASSES, segmentation.DRIVABLE, sides[0], sides[1], notes)
