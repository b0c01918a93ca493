"""Code blocks of the Markdown pages (README.md, docs/derivations/*.md), for the tests that run them.

    blocks(path)          every fenced block: Block(language, text, line, note), in page order
    run_python(code, cwd) run one python block in a fresh interpreter, as a learner pasting it into a file
    skeleton(text)        the text with every number replaced by '#', spaces collapsed: the shape of an output
    same_shape(sample, output)   does a sample output in a page have the shape of the real one?

Conventions in the pages:
  - a ```python block is runnable as it stands, on its own (imports included);
  - a ```python block whose first line is `# excerpt from PATH` quotes PATH: every line of it but
    `...` must appear in that file;
  - an output block (```text) right after the HTML comment `<!-- output of the python block above -->`
    or `<!-- output of: COMMAND -->` shows what that block or command prints; a line `...` in it
    stands for any number of lines. Its `note` is the comment's text.
"""
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", flags=re.M | re.S)
OUTPUT_NOTE = re.compile(r"<!-- (output of[^>]*?) -->\s*$")
NUMBER = re.compile(r"(?<![A-Za-wyz_\d.])[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?%?")   # x20, 3x3: numbers too


@dataclass
class Block:
    language: str      # 'python', 'text', 'bash', ''
    text: str
    line: int          # where the block starts in the page (1-based, the fence line)
    note: str = None   # 'output of the python block above' / 'output of: COMMAND', from the comment before it


def blocks(path):
    """Every fenced block of a Markdown page, in order."""
    page = Path(path).read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(page):
        before = page[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        note = OUTPUT_NOTE.search(before)
        found.append(Block(match[1], match[2], page.count("\n", 0, match.start()) + 1, note and note[1]))
    return found


def environment():
    """The environment a learner runs in: this checkout importable, no display. One BLAS thread
    unless told otherwise: the output does not depend on it, and on a busy machine OpenBLAS's
    waiting threads make a snippet ten times slower."""
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def run_python(code, cwd, timeout=300):
    """Run `code` in a fresh interpreter in `cwd`; return its stdout, or fail with its output."""
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=environment(), capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"the block failed:\n{code}\n--- stdout\n{done.stdout[-3000:]}\n" \
                                 f"--- stderr\n{done.stderr[-3000:]}"
    return done.stdout


def skeleton(line):
    """A line's shape: numbers (1, -0.25, 7.4e-09, 71.7%) become '#', runs of spaces one space."""
    return " ".join(NUMBER.sub("#", line).split())


def same_shape(sample, output):
    """True when every line of `sample` has the skeleton of the next line of `output`, in order;
    a sample line '...' skips any number of output lines. Blank lines are ignored."""
    want = [skeleton(line) for line in sample.splitlines() if line.strip()]
    have = [skeleton(line) for line in output.splitlines() if line.strip()]
    return _match(want, have)


def _match(want, have):
    if not want:
        return not have
    if want[0] == "...":
        return any(_match(want[1:], have[start:]) for start in range(len(have) + 1))
    return bool(have) and want[0] == have[0] and _match(want[1:], have[1:])
