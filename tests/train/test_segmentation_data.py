"""Segmentation data from disk (issue 32): `--data masks:PATH`, folders of image/mask pairs written here (PNG masks
of class indices, or colours with a colour map; pooled and split by seed, or train/ and val/ as given, Cityscapes'
layout and names among them), read back aligned; pixels that are no class filled from their nearest labelled pixel;
bad pairs skipped, named and counted; every unusable dataset one line with exit status 2; and a freespace run on
such a folder end to end."""

import json
import os

import numpy as np
import pytest

from runtime.errors import UserError
from runtime.images import write_image
from tests.conftest import _train, cli, one_line_error
from train import datasets, models, segmentation_formats

CLASSES = ["sky", "road", "car"]
COLORS = {"sky": [70, 130, 180], "road": [128, 64, 128], "car": [0, 0, 142]}  # RGB, as Cityscapes gives them
PALETTE = np.array([[180, 130, 70], [128, 64, 128], [142, 0, 0]], np.uint8)  # the frames' BGR per class


def _mask(i, width=32, height=24):
    """Pair i's class indices: sky above a horizon that depends on i, road below, a car in the top right."""
    mask = np.ones((height, width), np.uint8)
    mask[:4 + i % 12] = 0
    mask[2:6, width // 2:] = 2
    return mask


def _write(root, rel, mask, colours=False, frame=None, suffixes=("", "")):
    """images/rel.png (the palette's colour of each class, or frame) and masks/rel.png (the mask's indices, or
    their COLORS)."""
    image = os.path.join(root, "images", rel + suffixes[0] + ".png")
    target = os.path.join(root, "masks", rel + suffixes[1] + ".png")
    for path in (image, target):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    write_image(image, PALETTE[np.minimum(mask, 2)] if frame is None else frame)
    if colours:
        rgb = np.array([COLORS[c] for c in CLASSES] + [[0, 0, 0]] * 253, np.uint8)[mask]
        write_image(target, np.ascontiguousarray(rgb[..., ::-1]))
    else:
        write_image(target, mask)
    return image, target


def _labels(root, **settings):
    data = dict({"classes": CLASSES, "drivable": ["road"]}, **settings)
    with open(os.path.join(root, "labels.json"), "w") as f:
        json.dump(data, f)


def _folder(root, n=10, colours=False, **settings):
    """n pairs in PATH/images and PATH/masks, half of them in a subfolder, and labels.json."""
    for i in range(n):
        _write(root, ("city/%02d" if i % 2 else "%02d") % i, _mask(i), colours)
    _labels(root, **(dict({"colors": COLORS}, **settings) if colours else settings))
    return root


def _ignored(data):
    """Where the masks of both splits (training first) had pixels of no class."""
    return np.concatenate([np.zeros(side[1].shape, bool) if where is None else where
                           for where, side in zip(data.ignored, (data.train, data.val))])


def _aligned(split):
    """Every frame is its mask's palette: the pairs stayed together."""
    frames, masks = split
    return np.array_equal(frames, PALETTE[masks])


def test_masks_of_class_indices_pair_by_name_and_split_by_seed(tmp_path):
    root = _folder(str(tmp_path))
    assert datasets.check("masks:" + root, models.get("freespace")) == "segmentation"
    with pytest.raises(UserError, match="pilotnet is a steering model but masks:.* is a segmentation dataset"):
        datasets.check("masks:" + root, models.get("pilotnet"))
    data = datasets.load("masks:" + root, models.get("freespace"), seed=3)
    assert data.task == "segmentation" and data.labels == CLASSES and data.drivable == [1]
    frames, masks = data.train
    assert frames.shape == (8, 24, 32, 3) and frames.dtype == masks.dtype == np.uint8 and masks.shape == (8, 24, 32)
    assert len(data.val[0]) == 2 and _aligned(data.train) and _aligned(data.val)
    assert data.ignored == (None, None) and len(data.raw_samples) == 2 and len(data.sample_targets[0]["shares"]) == 3
    assert "8 training and 2 held-out pairs (a seeded 20% held out), kept at 32x24, 3 classes, drivable: road" \
        in data.notes[0]
    again, other = (datasets.load("masks:" + root, models.get("freespace"), seed=s) for s in (3, 4))
    assert np.array_equal(again.val[1], data.val[1]) and not np.array_equal(other.val[1], data.val[1])
    every = {m.tobytes() for m in np.concatenate([data.train[1], data.val[1]])}
    assert every == {_mask(i).tobytes() for i in range(10)}  # each pair once, on one side


def test_colour_masks_map_by_exact_colour_and_ignore_colours_are_no_class(tmp_path):
    root = str(tmp_path)
    for i in range(4):
        mask = _mask(i)
        if i == 0:
            mask[:, :3] = 3  # black, an ignore colour: the left edge
        _write(root, "%d" % i, mask, colours=True, frame=PALETTE[np.minimum(_mask(i), 2)])
    _labels(root, colors=COLORS, ignore_colors=[[0, 0, 0]])
    data = segmentation_formats.load(root, seed=0)
    masks = np.concatenate([data.train[1], data.val[1]])
    assert sorted(m.tobytes() for m in masks) == sorted(_mask(i).tobytes() for i in range(4))  # filled from x=3
    ignored = _ignored(data)
    k = int(np.argmax(ignored.any(axis=(1, 2))))
    assert ignored.sum() == 24 * 3 and ignored[k, :, :3].all() and np.array_equal(masks[k], _mask(0))
    _write(root, "4", _mask(4), colours=True)
    write_image(os.path.join(root, "masks", "4.png"), np.full((24, 32, 3), 7, np.uint8))  # a colour not in colors
    data = segmentation_formats.load(root, seed=0)
    assert "skipped 1 pair(s): 1 mask(s) with a colour not in colors" in data.notes[1]


def test_ignore_pixels_take_their_nearest_labelled_pixels_class_and_are_kept_aside(tmp_path, capsys):
    root = _folder(str(tmp_path), n=4, ignore=200)
    mask = _mask(0)
    mask[:, 30:] = 200  # the right edge, beside sky, car and road: each row takes its own
    mask[20:, :] = 200  # the bottom rows, under road
    _write(root, "00", mask, frame=PALETTE[_mask(0)])
    _write(root, "none", np.full((24, 32), 200, np.uint8))  # nothing labelled
    data = segmentation_formats.load(root, seed=0)
    assert "1 mask(s) with no labelled pixel" in data.notes[1]
    assert "none.png: no pixel of it is a class" in capsys.readouterr().err
    masks, ignored = np.concatenate([data.train[1], data.val[1]]), _ignored(data)
    k = int(np.argmax(ignored.any(axis=(1, 2))))
    assert np.array_equal(masks[k], _mask(0)) and np.array_equal(ignored[k], mask == 200)
    assert ignored.sum() == ignored[k].sum() == 168 and "are no class (ignore)" in " ".join(data.notes)


def test_given_splits_are_kept_cityscapes_layout_and_names_too(tmp_path):
    root = str(tmp_path / "split")
    for i in range(3):
        _write(os.path.join(root, "train"), "%d" % i, _mask(i))
    _write(os.path.join(root, "val"), "v", _mask(5))
    _labels(root)
    data = segmentation_formats.load(root, seed=0)
    assert len(data.train[0]) == 3 and np.array_equal(data.val[1], [_mask(5)]) and "train/ and val/ as given" \
        in data.notes[0]

    root = str(tmp_path / "cityscapes")  # leftImg8bit/ as images/, gtFine/ as masks/, each with train/ val/ test/
    names = ("_leftImg8bit", "_gtFine_labelTrainIds")
    for side, count in (("train", 3), ("val", 2), ("test", 2)):
        for i in range(count):
            _write(root, "%s/aachen/aachen_%06d" % (side, i), _mask(i), suffixes=names)
            write_image(os.path.join(root, "masks", side, "aachen", "aachen_%06d_gtFine_color.png" % i),
                        np.zeros((24, 32, 3), np.uint8))  # beside it, as Cityscapes ships them: not a mask here
    _labels(root, image_suffix=names[0], mask_suffix=names[1])
    for folder, link in (("images", "leftImg8bit"), ("masks", "gtFine")):  # linked to, as one would
        os.rename(os.path.join(root, folder), os.path.join(root, link))
        os.symlink(link, os.path.join(root, folder))
    os.symlink(os.path.join("..", ".."), os.path.join(root, "leftImg8bit", "train", "loop"))  # never walked round
    data = segmentation_formats.load(root, seed=0)
    assert (len(data.train[0]), len(data.val[0])) == (3, 2) and len(data.notes) == 1  # nothing skipped
    assert _aligned(data.train) and _aligned(data.val)

    root = str(tmp_path / "trainonly")  # train/ alone: split here
    for i in range(5):
        _write(os.path.join(root, "train"), "%d" % i, _mask(i))
    _labels(root)
    data = segmentation_formats.load(root)
    assert len(data.train[0]) == 4 and "a seeded 20% held out" in data.notes[0]


def test_frames_of_other_sizes_are_resized_to_the_first_and_large_ones_kept_small(tmp_path, monkeypatch):
    root = str(tmp_path)
    _write(root, "a", _mask(0))
    big = _mask(1, 64, 48)
    _write(root, "b", big)
    _write(root, "c", _mask(2, 40, 20))
    _labels(root)
    data = segmentation_formats.load(root, seed=0)
    frames, masks = (np.concatenate(x) for x in zip(data.train, data.val))
    assert frames.shape == (3, 24, 32, 3) and set(np.unique(masks)) <= {0, 1, 2}
    assert any(np.array_equal(m, big[1::2, 1::2]) for m in masks)  # nearest, by pixel centres: every other one
    monkeypatch.setattr(segmentation_formats, "STORE_PIXELS", 16 * 12)
    assert segmentation_formats.store_size(64, 48) == (16, 12) and segmentation_formats.store_size(10, 5) == (10, 5)
    small = segmentation_formats.load(root, seed=0)
    assert small.train[0].shape[1:] == (12, 16, 3) and "kept at 16x12" in small.notes[0]


def test_bad_pairs_are_skipped_named_and_counted(tmp_path, capsys):
    root = _folder(str(tmp_path), n=6)
    _write(root, "x", _mask(0))
    os.remove(os.path.join(root, "masks", "x.png"))  # an image without a mask
    _write(root, "y", _mask(0))
    os.remove(os.path.join(root, "images", "y.png"))  # a mask without an image
    _write(root, "01", _mask(1), frame=PALETTE[_mask(1)])  # 01.png and city/01.png are two names: both fine
    write_image(os.path.join(root, "images", "02.jpg"), PALETTE[_mask(2)])  # 02.png and 02.jpg: which is 02's?
    _write(root, "broken_image", _mask(0))
    with open(os.path.join(root, "images", "broken_image.png"), "wb") as f:
        f.write(b"\x89PNG not really")
    _write(root, "broken_mask", _mask(0))
    with open(os.path.join(root, "masks", "broken_mask.png"), "wb") as f:
        f.write(b"")
    _write(root, "size", _mask(0), frame=np.zeros((20, 32, 3), np.uint8))  # the image is 32x20
    beyond = _mask(0)
    beyond[3, 5] = 7
    _write(root, "beyond", beyond)
    _write(root, "colour", _mask(0))
    write_image(os.path.join(root, "masks", "colour.png"), PALETTE[_mask(0)])  # colour, but no colors
    os.mkfifo(os.path.join(root, "images", "fifo.png"))  # named like an image, a FIFO: never opened to wait
    write_image(os.path.join(root, "masks", "fifo.png"), _mask(0))
    data = segmentation_formats.load(root, seed=0)
    err = capsys.readouterr().err
    assert len(data.train[0]) + len(data.val[0]) == 6 and _aligned(data.train) and _aligned(data.val)
    assert data.notes[1] == ("masks:%s: skipped 11 pair(s): 1 image(s) without a mask, 1 mask(s) without an image, "
                             "3 file(s) of a name that several images or masks have, 2 unreadable image(s), "
                             "1 unreadable mask(s), 1 mask(s) of another size than their image, "
                             "1 mask(s) with a class index beyond the classes, "
                             "1 mask(s) of the other kind (colour or class indices)" % root)
    for words in ("x.png: no mask", "y.png: a mask without an image", "02.jpg: 02 has several files",
                  os.path.join("masks", "02.png: 02 has several files"),
                  "broken_image.png: corrupt", "fifo.png: it is a FIFO", "size.png: the mask is 32x24, its image",
                  "beyond.png: value 7 at x=5, y=3 is no class (0..2) and not ignore (255)",
                  "colour.png: a colour mask, but labels.json gives no colors"):
        assert words in err, (words, err)


def test_non_utf8_names_are_read_and_shown_escaped(tmp_path, capsys):
    root = _folder(str(tmp_path), n=3)
    _write(root, "caf\udce9", _mask(4))  # Latin-1 bytes, not UTF-8
    write_image(os.path.join(root, "images", "\udcff\udcfe.png"), PALETTE[_mask(0)])  # without a mask
    data = segmentation_formats.load(root, seed=0)
    assert "\\xff\\xfe.png: no mask" in capsys.readouterr().err
    assert len(data.train[0]) + len(data.val[0]) == 4 and "1 image(s) without a mask" in data.notes[1]
    data.notes[1].encode("utf-8")  # printable: no surrogate left


def test_limit_caps_the_training_pairs_read(tmp_path, monkeypatch):
    root = _folder(str(tmp_path), n=10)
    read = []
    real = segmentation_formats.read_pair
    monkeypatch.setattr(segmentation_formats, "read_pair", lambda *a: read.append(a[0]) or real(*a))
    data = datasets.load("masks:" + root, models.get("freespace"), limit=3, seed=0)
    assert len(data.train[0]) == 3 and len(data.val[0]) == 2 and len(read) == 5
    monkeypatch.setattr(segmentation_formats, "VAL_LEAST", 1)
    assert len(segmentation_formats.load(root, limit=4).val[0]) == 1  # held out: at most max(VAL_LEAST, limit / 4)


def _put(root, data):
    with open(os.path.join(root, "labels.json"), "wb") as f:
        f.write(data)


def _bad(root, case):
    """A folder that cannot be used, as case names it."""
    labels = {"classes": CLASSES, "drivable": ["road"]}
    if case != "missing":
        _folder(root, n=2)
    edits = {
        "no masks/": lambda: os.rename(os.path.join(root, "masks"), os.path.join(root, "m")),
        "val alone": lambda: [os.makedirs(os.path.join(root, "val", d)) for d in ("images", "masks")],
        "no labels": lambda: os.remove(os.path.join(root, "labels.json")),
        "not json": lambda: _put(root, b"{classes: [road]"),
        "not utf-8": lambda: _put(root, b'{"classes": ["\xe9"]}'),
        "a list": lambda: _put(root, json.dumps([labels]).encode()),
    }
    changes = {"unknown key": {"colours": COLORS}, "one class": {"classes": ["road"]},
               "same class twice": {"classes": ["road", "road"]}, "drivable unknown": {"drivable": ["lane"]},
               "drivable empty": {"drivable": []}, "colour missing": {"colors": {"sky": [1, 2, 3], "road": [4, 5, 6]}},
               "same colour": {"colors": dict(COLORS, car=COLORS["road"])},
               "ignore a class": {"ignore": 1}, "ignore with colors": {"colors": COLORS, "ignore": 255},
               "ignore_colors alone": {"ignore_colors": [[0, 0, 0]]}}
    if case in edits:
        edits[case]()
    elif case in changes:
        _put(root, json.dumps(dict(labels, **changes[case])).encode())
    elif case == "no pairs":
        for name in ("00", "city/01"):
            os.remove(os.path.join(root, "masks", name + ".png"))
    elif case == "none usable":
        for name in ("00", "city/01"):
            write_image(os.path.join(root, "masks", name + ".png"), np.full((24, 32), 9, np.uint8))


BAD = [("missing", "no such folder"), ("no masks/", "no masks/ folder"), ("val alone", "val/ but no train/"),
       ("no labels", "no labels.json"), ("not json", "cannot read .*labels.json"),
       ("not utf-8", "cannot read .*labels.json"), ("a list", "labels.json: not a JSON object"),
       ("unknown key", "unknown key.* colours"), ("one class", "classes must list 2 to 255"),
       ("same class twice", "classes must list 2 to 255 different names"),
       ("drivable unknown", 'drivable class "lane" is not one of the classes'),
       ("drivable empty", "drivable must list the free-space classes"),
       ("colour missing", r"colors must give every class .*\(missing: car\)"),
       ("same colour", "road and car have the same colour"), ("ignore a class", "ignore must be a pixel value"),
       ("ignore with colors", "colour masks use ignore_colors"), ("ignore_colors alone", "ignore_colors needs colors"),
       ("no pairs", r"0 image/mask pair\(s\).*2 image\(s\) without a mask"),
       ("none usable", r"no usable training pair \(1 found\).*class index beyond")]


@pytest.mark.parametrize("case, message", BAD, ids=[c for c, _ in BAD])
def test_a_dataset_that_cannot_be_used_is_one_line(tmp_path, case, message, capsys):
    root = str(tmp_path / "set")
    _bad(root, case)
    with pytest.raises(UserError, match=message) as caught:
        datasets.load("masks:" + root, models.get("freespace"))
    assert "\n" not in str(caught.value)


def test_on_the_command_line_it_is_one_line_with_status_2(tmp_path):
    root = str(tmp_path / "set")
    _bad(root, "drivable unknown")
    proc = cli("train", "--model", "freespace", "--data", "masks:" + root, "--out", str(tmp_path / "run"))
    assert one_line_error(proc) and "is not one of the classes" in proc.stderr, proc.stderr
    proc = cli("train", "--model", "freespace", "--data", "masks:", "--out", str(tmp_path / "run"))
    assert one_line_error(proc) and "masks: needs a path" in proc.stderr, proc.stderr


def test_freespace_trains_on_a_masks_folder_end_to_end(tmp_path_factory):
    root = _folder(str(tmp_path_factory.mktemp("set")), n=12, colours=True, ignore_colors=[[255, 255, 255]])
    run = _train(tmp_path_factory, "masks", "--model", "freespace", "--data", "masks:" + root, "--epochs", "1",
                 "--limit", "8", "--batch-size", "4")
    meta = json.loads((run / "meta.json").read_text())
    assert meta["task"] == "segmentation" and meta["labels"] == CLASSES and meta["segmentation"]["drivable"] == [1]
    assert meta["dataset"] == "masks:" + root and len(meta["samples"]["files"]) == 2
    assert "val_miou" in json.loads((run / "history.json").read_text())["history"]
