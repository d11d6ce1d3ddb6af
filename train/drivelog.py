"""Driving logs on disk, read as (image file, steering, throttle) samples: `--data drivelog:PATH[,PATH...]`.

Each PATH is a folder; its layout is told from what it holds:

    Udacity's simulator   driving_log.csv (no header, or the sample data's one): centre, left and right image
                          paths, steering, throttle, brake, speed. The paths, absolute on Windows or Linux or
                          relative, are re-rooted to the folder's IMG/. Steering is normalised to [-1, 1].
    DonkeyCar tub v2      manifest.json (five JSON lines; the last lists the catalog files and the deleted
                          records) and catalog_N.catalog files of JSON records with cam/image_array (a file in
                          images/), user/angle, user/throttle and _timestamp_ms
    DonkeyCar tub v1      meta.json and record_N.json files with cam/image_array (a file beside them),
                          user/angle and user/throttle

Side cameras (Udacity's left and right images) are used with the steering corrected by `side_correction` (in
the log's units: the left camera sees the car too far left, so it is labelled to steer further right). Rows that
do not parse and images that are missing are skipped, counted and named; only a log with nothing left is an
error. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import re

from runtime.errors import UserError

UNITS = ("normalised", "degrees", "radians")
SIDE_CORRECTION = 0.2
SHOWN = 5  # skipped rows named in the report, per reason


class Sample:
    __slots__ = ("image", "steering", "throttle", "camera", "time_ms")

    def __init__(self, image, steering, throttle, camera="centre", time_ms=None):
        self.image, self.steering, self.throttle, self.camera, self.time_ms = image, steering, throttle, camera, time_ms


class Log:
    """The samples of one or more folders, and what was skipped (reason -> list of where)."""

    def __init__(self):
        self.samples, self.skipped, self.layouts = [], {}, []

    def skip(self, reason, where):
        self.skipped.setdefault(reason, []).append(where)

    def report(self):
        """One line per reason: how many, and the first few by name."""
        lines = []
        for reason, where in sorted(self.skipped.items()):
            more = len(where) - SHOWN
            lines.append("skipped %d %s: %s%s" % (len(where), reason, ", ".join(where[:SHOWN]),
                                                  " and %d more" % more if more > 0 else ""))
        return lines


def layout_of(folder):
    if os.path.isfile(os.path.join(folder, "driving_log.csv")):
        return "udacity"
    if os.path.isfile(os.path.join(folder, "manifest.json")):
        return "donkey-v2"
    if glob.glob(os.path.join(folder, "record_*.json")):
        return "donkey-v1"
    return None


def check(spec):
    """The folders of a drivelog:PATH[,PATH...] spec, each with its layout; UserError when one has none."""
    folders = [p for p in spec.split(",") if p]
    if not folders:
        raise UserError("drivelog: needs a folder, as in drivelog:data/track1 (several joined with commas)")
    found = []
    for folder in folders:
        if not os.path.isdir(folder):
            raise UserError("drivelog:%s: no such folder" % folder)
        layout = layout_of(folder)
        if layout is None:
            raise UserError("drivelog:%s holds no driving log (Udacity's driving_log.csv, a DonkeyCar tub's "
                            "manifest.json, or record_*.json)" % folder)
        found.append((folder, layout))
    return found


def _number(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _reroot(folder, path):
    """An image path as the simulator wrote it (C:\\Users\\...\\IMG\\center_x.jpg, /home/.../IMG/center_x.jpg or
    IMG/center_x.jpg) -> FOLDER/IMG/center_x.jpg."""
    name = re.split(r"[\\/]", path.strip())[-1]
    return os.path.join(folder, "IMG", name)


def read_udacity(folder, log, side_correction):
    path = os.path.join(folder, "driving_log.csv")
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        for number, row in enumerate(csv.reader(f), 1):
            where = "%s:%d" % (path, number)
            if not row or not any(cell.strip() for cell in row):
                continue
            if number == 1 and row[0].strip().lower() in ("center", "centre"):
                continue  # the sample data's header
            try:
                if len(row) < 4:
                    raise ValueError("%d fields" % len(row))
                steering = _number(row[3])
                throttle = _number(row[4]) if len(row) > 4 and row[4].strip() else None
            except ValueError:
                log.skip("malformed rows", where)
                continue
            cameras = [("centre", 0, 0.0)]
            if side_correction is not None:
                cameras += [("left", 1, side_correction), ("right", 2, -side_correction)]
            for camera, column, shift in cameras:
                if len(row) <= column or not row[column].strip():
                    continue
                image = _reroot(folder, row[column])
                if not os.path.isfile(image):
                    log.skip("missing images", "%s (%s)" % (image, where))
                    if camera == "centre":
                        break  # a row's side images go with its centre frame (train/datasets.py splits by rows)
                    continue
                log.samples.append(Sample(image, steering + shift, throttle, camera))


def _donkey_sample(record, images, where, log):
    try:
        image = record["cam/image_array"]
        steering = _number(record["user/angle"])
        throttle = _number(record["user/throttle"]) if record.get("user/throttle") is not None else None
        if not isinstance(image, str) or not image:
            raise ValueError("no image")
    except (KeyError, TypeError, ValueError):
        log.skip("malformed records", where)
        return
    path = os.path.join(images, image)
    if os.path.basename(image) != image or not os.path.isfile(path):
        log.skip("missing images", "%s (%s)" % (path, where))
        return
    stamp = record.get("_timestamp_ms", record.get("milliseconds"))
    log.samples.append(Sample(path, steering, throttle, "centre", stamp if isinstance(stamp, (int, float)) else None))


def read_donkey_v2(folder, log):
    path = os.path.join(folder, "manifest.json")
    try:
        with open(path, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f if line.strip()]
        catalogs = lines[4]["paths"]
        deleted = set(lines[4].get("deleted_indexes", []))
        if not isinstance(catalogs, list):
            raise ValueError("paths")
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        raise UserError("drivelog:%s: its manifest.json is not a DonkeyCar tub v2 manifest (five JSON lines, the "
                        "last with the catalog paths)" % folder) from None
    images = os.path.join(folder, "images")
    for name in catalogs:
        catalog = os.path.join(folder, os.path.basename(str(name)))
        if not os.path.isfile(catalog):
            log.skip("missing catalogs", catalog)
            continue
        with open(catalog, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = "%s:%d" % (catalog, number)
                try:
                    record = json.loads(line)
                except ValueError:
                    log.skip("malformed records", where)
                    continue
                if isinstance(record, dict) and record.get("_index") in deleted:
                    continue  # deleted in the tub's own editor
                _donkey_sample(record, images, where, log)


def read_donkey_v1(folder, log):
    def number(path):
        digits = re.findall(r"\d+", os.path.basename(path))
        return int(digits[-1]) if digits else -1

    for path in sorted(glob.glob(os.path.join(folder, "record_*.json")), key=number):
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            log.skip("malformed records", path)
            continue
        _donkey_sample(record if isinstance(record, dict) else {}, folder, path, log)


def read(spec, side_correction=SIDE_CORRECTION):
    """Every usable sample of the folders in spec, in log order; side_correction None leaves the side cameras
    out. UserError when nothing is left."""
    log = Log()
    for folder, layout in check(spec):
        log.layouts.append("%s (%s)" % (folder, layout))
        if layout == "udacity":
            read_udacity(folder, log, side_correction)
        elif layout == "donkey-v2":
            read_donkey_v2(folder, log)
        else:
            read_donkey_v1(folder, log)
    if not log.samples:
        raise UserError("drivelog:%s: no usable sample (%s)" % (spec, "; ".join(log.report()) or "the log is empty"))
    return log
