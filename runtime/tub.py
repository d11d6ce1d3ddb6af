"""A DonkeyCar tub v2 writer: what `runtime record` stores, and what `python -m train --data drivelog:DIR` (and
DonkeyCar's own tools) read with no conversion.

    DIR/manifest.json             five JSON lines: the record's keys, their types, metadata, the sessions,
                                  and {"paths": [catalogs], "current_index", "max_len", "deleted_indexes"}
    DIR/catalog_N.catalog         one JSON record a line (max_len records a catalog):
                                  {"_index", "_session_id", "_timestamp_ms", "cam/image_array", "user/angle",
                                   "user/throttle", "user/mode"}
    DIR/catalog_N.catalog_manifest  {"path", "created_at", "start_index", "line_lengths"}
    DIR/images/I_cam_image_array_.jpg

Nothing is lost on a power cut: each image is written and flushed to the disk (fsync) before its record names
it; records are appended and flushed in groups of GROUP, or every FLUSH_S; the manifests are replaced whole
(written beside, flushed, renamed, and the folder flushed). Opened on a folder that holds a tub, it resumes in a
new session: a line torn by the cut (the bytes after the last newline) is cut off, and the next index follows
the highest whole record's. A tub with other inputs than ours is refused, not rewritten; its metadata is kept.
"""

from __future__ import annotations

import datetime
import json
import os
import time

from .errors import UserError

INPUTS = ["cam/image_array", "user/angle", "user/throttle", "user/mode"]
TYPES = ["image_array", "float", "float", "str"]
MAX_LEN = 1000  # records a catalog, as DonkeyCar's
GROUP = 10
FLUSH_S = 1.0


