"""Detection datasets from disk: YOLO txt (Ultralytics' layout), Pascal VOC XML and COCO JSON, read into memory as
RGB uint8 images with per-image targets (Target: boxes x0, y0, x1, y1 in the image's pixel edges, class indices,
ignore flags). train/datasets.py's load_detection names them `yolo:PATH`, `voc:PATH` and `coco:PATH`.

    yolo:PATH   data.yaml (PATH, or PATH/data.yaml or the one *.yaml in PATH): `names` (a list, or a mapping of
                index to name), `train` and `val` (a folder of images, a .txt listing images, or a list of
                those), relative to `path` (itself relative to the yaml's folder; the yaml's folder without it).
                Each image's labels are at the same path with the last /images/ replaced by /labels/ and .txt
                for its extension: one object a line, `class x_centre y_centre width height` as fractions of the
                image (a polygon `class x1 y1 x2 y2 ...` counts as its extent); no label file: no objects.
    voc:PATH    Annotations/*.xml, JPEGImages/, ImageSets/Main/train.txt and val.txt (or trainval.txt, or every
                annotation, split here); PATH may be a VOCdevkit holding one VOC20xx. Labels from PATH/labels.txt
                (one a line) where there is one, else the names found, sorted. <difficult>1 is an ignore region;
                xmin, ymin are 1-based, so a box is (xmin - 1, ymin - 1, xmax, ymax) in pixel edges.
    coco:PATH   an instances_*.json, or a folder with annotations/instances_*.json (train and val by the files'
                names, or one file split here); images under the folder named by the file's suffix
                (instances_val2017.json: val2017/), images/, or beside the file. Labels: the categories in
                order of id. iscrowd (and `ignore`) annotations are ignore regions.

Without a validation split a seeded fifth of the images is held out. Files that do not parse (a label line that is
not numbers, XML that does not parse or that declares a DOCTYPE or ENTITY: billion laughs, an image that does not
decode) are skipped, each named in a warning line, with a count. Boxes reaching outside their image are clipped
to it, and refused where nothing is left, each counted in one line. A class that is not in the label list is a
one-line error, as is every bad layout (UserError: exit status 2).
"""

from __future__ import annotations

import collections
import json
import os
import sys

import numpy as np

from runtime.errors import UserError, printable, require
from runtime.images import ImageError, read_image, shown

VAL_FRACTION = 0.2
IMAGE_EXTS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")  # what OpenCV reads of Ultralytics' list

Target = collections.namedtuple("Target", "boxes classes ignore")
Target.__doc__ = ("One image's objects: boxes float32 M x 4 (x0, y0, x1, y1 in pixel edges of the image), classes "
                  "int64 M (indices into the labels), ignore bool M (True: an ignore region, neither a positive nor "
                  "a false positive)")


def empty_target():
    return Target(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, bool))


def positives(target):
    """(boxes M x 4, classes M) of a Target's positives, and its ignore regions' boxes (I x 4)."""
    keep = ~np.asarray(target.ignore, bool)
    return target.boxes[keep], target.classes[keep], target.boxes[~keep]


class DetectionSplit:
    """One side of a split: images (an N x H x W x 3 uint8 RGB array, or a list of such images of any sizes), their
    targets (a list of Target) and, for images read from disk, their files."""

    def __init__(self, images, targets, files=None):
        self.images, self.targets, self.files = images, list(targets), files

    def __len__(self):
        return len(self.targets)


class DetectionSet:
    """A detection dataset: train and val (DetectionSplit), the labels (class names, in index order), notes."""

    SAMPLES = 8  # held-out frames the run keeps, for export's checks

    def __init__(self, name, labels, train, val, notes=()):
        self.name, self.labels, self.train, self.val = printable(name), [printable(x) for x in labels], train, val
        self.task, self.notes = "detection", list(notes)

    @property
    def raw_samples(self):
        """The first held-out frames (RGB), as the run keeps them (train/run_dir.py)."""
        return [np.ascontiguousarray(self.val.images[i]) for i in range(min(self.SAMPLES, len(self.val)))]

    @property
    def sample_targets(self):
        """Their boxes, classes and ignore regions, in their pixels (meta.json's samples.targets)."""
        out = []
        for target in self.val.targets[:self.SAMPLES]:
            boxes, classes, ignore = positives(target)
            out.append({"boxes": np.round(boxes, 2).tolist(), "classes": [int(c) for c in classes],
                        "ignore": np.round(ignore, 2).tolist()})
        return out


