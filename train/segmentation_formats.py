"""Segmentation datasets from disk: folders of image/mask pairs, as Cityscapes, CamVid and Mapillary ship them,
read into memory as a SegmentationSet (train/freespace.py). train/datasets.py names them `masks:PATH`.

    PATH/images/...    the frames (.jpg, .png, .bmp, .tif, .webp), in subfolders or not
    PATH/masks/...     a PNG mask per frame, at the same relative path with the same stem: images/a/b.jpg pairs
                       with masks/a/b.png; each pixel a class index (one channel, 8 or 16 bits), or, where
                       labels.json gives colors, a colour of its colour map (RGB)
    PATH/labels.json   the classes, which are free space, and how masks say them (below)

A given split is used as it is: PATH/train/ and PATH/val/, each with images/ and masks/; or images/train/,
images/val/, masks/train/ and masks/val/ (Cityscapes' leftImg8bit/ and gtFine/ as images/ and masks/; any other
subfolder, such as test/, is not read). Otherwise a seeded fifth of the pairs is held out. labels.json:

    {"classes": ["road", "sidewalk", "car"],        the names, in class-index order (2 to 255 of them)
     "drivable": ["road"],                           the free-space classes, by name (or index)
     "ignore": 255,                                  masks of class indices: the value that is no class (default
                                                     255, Cityscapes' trainId ignore; null: none)
     "colors": {"road": [128, 64, 128], ...},        optional: masks are RGB colour images, a colour per class
     "ignore_colors": [[0, 0, 0]],                   with colors: the colours that are no class (default none)
     "image_suffix": "_leftImg8bit",                 optional, for names such as Cityscapes': left out of an image's
     "mask_suffix": "_gtFine_labelTrainIds"}         stem, and of a mask's (only the PNGs named so are masks)

Pixels that are no class (ignore): each takes the class of the nearest labelled pixel of its mask (fill_ignored), so
that every mask holds class indices, and the set's `ignored` keeps where they were (per split, N x H x W bool, or
None): training weighs them 0 and the held-out IoU leaves them out (train/freespace.py).

Every frame and mask is resized to one size, the same for both splits: the first readable training pair's, made
smaller (aspect kept) where it has more than STORE_PIXELS pixels (the procedural road's 320x180); frames with
INTER_AREA, masks by the nearest pixel (runtime.preprocess.nearest_indices, the centre rule), so the arrays stack
and stay small. The runtime's preprocessing then resizes them to the network's input, as for road-freespace.

A dataset that cannot be used (no such folder, no images/ or masks/, labels.json missing or wrong, no usable pair
left on a side) is one line (UserError: exit status 2). A pair that cannot be used is skipped, the first SHOWN
named in a warning line each, and counted in the set's notes by why: an image without a mask (and a mask without
an image), an unreadable image or mask, a mask of another size than its image, a class index beyond the classes,
a colour not in the map, a mask of the other kind, a mask with no labelled pixel. --limit caps the training pairs
read (a seeded subset), and the held-out ones at max(VAL_LEAST, limit // 4).
"""

from __future__ import annotations

import collections
import json
import os
import sys

import numpy as np

from runtime import images as image_io
from runtime.errors import UserError, printable, require
from runtime.preprocess import nearest_indices

from .detection_formats import IMAGE_EXTS, VAL_FRACTION

LABELS_FILE = "labels.json"
MASK_EXT = ".png"
IGNORE = 255  # labels.json's default ignore value, and the mark of a pixel that is no class while reading
STORE_PIXELS = 320 * 180  # frames and masks are kept at most this many pixels (road-freespace's frames)
VAL_LEAST = 100  # with --limit, the held-out pairs are capped at max(VAL_LEAST, limit // 4)
SHOWN = 20  # skipped pairs named in a warning line each; the rest counted
KEYS = ("classes", "drivable", "ignore", "colors", "ignore_colors", "image_suffix", "mask_suffix")
FORMAT = ('{"classes": ["road", "car", ...], "drivable": ["road"]} (optional: "ignore": 255, "colors": '
          '{"road": [128, 64, 128], ...}, "ignore_colors", "image_suffix", "mask_suffix")')
