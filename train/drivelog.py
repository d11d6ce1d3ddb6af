"""Driving logs on disk, read as (image file, steering, throttle) samples: `--data drivelog:PATH[,PATH...]`.

Each PATH is a folder; its layout is told from what it holds:

    Udacity's simulator   driving_log.csv (no header, or the sample data's one): centre, left and right image
                          paths, steering, throttle, brake, speed. The paths, absolute on Windows or Linux or
                          relative, are re-rooted to the folder's IMG/ by their base name. Steering is normalised
                          to [-1, 1]. Logs written where numbers use a decimal comma are read right (below).
    DonkeyCar tub v2      manifest.json (five JSON lines; the last lists the catalog files and the deleted
                          records) and catalog_N.catalog files of JSON records with cam/image_array (a file in
                          images/), user/angle, user/throttle and _timestamp_ms
    DonkeyCar tub v1      meta.json and record_N.json files with cam/image_array (a file beside them),
                          user/angle and user/throttle; exclude.json (a JSON list of N, what Donkey's tub manager
                          was told to leave out) is honoured, as v2's deleted records are

Side cameras (Udacity's left and right images) are used with the steering corrected by `side_correction` (in
the log's units: the left camera sees the car too far left, so it is labelled to steer further right). Rows that
do not parse and images that are missing are skipped, counted and named; only a log with nothing left is an
error. Nothing here imports TensorFlow.

Decimal commas. The simulator writes its numbers with the system's locale (C#'s float.ToString()), so on a
French, German or Spanish system driving_log.csv reads `...right.jpg,-0,08581576,0,1286689,0,12,1822` (the
open-source simulator, "{0},...,{6}") or `...right.jpg, -0,08581576, 0,1286689, 0, 12,1822` (the 2016 beta,
udacity/sdc-issue-reports#170, udacity/self-driving-car-sim#6): every number that is not whole is split in two
fields, so a row has 7 to 11. Taken as 7 fields, each steering would be its integer part: 0. Such a row is read
by its separators where they tell (", " between fields, "," inside a number), else by trying every way to join
the fields into four numbers that the simulator can write (steering, throttle and brake within [-1, 1], speed
not negative; a fraction without the trailing zeros that C# never writes is preferred). A row is read when
every such way gives the same steering and throttle; otherwise it is skipped and counted ("ambiguous decimal
commas": `0,1,0,0,5` is steering 0, throttle 1 at 0.5 mph, or steering 0.1 at 5 mph; 2 rows in 100 of the
test's keyboard drive), and so is a row of more fields that cannot be four numbers ("more fields than the
format"). A number in one field with a decimal comma ("0,5" quoted, or a log re-saved by a spreadsheet with ";"
between fields) is read as it means. In a log whose numbers are split, rows of fewer than 7 fields cannot be
told apart and are skipped. Rows with a NUL byte (the zeros a power cut leaves at a file's end) are skipped and
counted on every Python (csv refuses them before 3.11), and a UTF-8 or UTF-16 byte-order mark is read as one.

Paths. Every file read or handed to training resolves inside the log's folder. Udacity's paths (absolute ones
from the recording machine, or `..`) are only base names looked for in IMG/. An image name with a folder in
it, or a catalog, record or image that is a link to outside, is skipped and counted ("paths outside the
folder"); a driving_log.csv, manifest.json or exclude.json that is a link to outside is a one-line error.

Names and files. A folder's name is never a pattern (tub[1], tub*). Names of any bytes are read: what is not
UTF-8 in driving_log.csv or a catalog (a Latin-1 image name) is held as Python holds such file names, so it
names the file with those bytes, and a report shows such bytes as \\xNN. Every file is opened without blocking
and must be a regular file: a FIFO, folder or device named like a record, catalog or image is skipped and
counted (a FIFO would make the reader wait for ever), one named like driving_log.csv, manifest.json or
exclude.json is a one-line error, as is a manifest or exclude.json nested too deep for the JSON parser; a
record so nested is skipped and counted with the malformed ones.
"""

from __future__ import annotations

import csv
import glob
import io
import itertools
import json
import math
import os
import re

from runtime.bundle import inside
from runtime.errors import UserError, printable
from runtime.images import NotAFile as NotRegular, open_regular

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
            lines.append(printable("skipped %d %s: %s%s" % (len(where), reason, ", ".join(where[:SHOWN]),
                                                            " and %d more" % more if more > 0 else "")))
        return lines