class Record:
    """An image file and its objects as its annotation gives them: boxes in pixels, or as fractions of the image's
    size when `relative` (YOLO)."""

    def __init__(self, image, boxes, classes, ignore, relative=False):
        self.image, self.relative = image, relative
        self.boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        self.classes, self.ignore = np.asarray(classes, np.int64), np.asarray(ignore, bool)


class Report:
    """What was skipped (named as it goes, counted at the end), clipped and refused."""

    def __init__(self, what):
        self.what, self.skipped, self.clipped, self.refused = what, 0, 0, 0

    def skip(self, path, why):
        self.skipped += 1
        print("warning: skipping %s: %s" % (shown(path), printable(why)), file=sys.stderr)

    def summary(self, total):
        if self.skipped:
            print("warning: %s: %d of %d files skipped (they did not parse or decode)"
                  % (self.what, self.skipped, total), file=sys.stderr)
        if self.clipped or self.refused:
            print("warning: %s: %d box(es) clipped to their image, %d refused (nothing of them inside it)"
                  % (self.what, self.clipped, self.refused), file=sys.stderr)


def seeded_split(n, seed, fraction=VAL_FRACTION):
    """Sorted train and validation indices of n items, a seeded `fraction` (at least 1) held out."""
    if n < 2:
        raise UserError("%d image(s) is too few to hold some back for validation (at least 2)" % n)
    order = np.random.RandomState(seed).permutation(n)
    k = max(1, int(round(n * fraction)))
    return np.sort(order[k:]), np.sort(order[:k])


def _clip(record, width, height, report):
    """The record's boxes in pixels, clipped to the image; those with nothing inside dropped (counted)."""
    boxes = record.boxes.copy()
    if record.relative:  # centre x, centre y, width, height as fractions -> pixel edges
        c, s = boxes[:, :2] * (width, height), boxes[:, 2:] * (width, height)
        boxes = np.concatenate([c - s / 2, c + s / 2], axis=1)
    clipped = np.clip(boxes, 0.0, [width, height, width, height])
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    report.refused += int(np.sum(~keep))
    report.clipped += int(np.sum(np.any(clipped != boxes, axis=1) & keep))
    return clipped[keep], record.classes[keep], record.ignore[keep]


def materialise(records, report, size=None, min_height=None):
    """(images RGB uint8, list; targets, list of Target; files) of the records whose image decodes. size (w, h):
    the detector's input; with min_height, a box lower than min_height at that size is an ignore region."""
    images, targets, files = [], [], []
    for record in records:
        try:
            bgr = read_image(record.image)
        except ImageError as exc:
            report.skip(record.image, exc.why)
            continue
        height, width = bgr.shape[:2]
        boxes, classes, ignore = _clip(record, width, height, report)
        if size is not None and min_height:
            ignore = ignore | ((boxes[:, 3] - boxes[:, 1]) * (size[1] / float(height)) < min_height)
        images.append(np.ascontiguousarray(bgr[..., ::-1]))
        targets.append(Target(boxes.astype(np.float32), classes, ignore))
        files.append(record.image)
    return images, targets, files


def _must_exist(path, kind, what):
    if not path:
        raise UserError("%s: needs a path, as in %s:data/%s" % (kind, kind, "coco" if kind == "coco" else "set"))
    if not os.path.exists(path):
        raise UserError("%s:%s: no such file or folder (give %s)" % (kind, shown(path), what))


# -- YOLO -----------------------------------------------------------------------------------------------------
def yolo_yaml(path):
    """The data.yaml of yolo:PATH: PATH itself, PATH/data.yaml, or the one .yaml in PATH."""
    _must_exist(path, "yolo", "data.yaml or the folder that holds it")
    if os.path.isfile(path):
        return path
    if os.path.isfile(os.path.join(path, "data.yaml")):
        return os.path.join(path, "data.yaml")
    found = sorted(f for f in os.listdir(path) if f.lower().endswith((".yaml", ".yml")))
    if len(found) != 1:
        raise UserError("yolo:%s: %s (Ultralytics' layout: data.yaml with names, train and val beside images/ and "
                        "labels/)" % (shown(path), "no data.yaml" if not found else "several .yaml files: name one"))
    return os.path.join(path, found[0])