LAYOUT = ("PATH/images/ and PATH/masks/, a PNG mask of the same name per image, with PATH/labels.json; or "
          "PATH/train/ and PATH/val/ each holding images/ and masks/")

# why a pair was skipped, as the notes count it
REASONS = collections.OrderedDict([
    ("no mask", "image(s) without a mask"), ("no image", "mask(s) without an image"),
    ("same name", "file(s) of a name that several images or masks have"), ("image", "unreadable image(s)"),
    ("mask", "unreadable mask(s)"), ("size", "mask(s) of another size than their image"),
    ("class", "mask(s) with a class index beyond the classes"), ("colour", "mask(s) with a colour not in colors"),
    ("kind", "mask(s) of the other kind (colour or class indices)"),
    ("unlabelled", "mask(s) with no labelled pixel"),
])


class Labels:
    """labels.json, checked: classes (names), drivable (indices), ignore (a value or None), colors (None, or
    {(r, g, b): class index, or IGNORE for an ignore colour}), the suffixes, and the file."""

    def __init__(self, file, classes, drivable, ignore=IGNORE, colors=None, image_suffix="", mask_suffix=""):
        self.file, self.classes, self.drivable, self.ignore = file, classes, drivable, ignore
        self.colors, self.image_suffix, self.mask_suffix = colors, image_suffix, mask_suffix


class _Bad(Exception):
    """A pair that cannot be used: why (REASONS' key), which file, in words."""

    def __init__(self, key, path, why):
        super().__init__(why)
        self.key, self.path, self.why = key, path, why


def _wrong(file, what):
    return UserError("%s: %s; it should be %s" % (image_io.shown(file), what, FORMAT))


def _string_list(value):
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def _rgb(value):
    return isinstance(value, list) and len(value) == 3 and all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)


def _drivable(file, classes, given):
    """The drivable classes' indices, sorted, from their names (or indices)."""
    if not isinstance(given, list) or not given:
        raise _wrong(file, "drivable must list the free-space classes (at least one)")
    found = set()
    for d in given:
        if isinstance(d, str) and d in classes:
            found.add(classes.index(d))
        elif isinstance(d, int) and not isinstance(d, bool) and 0 <= d < len(classes):
            found.add(d)
        else:
            raise _wrong(file, "drivable class %s is not one of the classes (%s)"
                         % (printable(json.dumps(d)), printable(", ".join(classes))))
    return sorted(found)


def _colors(file, classes, data):
    """{(r, g, b): class index or IGNORE} of colors and ignore_colors."""
    colors, ignore = data["colors"], data.get("ignore_colors", [])
    if not isinstance(colors, dict) or set(colors) != set(classes) or not all(_rgb(c) for c in colors.values()):
        missing = sorted(set(classes) - set(colors)) if isinstance(colors, dict) else []
        extra = sorted(set(colors) - set(classes)) if isinstance(colors, dict) else []
        raise _wrong(file, "colors must give every class an [R, G, B] of 0..255%s%s" % (
            " (missing: %s)" % printable(", ".join(missing)) if missing else "",
            " (not classes: %s)" % printable(", ".join(extra)) if extra else ""))
    if not isinstance(ignore, list) or not all(_rgb(c) for c in ignore):
        raise _wrong(file, "ignore_colors must be a list of [R, G, B] colours")
    table = {}
    for name in classes:
        table.setdefault(tuple(colors[name]), []).append(name)
    for rgb in ignore:
        table.setdefault(tuple(rgb), []).append("ignore_colors")
    same = next((names for names in table.values() if len(names) > 1), None)
    if same:
        raise _wrong(file, "%s have the same colour" % printable(" and ".join(same)))
    return {rgb: (classes.index(names[0]) if names[0] in classes else IGNORE) for rgb, names in table.items()}