def _sync_folder(folder):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(path, text):
    """Write path whole: a file beside it, flushed, renamed over it, and the rename flushed."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)
    _sync_folder(os.path.dirname(path))


def check(folder):
    """UserError unless folder can take a tub: new, empty, or a tub already (its parent must exist)."""
    parent = os.path.dirname(os.path.abspath(folder))
    if not os.path.isdir(parent):
        raise UserError("cannot record into %s: folder %s does not exist" % (folder, parent))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UserError("cannot record into %s: it is a file" % folder)
    if os.path.isdir(folder) and not os.path.isfile(os.path.join(folder, "manifest.json")) and os.listdir(folder):
        raise UserError("--out %s holds files but no tub (manifest.json): give a new or empty folder, or a tub "
                        "to add to" % folder)


class TubWriter:
    def __init__(self, folder):
        check(folder)
        self.folder = folder
        self.images = os.path.join(folder, "images")
        manifest = os.path.join(folder, "manifest.json")
        os.makedirs(self.images, exist_ok=True)
        self.paths, self.deleted, self.sessions, self.created = [], [], [], time.time()
        self.metadata = {}
        self.index = 0
        if os.path.isfile(manifest):
            self._resume(manifest)
        self.resumed_at = self.index
        stamp = datetime.datetime.now().strftime("%y-%m-%d")
        self.session = "%s_%d" % (stamp, len(self.sessions))
        self.sessions.append(self.session)
        self.catalog = None  # the open catalog: (file, its manifest's dict)
        self.unflushed, self.flushed_at = 0, time.monotonic()
        self._next_catalog()  # at once: DonkeyCar cannot open a tub that lists no catalog
        self.flush()

    # -- resuming ---------------------------------------------------------------------------------------------
    def _resume(self, manifest):
        try:
            with open(manifest, encoding="utf-8") as f:
                lines = [json.loads(line) for line in f if line.strip()]
            inputs, types, self.metadata = lines[0], lines[1], lines[2]
            self.created = lines[3].get("created_at", self.created)
            self.sessions = list(lines[3].get("sessions", {}).get("all_full_ids", []))
            self.paths = [str(p) for p in lines[4]["paths"]]
            self.deleted = list(lines[4].get("deleted_indexes", []))
            self.index = int(lines[4].get("current_index", 0))
        except (OSError, ValueError, IndexError, KeyError, TypeError, AttributeError):
            raise UserError("--out %s: its manifest.json is not a DonkeyCar tub v2 manifest: give a new folder"
                            % self.folder) from None
        if inputs != INPUTS or types != TYPES:
            raise UserError("--out %s is a tub of other records (%s): give a new folder" % (self.folder,
                                                                                           ", ".join(map(str, inputs))))
        for name in self.paths:  # the records on disk decide: the manifest may be a group behind them
            last = self._whole_records(os.path.join(self.folder, name))
            if last is not None:
                self.index = max(self.index, last + 1)

    @staticmethod
    def _whole_records(path):
        """The highest whole record's index in a catalog, after cutting off a torn last line (the bytes after
        its last newline); None if none. A malformed line elsewhere stays (readers skip it)."""
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            data = f.read()
        whole = data.rfind(b"\n") + 1
        if whole < len(data):
            with open(path, "r+b") as f:
                f.truncate(whole)
        highest = None
        for line in data[:whole].splitlines():
            try:
                index = int(json.loads(line)["_index"])
            except (ValueError, KeyError, TypeError):
                continue
            highest = index if highest is None else max(highest, index)
        return highest

    # -- writing ----------------------------------------------------------------------------------------------
    def add(self, jpeg, angle, throttle, timestamp_ms):
        """One record: its image (JPEG bytes) as a whole file, then its line."""
        index = self.index
        name = "%d_cam_image_array_.jpg" % index
        with open(os.path.join(self.images, name), "wb") as f:
            f.write(jpeg)
            f.flush()
            os.fsync(f.fileno())
        if len(self.catalog[1]["line_lengths"]) >= MAX_LEN:
            self._next_catalog()
        record = {"_index": index, "_session_id": self.session, "_timestamp_ms": int(round(timestamp_ms)),
                  "cam/image_array": name, "user/angle": float(angle),
                  "user/throttle": float(throttle) if throttle is not None else 0.0, "user/mode": "user"}
        line = json.dumps(record) + "\n"
        self.catalog[0].write(line)
        self.catalog[1]["line_lengths"].append(len(line))
        self.index += 1
        self.unflushed += 1
        if self.unflushed >= GROUP:
            self.flush()
        else:
            self.flush_if_due()

    def flush_if_due(self):
        if self.unflushed and time.monotonic() - self.flushed_at >= FLUSH_S:
            self.flush()

    def _next_catalog(self):
        if self.catalog is not None:
            self.flush()
            self.catalog[0].close()
        number = len(self.paths)
        name = "catalog_%d.catalog" % number
        while os.path.exists(os.path.join(self.folder, name)):  # a resumed tub: never append to an old one
            number += 1
            name = "catalog_%d.catalog" % number
        self.paths.append(name)
        meta = {"path": name, "created_at": time.time(), "start_index": self.index, "line_lengths": []}
        self.catalog = (open(os.path.join(self.folder, name), "a", encoding="utf-8"), meta)

    def flush(self):
        """The records so far onto the disk, then the manifests that count them."""
        if self.catalog is not None:
            f, meta = self.catalog
            f.flush()
            os.fsync(f.fileno())
            _replace(os.path.join(self.folder, meta["path"] + "_manifest"), json.dumps(meta))
        self._write_manifest()
        self.unflushed, self.flushed_at = 0, time.monotonic()

    def _write_manifest(self):
        sessions = {"all_full_ids": self.sessions, "last_id": len(self.sessions) - 1,
                    "last_full_id": self.sessions[-1] if self.sessions else None}
        lines = [INPUTS, TYPES, self.metadata, {"created_at": self.created, "sessions": sessions},
                 {"paths": self.paths, "current_index": self.index, "max_len": MAX_LEN,
                  "deleted_indexes": self.deleted}]
        _replace(os.path.join(self.folder, "manifest.json"), "".join(json.dumps(x) + "\n" for x in lines))

    def close(self):
        if self.catalog is not None:
            self.flush()
            self.catalog[0].close()
            self.catalog = None

    @property
    def written(self):
        return self.index - self.resumed_at