def read_yolo_yaml(path):
    """(the yaml's file, its names as a list, its root folder, its mapping) for yolo:PATH; UserError otherwise."""
    yaml = require("yaml", "train", "reading YOLO's data.yaml")
    file = yolo_yaml(path)
    try:
        with open(file, "rb") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError("cannot read %s: %s" % (shown(file), printable(reason))) from None
    if not isinstance(data, dict):
        raise UserError("%s is not a YOLO data.yaml (a mapping with names, train and val)" % shown(file))
    names = data.get("names")
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        names = [names[i] for i in range(len(names))]
    if not isinstance(names, list) or not names or not all(isinstance(n, (str, int)) for n in names):
        raise UserError("%s has no names: list the classes (names: [cone, car] or names: {0: cone, 1: car})"
                        % shown(file))
    if "train" not in data or not data["train"]:
        raise UserError("%s has no train: give the training images (train: images/train)" % shown(file))
    folder = os.path.dirname(os.path.abspath(file))
    root = data.get("path")
    root = os.path.join(folder, str(root)) if root else folder
    return file, [str(n) for n in names], root, data


def _yolo_images(root, entry, file):
    """The image files a data.yaml's train or val names: folders (searched through), .txt lists, or lists of
    those, relative to root (and, as Ultralytics does, '../x' as root/x where that is what exists)."""
    found = []
    for item in entry if isinstance(entry, list) else [entry]:
        where = os.path.join(root, str(item))
        if not os.path.exists(where) and str(item).startswith("../"):
            where = os.path.join(root, str(item)[3:])
        if os.path.isdir(where):
            for folder, dirs, files in os.walk(where):
                dirs.sort()
                found.extend(os.path.join(folder, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTS))
        elif os.path.isfile(where):
            with open(where, encoding="utf-8", errors="surrogateescape") as f:
                base = os.path.dirname(where)
                found.extend(os.path.join(base, ln.strip()) for ln in f if ln.strip())
        else:
            raise UserError("%s: %s does not exist" % (shown(file), shown(where)))
    return found


def yolo_label_file(image):
    """Ultralytics' label path of an image: the last /images/ as /labels/, the extension as .txt."""
    sa, sb = os.sep + "images" + os.sep, os.sep + "labels" + os.sep
    return os.path.splitext(sb.join(image.rsplit(sa, 1)))[0] + ".txt"


def _yolo_record(image, n_labels):
    """The Record of an image's label file (None when there is none: no objects); ValueError when a line is not
    a box or a polygon; UserError for a class outside the names."""
    label = yolo_label_file(image)
    if not os.path.isfile(label):
        return Record(image, [], [], [], relative=True)
    with open(label, "rb") as f:
        text = f.read().decode("utf-8")
    boxes, classes = [], []
    for number, line in enumerate(text.splitlines(), 1):
        values = line.split()
        if not values:
            continue
        if len(values) < 5 or (len(values) > 5 and len(values) % 2 == 0):
            raise ValueError("line %d has %d values, not 5 (class x y w h) or a polygon" % (number, len(values)))
        cls, coords = float(values[0]), np.array([float(v) for v in values[1:]])
        if cls != int(cls) or not np.all(np.isfinite(coords)):
            raise ValueError("line %d is not a class and numbers" % number)
        if not 0 <= cls < n_labels:
            raise UserError("%s line %d: class %d is not in data.yaml's names (0..%d)"
                            % (shown(label), number, cls, n_labels - 1))
        if len(coords) > 4:  # a polygon: its extent, as centre and size
            lo, hi = coords.reshape(-1, 2).min(axis=0), coords.reshape(-1, 2).max(axis=0)
            coords = np.concatenate([(lo + hi) / 2, hi - lo])
        boxes.append(coords)
        classes.append(int(cls))
    return Record(image, boxes, classes, np.zeros(len(classes), bool), relative=True)