def layout_of(folder):
    if os.path.isfile(os.path.join(folder, "driving_log.csv")):
        return "udacity"
    if os.path.isfile(os.path.join(folder, "manifest.json")):
        return "donkey-v2"
    if _records(folder):
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


NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")  # ASCII only: not "1_0", "١"
COMMA_NUMBER = re.compile(r"[+-]?[0-9]+,[0-9]+(?:[eE][+-]?[0-9]+)?\Z")  # "0,5" in one field
WHOLE = re.compile(r"-?[0-9]+(?:[eE][+-]?[0-9]+)?\Z")  # a number of the simulator's without a decimal comma
INTEGER_PART = re.compile(r"-?[0-9]+\Z")
FRACTION = re.compile(r"([0-9]+)(?:[eE][+-]?[0-9]+)?\Z")  # what follows a decimal comma: digits, maybe E-07
RANGES = ((-1.0, 1.0), (-1.0, 1.0), (-1.0, 1.0), (0.0, math.inf))  # steering, throttle, brake, speed as written
FIELDS = 7  # centre, left, right, steering, throttle, brake, speed


def _number(text):
    """A number in one field: 0.5, -1E-05, or 0,5 (a decimal comma). ValueError otherwise, or when not finite."""
    text = text.strip()
    if COMMA_NUMBER.match(text):
        text = text.replace(",", ".")
    elif not NUMBER.match(text):
        raise ValueError("not a number")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _joined(tokens, widths):
    """The four numbers of tokens joined as widths says (1: a whole number, 2: integer part and fraction split at
    a decimal comma), and whether every fraction is as C# writes it (no trailing zero); None if they cannot be."""
    values, at, as_written = [], 0, True
    for width, (low, high) in zip(widths, RANGES):
        part = tokens[at:at + width]
        at += width
        if width == 1:
            if not WHOLE.match(part[0]):
                return None
            value = float(part[0])
        else:
            fraction = FRACTION.match(part[1])
            if not INTEGER_PART.match(part[0]) or not fraction:
                return None
            as_written = as_written and not fraction.group(1).endswith("0")
            value = float(part[0] + "." + part[1])
        if not (math.isfinite(value) and low <= value <= high):
            return None
        values.append(value)
    return values, as_written


def _split_numbers(fields):
    """Steering and throttle of a row's number fields (more than four: split at decimal commas), or the reason
    it cannot be read."""
    tokens = [t.strip() for t in fields]
    if fields[0][:1].isspace():  # ", " between fields: a field without the space is the rest of a number
        groups = []
        for field in fields:
            if field[:1].isspace() or not groups:
                groups.append(0)
            groups[-1] += 1
        if len(groups) == 4 and max(groups) <= 2:
            joined = _joined(tokens, groups)
            if joined is not None:
                return joined[0][0], joined[0][1]
    readings = [r for r in (_joined(tokens, w) for w in itertools.product((1, 2), repeat=4) if sum(w) == len(tokens))
                if r is not None]
    if not readings:
        return "rows with more fields than the format"
    found = {(v[0], v[1]) for v, _ in readings}
    if len(found) > 1:  # the simulator never writes a fraction with a trailing zero
        found = {(v[0], v[1]) for v, as_written in readings if as_written}
    if len(found) != 1:
        return "rows with ambiguous decimal commas"
    return found.pop()


def _reroot(folder, path):
    """An image path as the simulator wrote it (C:\\Users\\...\\IMG\\center_x.jpg, /home/.../IMG/center_x.jpg or
    IMG/center_x.jpg) -> FOLDER/IMG/center_x.jpg."""
    name = re.split(r"[\\/]", path.strip())[-1]
    return os.path.join(folder, "IMG", name)


def _records(folder):
    """The record_*.json of a v1 tub: the folder's name is not a pattern (tub[1], tub*)."""
    return glob.glob(os.path.join(glob.escape(folder), "record_*.json"))


class NotAFile(OSError):
    """A FIFO, folder, device or socket where a file of the log belongs."""


def _read(path):
    """The bytes of the regular file at path (runtime.images.open_regular: never blocks on a FIFO); NotAFile for
    anything else, OSError when it cannot be read."""
    try:
        f = open_regular(path)
    except NotRegular as exc:
        raise NotAFile("%s, not a file" % exc) from None
    with f:
        return f.read()


