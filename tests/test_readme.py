"""README.md: every ```python block runs as it stands, and every sample output has the shape of what
the code or the command prints today.

Each python block runs in a fresh interpreter, in an empty folder, as a learner pasting it into a new
file would run it (tests/snippets.py has the conventions). Blocks that read Fashion-MNIST skip where it
is not installed (not in CI, see conftest.needs_fashion_mnist); blocks that move a model to the GPU
skip without one. One substitution keeps the test short: SHRINK replaces `epochs=20` with `epochs=1`
(only the GPU block trains that long); every other block is small as written.

A sample output (a ```text block after `<!-- output of ... -->`) must have the shape of the real
output: the same lines, numbers aside (snippets.skeleton). The command
`python -m minicnn.gradcheck` is run with `--max-elements 2` (only the sample sizes differ: the same
batch, the same kinks); the output of examples/conv_from_maths_to_code.py is compared where
tests/test_examples_inside.py runs that script.
"""
import re

import pytest

from conftest import needs_fashion_mnist
from minicnn import backend, gradcheck
from snippets import REPO, blocks, environment, run_python, same_shape

README = REPO / "README.md"
BLOCKS = blocks(README)
SHRINK = [("epochs=20", "epochs=1")]
COMMANDS = {"python -m minicnn.gradcheck": ["--max-elements", "2"]}      # command -> extra arguments
CHECKED_ELSEWHERE = {"python examples/conv_from_maths_to_code.py": "tests/test_examples_inside.py"}
EXCERPT = re.compile(r"^# excerpt from (\S+)\n")
NO_DATA = needs_fashion_mnist.mark.args[0]


def python_blocks():
    return [i for i, block in enumerate(BLOCKS) if block.language == "python"]


def sample_after(index):
    """The sample output that follows python block `index`, or None."""
    following = BLOCKS[index + 1] if index + 1 < len(BLOCKS) else None
    if following is not None and following.note == "output of the python block above":
        return following
    return None


def shrunk(code):
    for long, short in SHRINK:
        code = code.replace(long, short)
    return code


@pytest.mark.parametrize("index", python_blocks(), ids=lambda i: f"line {BLOCKS[i].line}")
def test_every_python_block_runs(index, tmp_path):
    block = BLOCKS[index]
    excerpt = EXCERPT.match(block.text)
    if excerpt:                                   # quoted from a file: each line must be there
        source = {line.strip() for line in (REPO / excerpt[1]).read_text().splitlines()}
        for line in block.text.splitlines()[1:]:
            assert line.strip() in source | {"..."}, f"not in {excerpt[1]}: {line}"
        return
    if "fashion_mnist" in block.text and NO_DATA:
        pytest.skip("Fashion-MNIST not installed")
    if '.to("gpu")' in block.text and not backend.gpu_available():
        pytest.skip("no CUDA GPU")
    output = run_python(shrunk(block.text), tmp_path)
    sample = sample_after(index)
    if sample is not None:
        assert same_shape(sample.text, output), f"README line {sample.line}: the sample is not what the block " \
                                                f"prints now:\n{output}"


@pytest.mark.parametrize("index", [i for i, b in enumerate(BLOCKS) if b.note and b.note.startswith("output of: ")
                                   and b.note[len("output of: "):] in COMMANDS], ids=lambda i: BLOCKS[i].note)
def test_sample_outputs_of_commands_have_the_shape_of_the_real_output(index, tmp_path):
    import subprocess
    import sys

    command = BLOCKS[index].note[len("output of: "):]
    argv = command.split()[1:] + COMMANDS[command]
    done = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=environment(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert same_shape(BLOCKS[index].text, done.stdout), f"README line {BLOCKS[index].line}:\n{done.stdout}"


def test_every_sample_output_is_checked():
    """A sample names what printed it, and that is run by a test."""
    for block in BLOCKS:
        if block.language == "text":
            assert block.note, f"README line {block.line}: an output block without <!-- output of ... -->"
        if block.note == "output of the python block above":
            assert any(sample_after(i) is block for i in python_blocks()), block.line
        elif block.note:
            command = block.note[len("output of: "):]
            assert command in COMMANDS or command in CHECKED_ELSEWHERE, block.note


def test_learners_start_here_comes_first_and_results_later():
    headings = re.findall(r"^## (.+)$", README.read_text(), flags=re.M)
    assert headings[0] == "Learners start here"
    assert headings.index("Inside the layers: tools for learners") < headings.index("Results: the lab on minicnn")
    assert headings.index("Results: the lab on minicnn") < headings.index("Speed on the CPU")
    text = README.read_text()
    learners = text[text.index("## Learners start here"):text.index("\n## ", text.index("## Learners start here") + 3)]
    order = [learners.index(name) for name in ("kernels/reference.py", "layers/convolutional.py",
                                               "activation step", "Model.compute_gradients")]
    assert order == sorted(order)
    assert "model.fusion = False" in learners and "layer_by_layer()" in learners
    assert "0.3" in learners and "0.2" in learners                  # the two LeakyReLU defaults


def test_the_readme_cites_only_what_exists():
    text = README.read_text()
    assert "DESIGN.md" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith("http"):
            assert (REPO / target).exists(), target


def test_the_readmes_kink_radius_is_the_codes():
    text = " ".join(README.read_text().split())
    radius = gradcheck.KINK_RADIUS
    assert f"within {radius}·eps of 0" in text and f"within {2 * radius}·eps" in text
    assert f"`gradcheck.KINK_RADIUS` = {radius}" in text