def read_yolo(path, seed=0):
    """(labels, training records, validation records, report) of yolo:PATH."""
    file, labels, root, data = read_yolo_yaml(path)
    report = Report("yolo:%s" % shown(path))
    sides = []
    for key in ("train", "val"):
        images = _yolo_images(root, data[key], file) if data.get(key) else []
        records = []
        for image in images:
            try:
                records.append(_yolo_record(image, len(labels)))
            except (ValueError, UnicodeDecodeError, OSError) as exc:
                report.skip(yolo_label_file(image), str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        sides.append(records)
    train, val = sides
    if not train:
        raise UserError("%s: no images for train (%s)" % (shown(file), ", ".join(IMAGE_EXTS)))
    if not val:
        train_idx, val_idx = seeded_split(len(train), seed)
        train, val = [train[i] for i in train_idx], [train[i] for i in val_idx]
    return labels, train, val, report


# -- Pascal VOC -------------------------------------------------------------------------------------------------
def voc_root(path):
    """The folder with Annotations/ of voc:PATH (PATH, or the one VOC20xx of a VOCdevkit)."""
    _must_exist(path, "voc", "the folder with Annotations/ and JPEGImages/")
    if os.path.isdir(os.path.join(path, "Annotations")):
        return path
    inner = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d, "Annotations"))) \
        if os.path.isdir(path) else []
    if len(inner) != 1:
        raise UserError("voc:%s: no Annotations/ folder (Pascal VOC's layout: Annotations/*.xml, JPEGImages/, "
                        "ImageSets/Main/)" % shown(path))
    return os.path.join(path, inner[0])


def parse_voc_xml(data):
    """(file name or None, [(name, box in 1-based inclusive pixels, difficult)]) of a VOC annotation's bytes;
    ValueError when it does not parse, or declares a DOCTYPE or ENTITY (expanded entities: billion laughs)."""
    import xml.etree.ElementTree as ET

    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValueError("it declares a DOCTYPE or ENTITY, which is refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError("not XML (%s)" % exc) from None
    if root.tag != "annotation":
        raise ValueError("not a VOC annotation (its root is <%s>)" % root.tag)
    objects = []
    for obj in root.iter("object"):
        name, box = (obj.findtext("name") or "").strip(), obj.find("bndbox")
        if not name or box is None:
            raise ValueError("an <object> without <name> or <bndbox>")
        coords = [float(box.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax")]
        if not np.all(np.isfinite(coords)):
            raise ValueError("a <bndbox> without xmin, ymin, xmax and ymax numbers")
        objects.append((name, coords, (obj.findtext("difficult") or "0").strip() == "1"))
    return (root.findtext("filename") or "").strip() or None, objects


def _voc_ids(root, seed):
    """(training ids, validation ids) from ImageSets/Main (train.txt and val.txt, or trainval.txt split here), or
    every annotation split here."""
    main = os.path.join(root, "ImageSets", "Main")

    def ids(name):
        with open(os.path.join(main, name), encoding="utf-8", errors="surrogateescape") as f:
            return [ln.split()[0] for ln in f if ln.strip()]

    if all(os.path.isfile(os.path.join(main, n)) for n in ("train.txt", "val.txt")):
        return ids("train.txt"), ids("val.txt")
    if os.path.isfile(os.path.join(main, "trainval.txt")):
        every = ids("trainval.txt")
    else:
        every = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(root, "Annotations"))
                       if f.lower().endswith(".xml"))
    if not every:
        raise UserError("voc:%s: no annotations (Annotations/*.xml)" % shown(root))
    train_idx, val_idx = seeded_split(len(every), seed)
    return [every[i] for i in train_idx], [every[i] for i in val_idx]


def read_voc(path, seed=0):
    """(labels, training records, validation records, report) of voc:PATH."""
    root = voc_root(path)
    report = Report("voc:%s" % shown(path))
    listed = os.path.join(root, "labels.txt")
    labels = None
    if os.path.isfile(listed):
        with open(listed, encoding="utf-8", errors="surrogateescape") as f:
            labels = [ln.strip() for ln in f if ln.strip()]
    parsed = []
    for side in _voc_ids(root, seed):
        found = []
        for id_ in side:
            xml = os.path.join(root, "Annotations", id_ + ".xml")
            try:
                with open(xml, "rb") as f:
                    name, objects = parse_voc_xml(f.read())
            except (OSError, ValueError) as exc:
                report.skip(xml, getattr(exc, "strerror", None) or str(exc))
                continue
            found.append((os.path.join(root, "JPEGImages", name or id_ + ".jpg"), objects, xml))
        parsed.append(found)
    names = sorted({o[0] for side in parsed for _, objects, _ in side for o in objects})
    labels = labels or names
    index = {name: i for i, name in enumerate(labels)}
    sides = []
    for side in parsed:
        records = []
        for image, objects, xml in side:
            for name, _, _ in objects:
                if name not in index:
                    raise UserError("%s: class %r is not in %s (%s)" % (shown(xml), printable(name), shown(listed),
                                                                        ", ".join(labels)))
            boxes = [(b[0] - 1.0, b[1] - 1.0, b[2], b[3]) for _, b, _ in objects]
            records.append(Record(image, boxes, [index[o[0]] for o in objects], [o[2] for o in objects]))
        sides.append(records)
    if not sides[0] or not labels:
        raise UserError("voc:%s: no training image with a readable annotation" % shown(path))
    return labels, sides[0], sides[1], report


# -- COCO -----------------------------------------------------------------------------------------------------
def coco_files(path):
    """(training JSON, validation JSON or None) of coco:PATH: the file given, or annotations/instances_*.json
    (or *.json) in the folder, train and val told apart by their names."""
    _must_exist(path, "coco", "an instances_*.json or the folder with annotations/")
    if os.path.isfile(path):
        return path, None
    for folder in (os.path.join(path, "annotations"), path):
        if os.path.isdir(folder):
            found = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(".json"))
            instances = [f for f in found if os.path.basename(f).startswith("instances_")] or found
            if instances:
                train = [f for f in instances if "train" in os.path.basename(f)]
                val = [f for f in instances if "val" in os.path.basename(f)]
                if train and val:
                    return train[0], val[0]
                if len(instances) == 1:
                    return instances[0], None
                raise UserError("coco:%s: several annotation files and none named train and val (give one: "
                                "coco:%s)" % (shown(path), shown(instances[0])))
    raise UserError("coco:%s: no annotations/instances_*.json" % shown(path))


