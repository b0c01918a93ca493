"""docs/derivations/: the pages exist, the docstrings that cite them point at them, and every
formula check on the pages runs and holds (conv2d.md and maxpool.md bit for bit on integers)."""
import re
from pathlib import Path

import pytest

from minicnn import activations, losses
from minicnn.layers import convolutional, pooling
from snippets import REPO, blocks, run_python

PAGES = ["conv2d.md", "maxpool.md", "softmax_cross_entropy.md"]
DERIVATIONS = REPO / "docs" / "derivations"


def cited_pages(text):
    return set(re.findall(r"docs/derivations/([\w.]+\.md)", text))


def test_the_docstrings_cite_pages_that_exist():
    cited = {
        "conv2d.md": convolutional.Conv2D.__doc__,
        "maxpool.md": pooling.MaxPooling2D.__doc__,
        "softmax_cross_entropy.md": losses.__doc__ + activations.Softmax.__doc__,
    }
    for page, text in cited.items():
        assert page in cited_pages(text), page
    for module in (convolutional, pooling, losses, activations):
        for page in cited_pages(Path(module.__file__).read_text()):
            assert (DERIVATIONS / page).is_file(), page


def test_the_index_links_every_page_and_every_link_resolves():
    index = (DERIVATIONS / "README.md").read_text()
    for page in PAGES:
        assert f"]({page})" in index
    for page in ["README.md"] + PAGES:
        text = (DERIVATIONS / page).read_text()
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if not target.startswith("http"):
                assert (DERIVATIONS / target).resolve().exists(), (page, target)


@pytest.mark.parametrize("page", PAGES)
def test_each_page_checks_its_formulas_against_the_code(page, tmp_path):
    checks = [block for block in blocks(DERIVATIONS / page) if block.language == "python"]
    assert len(checks) == 1
    assert "assert" in checks[0].text
    if page != "softmax_cross_entropy.md":      # integers: the formulas must equal the code bit for bit
        assert "array_equal" in checks[0].text and "allclose" not in checks[0].text
    run_python(checks[0].text, tmp_path)


def test_the_conv_page_shows_the_windows_per_pixel_picture():
    text = (DERIVATIONS / "conv2d.md").read_text()
    assert "](../images/conv_col2im_ones.png)" in text
    assert (REPO / "docs" / "images" / "conv_col2im_ones.png").read_bytes().startswith(b"\x89PNG")