def read_labels(path):
    """PATH/labels.json as Labels; UserError in one line for one that is missing, does not parse or is wrong."""
    file = os.path.join(path, LABELS_FILE)
    if not os.path.isfile(file):
        raise UserError("masks:%s: no %s (it names the classes: %s)" % (image_io.shown(path), LABELS_FILE, FORMAT))
    try:
        with open(file, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not UTF-8, or not JSON
        reason = getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError("cannot read %s: %s" % (image_io.shown(file), printable(reason))) from None
    if not isinstance(data, dict):
        raise _wrong(file, "not a JSON object")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise _wrong(file, "unknown key(s) %s" % printable(", ".join(unknown)))
    classes = data.get("classes")
    if not _string_list(classes) or not 2 <= len(classes) <= 255 or len(set(classes)) != len(classes):
        raise _wrong(file, "classes must list 2 to 255 different names, in class-index order")
    drivable = _drivable(file, classes, data.get("drivable"))
    for key in ("image_suffix", "mask_suffix"):
        if not isinstance(data.get(key, ""), str):
            raise _wrong(file, "%s must be text" % key)
    suffixes = data.get("image_suffix", ""), data.get("mask_suffix", "")
    if "colors" in data:
        if "ignore" in data:
            raise _wrong(file, "ignore is a value of masks of class indices; colour masks use ignore_colors")
        return Labels(file, classes, drivable, None, _colors(file, classes, data), *suffixes)
    if "ignore_colors" in data:
        raise _wrong(file, "ignore_colors needs colors (masks of class indices use ignore: a value)")
    ignore = data.get("ignore", IGNORE)
    if ignore is not None and (not isinstance(ignore, int) or isinstance(ignore, bool)
                               or not len(classes) <= ignore <= 65535):
        raise _wrong(file, "ignore must be a pixel value that is no class index (%d to 65535) or null"
                     % len(classes))
    return Labels(file, classes, drivable, ignore, None, *suffixes)


def layout(path):
    """[(images folder, masks folder)] of masks:PATH: one (to split here), or two (train, val) where PATH gives
    them. UserError in one line when there is no such folder or it has neither layout."""
    if not path:
        raise UserError("masks: needs a path, as in masks:data/roads (%s)" % LAYOUT)
    if not os.path.isdir(path):
        raise UserError("masks:%s: no such folder (give %s)" % (image_io.shown(path), LAYOUT))

    def both(*pair):
        return list(pair) if all(os.path.isdir(p) for p in pair) else None

    split = [both(os.path.join(path, s, "images"), os.path.join(path, s, "masks")) for s in ("train", "val")]
    cityscapes = [both(os.path.join(path, "images", s), os.path.join(path, "masks", s)) for s in ("train", "val")]
    if all(split):
        return split
    if all(cityscapes):
        return cityscapes
    if split[1]:
        raise UserError("masks:%s: val/ but no train/ with images/ and masks/ (%s)" % (image_io.shown(path), LAYOUT))
    if split[0]:  # PATH/train/ alone: split here
        return [split[0]]
    pooled = [os.path.join(path, "images"), os.path.join(path, "masks")]
    missing = [os.path.basename(p) + "/" for p in pooled if not os.path.isdir(p)]
    if missing:
        raise UserError("masks:%s: no %s folder (the layout: %s)" % (image_io.shown(path), " or ".join(missing),
                                                                      LAYOUT))
    return [pooled]


def check(path):
    """Cheap validation of masks:PATH (its folders and labels.json, nothing read of the images); UserError
    otherwise. Returns (Labels, layout(path))."""
    sides = layout(path)
    return read_labels(path), sides


def _loops(here, folder):
    """Whether folder (in here, the real path of its parent) is a link to here or a folder above it."""
    if not os.path.islink(folder):
        return False
    target = os.path.realpath(folder)
    return here == target or here.startswith(target.rstrip(os.sep) + os.sep)


def _files(top, exts, suffix, only_suffixed):
    """({key: file}, {key: [files]} where several files have the key) of the files under top named with one of
    exts: the key is the relative path without the extension (and without suffix where the stem ends with it;
    with only_suffixed, files without it are left out). Hidden names (.DS_Store, ._x.jpg) are left out; linked
    folders are followed, but for one that links to itself or a folder above it."""
    found = collections.defaultdict(list)
    for folder, dirs, names in os.walk(top, followlinks=True):
        here = os.path.realpath(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _loops(here, os.path.join(folder, d)))
        for name in sorted(n for n in names if not n.startswith(".")):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in exts:
                continue
            if suffix and stem.endswith(suffix):
                stem = stem[:-len(suffix)]
            elif suffix and only_suffixed:
                continue
            found[os.path.relpath(os.path.join(folder, stem), top)].append(os.path.join(folder, name))
    return ({k: v[0] for k, v in found.items() if len(v) == 1},
            {k: v for k, v in found.items() if len(v) > 1})


class Report:
    """Skipped pairs: the first SHOWN named as they go, all counted by why."""

    def __init__(self, name):
        self.name, self.counts = name, collections.Counter()

    def skip(self, key, path, why):
        self.counts[key] += 1
        shown = sum(self.counts.values())
        if shown <= SHOWN:
            print("warning: skipping %s: %s" % (image_io.shown(path), printable(why)), file=sys.stderr)
        if shown == SHOWN:
            print("warning: %s: further skipped pairs are counted, not named" % self.name, file=sys.stderr)

    @property
    def skipped(self):
        return sum(self.counts.values())

    def note(self):
        """One line: how many pairs were skipped, by why; None when none was."""
        if not self.counts:
            return None
        return "%s: skipped %d pair(s): %s" % (self.name, self.skipped, ", ".join(
            "%d %s" % (self.counts[k], what) for k, what in REASONS.items() if self.counts[k]))


def pairs(images_dir, masks_dir, labels, report):
    """The sorted (image, mask) files of one images/ and masks/ folder; the unpaired reported, and files of a
    name that several images (a.jpg and a.png) or masks (a.png and a.PNG) have: which pairs with which?"""
    frames, several = _files(images_dir, IMAGE_EXTS, labels.image_suffix, False)
    masks, several_masks = _files(masks_dir, (MASK_EXT,), labels.mask_suffix, bool(labels.mask_suffix))
    for key in sorted(set(several) | set(several_masks)):
        files = several.get(key, []) + several_masks.get(key, [])  # and the one file on the other side, if any
        files += [side.pop(key) for side in (frames, masks) if key in side]
        for file in files:
            report.skip("same name", file, "%s has several files: which pairs with which is not known"
                        % image_io.shown(key))
    for key in sorted(frames):
        if key not in masks:
            report.skip("no mask", frames[key], "no mask %s" % image_io.shown(
                os.path.join(masks_dir, key + labels.mask_suffix + MASK_EXT)))
    for key in sorted(masks):
        if key not in frames:
            report.skip("no image", masks[key], "a mask without an image in %s" % image_io.shown(images_dir))
    return [(frames[k], masks[k]) for k in sorted(frames) if k in masks]


def read_mask(path):
    """A mask file as OpenCV decodes it unchanged (H x W, or H x W x 3/4 BGR(A); uint8 or uint16), for a name of
    any bytes and within the pixel budget, as runtime.images.read_image reads images. ImageError otherwise."""
    budget = image_io.max_pixels()
    most = 8 * budget + (64 << 20)  # read_image's bound: 16-bit RGBA, uncompressed, with room for metadata
    try:
        with image_io.open_regular(path) as f:
            try:
                size = image_io.image_size(f)
            except ValueError:  # left to OpenCV, as read_image does
                size = None
            why = image_io.over_budget(size[0], size[1], budget) if size else None
            if why or os.fstat(f.fileno()).st_size > most:
                raise image_io.TooLarge(path, why or "the file is larger than an image within the pixel budget "
                                                     "takes (%s)" % image_io.HOW_TO_RAISE)
            f.seek(0)
            data = f.read()
    except image_io.NotAFile as exc:
        raise image_io.ImageError(path, "%s, not an image file" % exc) from None
    except OSError as exc:
        raise image_io.ImageError(path, exc.strerror or str(exc)) from None
    cv2 = require("cv2", "opencv", "reading masks")
    try:
        mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    except cv2.error:  # OpenCV's own limit among its reasons
        mask = None
    if mask is None:
        raise image_io.ImageError(path, "corrupt or not an image")
    why = None if size else image_io.over_budget(mask.shape[1], mask.shape[0], budget)
    if why:
        raise image_io.TooLarge(path, why)
    return mask


def _where(bad):
    y, x = np.argwhere(bad)[0]
    return "at x=%d, y=%d" % (x, y)


def class_indices(mask, labels, path):
    """A decoded mask as class indices (uint8 H x W, IGNORE where no class); _Bad for a class index beyond the
    classes, a colour not in the map, or a mask of the other kind."""
    n = len(labels.classes)
    if labels.colors is None:
        if mask.ndim == 3 and mask.shape[2] in (3, 4) and np.array_equal(mask[..., 0], mask[..., 1]) \
                and np.array_equal(mask[..., 0], mask[..., 2]):
            mask = mask[..., 0]  # a grey mask saved as colour
        if mask.ndim != 2:
            raise _Bad("kind", path, "a colour mask, but %s gives no colors (a mask of class indices has one "
                                     "channel)" % LABELS_FILE)
        known, ignored = mask < n, (mask == labels.ignore) if labels.ignore is not None else False
        bad = ~(known | ignored)
        if bad.any():
            raise _Bad("class", path, "value %d %s is no class (0..%d)%s" % (
                mask[bad].max(), _where(bad), n - 1, "" if labels.ignore is None else
                " and not ignore (%d)" % labels.ignore))
        return np.where(known, mask, IGNORE).astype(np.uint8)
    if mask.ndim != 3 or mask.shape[2] not in (3, 4) or mask.dtype != np.uint8:
        raise _Bad("kind", path, "%s gives colors, but this mask is not an 8-bit colour image" % LABELS_FILE)
    rgb = mask[..., 2::-1].astype(np.int32)  # BGR or BGRA -> RGB
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    table = sorted(((r << 16) | (g << 8) | b, c) for (r, g, b), c in labels.colors.items())
    keys, values = np.array([k for k, _ in table]), np.array([v for _, v in table], np.uint8)
    at = np.minimum(np.searchsorted(keys, code), len(keys) - 1)
    bad = keys[at] != code
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise _Bad("colour", path, "colour %s %s is not in %s's colors" % (list(rgb[y, x]), _where(bad),
                                                                           LABELS_FILE))
    return values[at]


def read_pair(image, mask, labels):
    """(frame uint8 BGR, class indices uint8 with IGNORE) of a pair at its own size; _Bad when it cannot be used."""
    try:
        frame = image_io.read_image(image)
    except image_io.ImageError as exc:
        raise _Bad("image", image, exc.why) from None
    try:
        raw = read_mask(mask)
    except image_io.ImageError as exc:
        raise _Bad("mask", mask, exc.why) from None
    if raw.shape[:2] != frame.shape[:2]:
        raise _Bad("size", mask, "the mask is %dx%d, its image %s %dx%d" % (
            raw.shape[1], raw.shape[0], image_io.shown(image), frame.shape[1], frame.shape[0]))
    return frame, class_indices(raw, labels, mask)


def fill_ignored(mask, hole):
    """mask with each pixel of hole given the class of the nearest pixel outside it (Euclidean distance)."""
    import cv2

    _, nearest = cv2.distanceTransformWithLabels(hole.astype(np.uint8), cv2.DIST_L2, 5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    filled = mask.copy()
    filled[hole] = mask[~hole][nearest[hole] - 1]  # the labels number the pixels outside hole in raster order
    return filled


def store_size(width, height):
    """The size frames are kept at: theirs, made smaller (aspect kept) to at most STORE_PIXELS pixels."""
    if width * height <= STORE_PIXELS:
        return width, height
    scale = (STORE_PIXELS / float(width * height)) ** 0.5
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def read_side(found, labels, report, size=None):
    """(frames N x H x W x 3 BGR, masks N x H x W, ignored N x H x W bool or None, ignore pixels, size) of the
    pairs that can be used, at size (None: store_size of the first one's)."""
    import cv2

    frames = masks = ignored = None
    n = holes = 0
    for image, mask in found:
        try:
            frame, index = read_pair(image, mask, labels)
        except _Bad as exc:
            report.skip(exc.key, exc.path, exc.why)
            continue
        if size is None:
            size = store_size(frame.shape[1], frame.shape[0])
        if frames is None:  # np.empty and np.zeros take memory as it is written: skipped pairs cost nothing
            frames = np.empty((len(found), size[1], size[0], 3), np.uint8)
            masks = np.empty((len(found), size[1], size[0]), np.uint8)
        if frame.shape[:2] != (size[1], size[0]):
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            index = index[nearest_indices(index.shape[0], size[1])[:, None], nearest_indices(index.shape[1], size[0])]
        hole = index == IGNORE
        if hole.all():
            report.skip("unlabelled", mask, "no pixel of it is a class (all ignore)")
            continue
        if hole.any():
            if ignored is None:
                ignored = np.zeros(masks.shape, bool)
            ignored[n], index, holes = hole, fill_ignored(index, hole), holes + int(hole.sum())
        frames[n], masks[n] = frame, index
        n += 1
    if n == 0:
        return None, None, None, 0, size
    return frames[:n], masks[:n], None if ignored is None else ignored[:n], holes, size


def _subset(items, most, seed):
    """A seeded subset of at most `most` items, in their order (all of them without a cap)."""
    if not most or most >= len(items):
        return list(items)
    return [items[i] for i in np.sort(np.random.RandomState(seed).permutation(len(items))[:most])]


def _split(path, labels, sides, report, seed):
    """(training pairs, held-out pairs, how they were split) of the layout's sides."""
    found = [pairs(images, masks, labels, report) for images, masks in sides]
    if len(found) == 2:
        return found[0], found[1], "train/ and val/ as given"
    every = found[0]
    if len(every) < 2:
        raise UserError("masks:%s: %d image/mask pair(s) (%s); at least 2 are needed to hold some back for "
                        "validation%s" % (image_io.shown(path), len(every), LAYOUT,
                                          "; " + report.note() if report.skipped else ""))
    order = np.random.RandomState(seed).permutation(len(every))
    k = max(1, int(round(len(every) * VAL_FRACTION)))
    return ([every[i] for i in np.sort(order[k:])], [every[i] for i in np.sort(order[:k])],
            "a seeded %d%% held out" % round(100 * VAL_FRACTION))


def load(path, limit=None, seed=0):
    """masks:PATH as a SegmentationSet (train/freespace.py), with `ignored` (train, val) beside it. limit: a
    seeded subset of the training pairs, and the held-out ones capped at max(VAL_LEAST, limit // 4)."""
    from .freespace import SegmentationSet

    labels, sides = check(path)
    name = "masks:%s" % image_io.shown(path)
    report = Report(name)
    train, val, how = _split(path, labels, sides, report, seed)
    train = _subset(train, limit, seed)
    val = _subset(val, max(VAL_LEAST, limit // 4) if limit else None, seed)
    read = []
    size = None
    for side, what in ((train, "training"), (val, "held-out")):
        frames, masks, ignored, holes, size = read_side(side, labels, report, size)
        if frames is None:
            raise UserError("%s: no usable %s pair (%d found)%s" % (name, what, len(side),
                                                                    "; " + report.note() if report.skipped else ""))
        read.append((frames, masks, ignored, holes))
    (train_frames, train_masks, train_ignored, holes), (val_frames, val_masks, val_ignored, _) = read
    notes = ["%s: %d training and %d held-out pairs (%s), kept at %dx%d, %d classes, drivable: %s"
             % ((name, len(train_frames), len(val_frames), how) + tuple(size)
                + (len(labels.classes), printable(", ".join(labels.classes[d] for d in labels.drivable))))]
    if report.skipped:
        notes.append(report.note())
    if holes:
        notes.append("%s: %.1f%% of the training pixels are no class (ignore), each given its nearest labelled "
                      "pixel's class: the loss has no ignore" % (name, 100.0 * holes / train_masks.size))
    dataset = SegmentationSet(name, [printable(c) for c in labels.classes], labels.drivable,
                              (train_frames, train_masks), (val_frames, val_masks), notes)
    dataset.ignored = (train_ignored, val_ignored)
    return dataset