def read_coco_json(file):
    """The JSON of a COCO instances file, checked to be one; UserError otherwise."""
    try:
        with open(file, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError("cannot read %s: %s" % (shown(file), printable(str(exc).splitlines()[0]))) from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list)
                                             for k in ("images", "annotations", "categories")):
        raise UserError("%s is not COCO instances JSON (it needs lists of images, annotations and categories)"
                        % shown(file))
    return data


def _coco_base(file, data):
    """The folder that the images' file_name values are relative to."""
    here = os.path.dirname(os.path.abspath(file))
    split = os.path.splitext(os.path.basename(file))[0].split("_", 1)[-1]
    up = os.path.dirname(here)
    candidates = [os.path.join(up, split), os.path.join(up, "images", split), os.path.join(up, "images"),
                  os.path.join(here, split), os.path.join(here, "images"), here, up]
    first = next((im.get("file_name") for im in data["images"] if isinstance(im, dict)), None)
    for base in candidates:
        if first and os.path.isfile(os.path.join(base, str(first))):
            return base
    return candidates[0]


def coco_labels(file, data):
    """(labels in order of category id, {category id: index}) of a COCO file."""
    try:
        cats = sorted((int(c["id"]), str(c["name"])) for c in data["categories"])
    except (KeyError, TypeError, ValueError):
        raise UserError("%s: a category without an id and a name" % shown(file)) from None
    if not cats:
        raise UserError("%s has no categories" % shown(file))
    return [name for _, name in cats], {cid: i for i, (cid, _) in enumerate(cats)}