def _text(data):
    """Text of UTF-8 bytes (a byte-order mark skipped), or UTF-16 by its byte-order mark. Bytes that are not
    UTF-8 (a Latin-1 image name) are held as Python holds such file names (surrogateescape), so that a name
    read from it maps back to the file's own bytes."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="surrogateescape")


def _lines(path):
    """(line number, text) of a text file (_text), each line with its ending, as a text file's lines are."""
    return enumerate(io.StringIO(_text(_read(path)), newline=""), 1)


def _reason(exc):
    """The reason an OSError gives, or what a JSON parser says (a RecursionError: nested too deep)."""
    if isinstance(exc, RecursionError):
        return "nested too deep"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _udacity_row(row):
    """(steering, throttle, split) of a parsed row, split telling that its numbers were split at decimal commas;
    or the reason it is skipped."""
    if len(row) < 4:
        return "malformed rows"
    while len(row) > FIELDS and not row[-1].strip():
        row = row[:-1]  # a trailing separator
    numbers = row[3:]
    if len(row) > FIELDS:
        found = _split_numbers(numbers)
        return found if isinstance(found, str) else found + (True,)
    try:  # the steering, and what else is there (throttle, brake, speed may be left empty)
        values = [_number(n) if n.strip() or i == 0 else None for i, n in enumerate(numbers)]
    except ValueError:
        return "malformed rows"
    return values[0], values[1] if len(values) > 1 else None, False


def read_udacity(folder, log, side_correction):
    path = _own_file(folder, "driving_log.csv", "driving_log.csv")
    root = os.path.realpath(folder)
    rows, delimiter = [], None
    try:
        lines = list(_lines(path))
    except OSError as exc:
        raise UserError("drivelog:%s: cannot read driving_log.csv (%s)" % (folder, _reason(exc))) from None
    for number, line in lines:
        where = "%s:%d" % (path, number)
        if "\0" in line:  # csv refuses it before Python 3.11; a power cut leaves a run of them
            rows.append((where, "rows with NUL bytes", None))
            continue
        if not line.strip():
            continue
        if delimiter is None:  # a log re-saved by a spreadsheet where the decimal mark is a comma has ";" between
            delimiter = ";" if line.count(";") >= 3 else ","
        try:
            row = next(csv.reader([line], delimiter=delimiter))
        except csv.Error:
            rows.append((where, "malformed rows", None))
            continue
        if not any(cell.strip() for cell in row):
            continue
        if row[0].strip().lower() in ("center", "centre"):
            continue  # the sample data's header
        rows.append((where, _udacity_row(row), row))
    split_log = any(not isinstance(r, str) and r[2] for _, r, _ in rows)
    for where, read, row in rows:
        if not isinstance(read, str) and split_log and len(row) < FIELDS:
            read = "short rows in a log with decimal commas"  # [0, 5] may be steering 0.5 or 0 and throttle 5
        if isinstance(read, str):
            log.skip(read, where)
            continue
        steering, throttle, _ = read
        cameras = [("centre", 0, 0.0)]
        if side_correction is not None:
            cameras += [("left", 1, side_correction), ("right", 2, -side_correction)]
        for camera, column, shift in cameras:
            if len(row) <= column or not row[column].strip():
                continue
            image = _reroot(folder, row[column])
            reason = "paths outside the folder" if not inside(root, image) else _missing(image)
            if reason:
                log.skip(reason, "%s (%s)" % (image, where))
                if camera == "centre":
                    break  # a row's side images go with its centre frame (train/datasets.py splits by rows)
                continue
            log.samples.append(Sample(image, steering + shift, throttle, camera))


def _donkey_sample(record, images, where, log, root):
    try:
        image = record["cam/image_array"]
        steering = _value(record["user/angle"])
        throttle = _value(record["user/throttle"]) if record.get("user/throttle") is not None else None
        if not isinstance(image, str) or not image:
            raise ValueError("no image")
    except (KeyError, TypeError, ValueError):
        log.skip("malformed records", where)
        return
    path = os.path.join(images, image)
    if os.path.basename(image) != image or not inside(root, path):
        log.skip("paths outside the folder", "%s (%s)" % (path, where))
        return
    reason = _missing(path)
    if reason:
        log.skip(reason, "%s (%s)" % (path, where))
        return
    stamp = record.get("_timestamp_ms", record.get("milliseconds"))
    log.samples.append(Sample(path, steering, throttle, "centre", stamp if isinstance(stamp, (int, float)) else None))


