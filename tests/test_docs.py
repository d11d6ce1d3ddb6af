"""The README and docs/: the README stays short and links every page, every relative link lands on a file, and
every `python -m train|export|runtime ...` command they show is one that `--help` accepts (issue 28)."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

DOCS = os.path.join(ROOT, "docs")
README = os.path.join(ROOT, "README.md")
README_MAX_LINES = 300
MODULES = ("train", "export", "runtime")


def _pages():
    """README.md and every Markdown page under docs/, as paths relative to the repository."""
    pages = ["README.md"]
    for folder, _, files in os.walk(DOCS):
        pages += sorted(os.path.relpath(os.path.join(folder, f), ROOT) for f in files if f.endswith(".md"))
    return pages


def _read(relpath):
    with open(os.path.join(ROOT, relpath), encoding="utf-8") as f:
        return f.read()


def _split_code(text):
    """(prose, code): the text outside fenced code blocks, and the lines inside them."""
    prose, code, fence = [], [], None
    for line in text.split("\n"):
        stripped = line.lstrip()
        if fence is None and stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
        elif fence is not None and stripped.startswith(fence):
            fence = None
        elif fence is not None:
            code.append(line)
        else:
            prose.append(line)
    return "\n".join(prose), code


_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _relative_links(text):
    """The targets of the Markdown links and images outside code (fenced or inline) that are not URLs or
    anchors on the same page, without their #anchor."""
    prose, _ = _split_code(text)
    prose = re.sub(r"`[^`\n]*`", "``", prose)
    targets = []
    for target in _LINK.findall(prose):
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def test_readme_is_at_most_300_lines():
    lines = _read("README.md").count("\n")
    assert lines <= README_MAX_LINES, "README.md has %d lines; move detail into docs/" % lines


def test_readme_links_every_docs_page():
    linked = {os.path.normpath(t) for t in _relative_links(_read("README.md"))}
    files = {os.path.relpath(os.path.join(folder, f), ROOT) for folder, _, names in os.walk(DOCS) for f in names}
    assert files, "docs/ is empty"
    assert sorted(files - linked) == [], "README.md does not link these docs/ files"


@pytest.mark.parametrize("page", _pages())
def test_every_relative_link_points_to_a_file(page):
    here = os.path.dirname(os.path.join(ROOT, page))
    missing = [t for t in _relative_links(_read(page)) if not os.path.exists(os.path.join(here, t))]
    assert missing == [], "%s links to files that do not exist" % page


# `python -m MODULE [SUBCOMMAND]`, possibly as .venv/bin/python or python3, after `$ `, a `#`, `(` or in a
# code span; a subcommand is a word right after the module (train has none: its options come first).
_COMMAND = re.compile(r"(?:^|[\s`(\"'$])(?:[\w./-]*/)?python3?\s+-m\s+(%s)(?![\w.])"
                      r"(?:\s+([a-z][a-z0-9_-]*)(?![\w.:/]))?" % "|".join(MODULES))


def _commands(text):
    """The (module, subcommand or None) pairs in code blocks and code spans."""
    prose, code = _split_code(text)
    spans = re.findall(r"`([^`\n]+)`", prose)
    found = set()
    for line in code + spans:
        for module, sub in _COMMAND.findall(line):
            found.add((module, sub or None))
    return found


def _all_commands():
    found = {}
    for page in _pages():
        for pair in _commands(_read(page)):
            found.setdefault(pair, page)
    return sorted(found.items(), key=lambda item: (item[0][0], item[0][1] or ""))


COMMANDS = _all_commands()


def test_the_pages_show_commands_of_every_stage():
    shown = {module for (module, _), _ in COMMANDS}
    assert shown == set(MODULES), shown


@pytest.mark.parametrize("command, page", COMMANDS,
                         ids=["%s %s" % (m, s) if s else m for (m, s), _ in COMMANDS])
def test_every_command_shown_is_accepted_by_its_help(command, page):
    module, sub = command
    argv = [sys.executable, "-m", module] + ([sub] if sub else []) + ["--help"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, "%s (shown in %s) failed: %s" % (" ".join(argv[1:]), page, proc.stderr[-2000:])
    assert "usage:" in proc.stdout