def coco_records(file, data, index, report):
    """A Record per image of a COCO file (in the file's order), its images' paths resolved (_coco_base); images
    and annotations that lack what COCO gives them are skipped, named."""
    base = _coco_base(file, data)
    objects = collections.defaultdict(list)
    known = {im.get("id") for im in data["images"] if isinstance(im, dict)}
    for n, ann in enumerate(data["annotations"]):
        try:
            image_id, cid, bbox = ann["image_id"], int(ann["category_id"]), [float(v) for v in ann["bbox"]]
            if len(bbox) != 4:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            report.skip(file, "annotation %d (id %s) has no image_id, category_id and [x, y, w, h] bbox"
                        % (n, printable(ann.get("id") if isinstance(ann, dict) else "?")))
            continue
        if cid not in index:
            raise UserError("%s: annotation %s has category_id %d, which is not in its categories"
                            % (shown(file), printable(ann.get("id", n)), cid))
        if image_id not in known:
            raise UserError("%s: annotation %s is of image %s, which is not in its images"
                            % (shown(file), printable(ann.get("id", n)), printable(image_id)))
        x, y, w, h = bbox
        crowd = bool(ann.get("iscrowd", 0)) or bool(ann.get("ignore", 0))
        objects[image_id].append(((x, y, x + w, y + h), index[cid], crowd))
    records = []
    for im in data["images"]:
        if not isinstance(im, dict) or "file_name" not in im:
            report.skip(file, "an image entry without file_name")
            continue
        found = objects.get(im.get("id"), [])
        records.append(Record(os.path.join(base, str(im["file_name"])), [o[0] for o in found],
                              [o[1] for o in found], [o[2] for o in found]))
    return records


def read_coco(path, seed=0):
    """(labels, training records, validation records, report) of coco:PATH."""
    train_file, val_file = coco_files(path)
    report = Report("coco:%s" % shown(path))
    data = read_coco_json(train_file)
    labels, index = coco_labels(train_file, data)
    train = coco_records(train_file, data, index, report)
    if val_file is None:
        if not train:
            raise UserError("%s has no images" % shown(train_file))
        train_idx, val_idx = seeded_split(len(train), seed)
        return labels, [train[i] for i in train_idx], [train[i] for i in val_idx], report
    val_data = read_coco_json(val_file)
    val_labels, val_index = coco_labels(val_file, val_data)
    if val_labels != labels:
        raise UserError("%s and %s have different categories" % (shown(train_file), shown(val_file)))
    val = coco_records(val_file, val_data, val_index, report)
    if not train or not val:
        raise UserError("%s: no images" % shown(train_file if not train else val_file))
    return labels, train, val, report


READERS = {"yolo": read_yolo, "voc": read_voc, "coco": read_coco}


def check(kind, path):
    """Cheap validation of yolo:/voc:/coco:PATH (the layout's files are there); UserError otherwise."""
    if kind == "yolo":
        read_yolo_yaml(path)
    elif kind == "voc":
        voc_root(path)
    else:
        coco_files(path)


def load(kind, path, size=None, limit=None, seed=0, min_height=None):
    """A DetectionSet of yolo:/voc:/coco:PATH, its images in memory at their own sizes (RGB uint8, a list) and
    their targets in those images' pixels. limit: a seeded subset of the training images. size (w, h) and
    min_height: boxes under min_height pixels high at the detector's input size become ignore regions."""
    name = "%s:%s" % (kind, path)
    labels, train, val, report = READERS[kind](path, seed)
    total = len(train) + len(val) + report.skipped  # the files read, and those that did not parse
    if limit and limit < len(train):
        keep = np.sort(np.random.RandomState(seed).permutation(len(train))[:limit])
        train = [train[i] for i in keep]
    sides = [materialise(records, report, size, min_height) for records in (train, val)]
    report.summary(total)
    for side, what in zip(sides, ("training", "validation")):
        if not side[0]:
            raise UserError("%s: no readable %s image (%d skipped)" % (printable(name), what, report.skipped))
    boxes = sum(len(t.classes) for side in sides for t in side[1])
    notes = ["%s: %d training and %d validation images, %d boxes of %d classes"
             % (printable(name), len(sides[0][0]), len(sides[1][0]), boxes, len(labels))]
    return DetectionSet(name, labels, DetectionSplit(*sides[0]), DetectionSplit(*sides[1]), notes)