def _missing(image):
    """Why an image file cannot be used (it is not there, or not a file: a FIFO would block its reader), or None."""
    if os.path.isfile(image):
        return None
    return "images that are not files" if os.path.exists(image) else "missing images"


def _value(value):
    """A record's number: a JSON number, or one written as text."""
    if isinstance(value, str):
        return _number(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("not a number")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _own_file(folder, name, what):
    """FOLDER/name, refused in one line when it is a link to outside the folder."""
    path = os.path.join(folder, name)
    if not inside(folder, path):
        raise UserError("drivelog:%s: its %s is a link to outside the folder (%s); copy it in" % (folder, what, name))
    return path


def read_donkey_v2(folder, log):
    path = _own_file(folder, "manifest.json", "manifest")
    root = os.path.realpath(folder)
    try:
        data = _read(path)
    except OSError as exc:
        raise UserError("drivelog:%s: cannot read its manifest.json (%s)" % (folder, _reason(exc))) from None
    try:
        lines = [json.loads(line) for line in io.StringIO(_text(data), newline=None) if line.strip()]
        catalogs = lines[4]["paths"]
        deleted = set(lines[4].get("deleted_indexes", []))
        if not isinstance(catalogs, list):
            raise ValueError("paths")
    except (ValueError, IndexError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise UserError("drivelog:%s: its manifest.json is not a DonkeyCar tub v2 manifest (five JSON lines, the "
                        "last with the catalog paths)%s" % (folder, " (nested too deep)"
                                                           if isinstance(exc, RecursionError) else "")) from None
    images = os.path.join(folder, "images")
    for name in catalogs:
        catalog = os.path.join(folder, os.path.basename(str(name)))
        if not inside(root, catalog):
            log.skip("paths outside the folder", catalog)
            continue
        if not os.path.exists(catalog):
            log.skip("missing catalogs", catalog)
            continue
        try:
            lines = list(enumerate(io.StringIO(_text(_read(catalog)), newline=None), 1))
        except OSError as exc:
            log.skip("unreadable catalogs", "%s (%s)" % (catalog, _reason(exc)))
            continue
        for number, line in lines:
            if not line.strip():
                continue
            where = "%s:%d" % (catalog, number)
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # a record nested too deep is one the parser gives up on
                log.skip("malformed records", where)
                continue
            record = record if isinstance(record, dict) else {}
            index = record.get("_index")
            if isinstance(index, int) and index in deleted:
                continue  # deleted in the tub's own editor
            _donkey_sample(record, images, where, log, root)


def _excluded(folder):
    """The record numbers a v1 tub's exclude.json leaves out (DonkeyCar's Tub.exclude: a JSON list of N of
    record_N.json, written by its tub manager); UserError when it cannot be read, as DonkeyCar fails then too."""
    path = os.path.join(folder, "exclude.json")
    if not os.path.lexists(path):
        return set()
    path = _own_file(folder, "exclude.json", "exclude.json")
    try:
        excluded = json.loads(_text(_read(path)))
        if not isinstance(excluded, list) or not all(type(i) is int for i in excluded):
            raise ValueError("not a list of numbers")
    except (OSError, ValueError, RecursionError) as exc:
        raise UserError("drivelog:%s: its exclude.json is not a JSON list of record numbers, the records DonkeyCar's "
                        "tub manager leaves out (%s)" % (folder, _reason(exc))) from None
    return set(excluded)


def read_donkey_v1(folder, log):
    def number(path):
        digits = re.findall(r"\d+", os.path.basename(path))
        return int(digits[-1]) if digits else -1

    root = os.path.realpath(folder)
    excluded = _excluded(folder)
    for path in sorted(_records(folder), key=number):
        index = re.match(r"record_([0-9]+)\.json\Z", os.path.basename(path))
        if index and int(index.group(1)) in excluded:
            continue  # left out in DonkeyCar's tub manager
        if not inside(root, path):
            log.skip("paths outside the folder", path)
            continue
        try:
            data = _read(path)
        except OSError as exc:
            log.skip("unreadable records", "%s (%s)" % (path, _reason(exc)))
            continue
        try:
            record = json.loads(_text(data))
        except (ValueError, RecursionError):  # not JSON, or nested too deep for the parser
            log.skip("malformed records", path)
            continue
        _donkey_sample(record if isinstance(record, dict) else {}, folder, path, log, root)


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
