"""Writes tests/fakes/site/tensorrt/_fake_onnx_ops.py: which ONNX ops, and which input types, each generation
of TensorRT's ONNX parser takes, as onnx-tensorrt's docs/operators.md says at a release tag.

    python tests/fakes/make_trt_onnx_ops.py /work/.mirror/onnx+onnx-tensorrt/repo   # a clone of onnx/onnx-tensorrt

Sources (git tags of github.com/onnx/onnx-tensorrt, file docs/operators.md):
    8.5   release/8.5-GA   (JetPack 5.1's 8.5.2)
    10    release/10.1-GA  (the newest tag in the stored mirror; JetPack 6.1/6.2 ship 10.3)
    11    release/10.1-GA  as a stand-in: the mirror has no 10.3 or 11.x tag (it ends at 10.1-GA, June 2024)
Only rows marked Y are kept (an op absent from the table is one the parser refuses). One correction: 10.1's
ConstantOfShape row says INF64 for INT64.
"""

import re
import subprocess
import sys

SOURCES = (("8.5", "release/8.5-GA"), ("10", "release/10.1-GA"), ("11", "release/10.1-GA"))
PATH = "docs/operators.md"
OUT = "tests/fakes/site/tensorrt/_fake_onnx_ops.py"


def table(repo, tag):
    text = subprocess.run(["git", "-C", repo, "show", "%s:%s" % (tag, PATH)], check=True, capture_output=True,
                          text=True).stdout
    ops = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.match(r"^[A-Z][A-Za-z0-9]*$", cells[0]) or not cells[1].startswith("Y"):
            continue
        types = [t.strip().replace("INF64", "INT64") for t in cells[2].split(",") if t.strip()]
        ops[cells[0]] = " ".join(types)
    return ops


def main(repo):
    lines = ['"""FAKE data: the ONNX ops and input types TensorRT\'s ONNX parser takes, by generation. Written by',
             "tests/fakes/make_trt_onnx_ops.py from onnx-tensorrt's %s at:" % PATH]
    lines += ["    %-5s %s" % (gen, tag) for gen, tag in SOURCES]
    lines += ["(11: the 10.1-GA table as a stand-in; the stored mirror has no 11 tag). Do not edit by hand."
              '"""', "", "FAKE_ONNX_OPS = {"]
    done = {}
    for gen, tag in SOURCES:
        if tag in done:
            continue
        ops = done[tag] = table(repo, tag)
        lines.append("    %r: {  # %s:%s, %d ops" % (gen, tag, PATH, len(ops)))
        for op in sorted(ops):
            lines.append("        %r: %r," % (op, ops[op]))
        lines.append("    },")
    lines.append("}")
    first = {}
    for gen, tag in SOURCES:
        if tag in first:
            lines.append("FAKE_ONNX_OPS[%r] = FAKE_ONNX_OPS[%r]  # the same tag" % (gen, first[tag]))
        first.setdefault(tag, gen)
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s" % OUT)


if __name__ == "__main__":
    main(sys.argv[1])
