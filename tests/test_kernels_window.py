"""minicnn/kernels/window.py: the padding and output-size rule, checked from first principles.

'valid': no padding, as many whole windows as fit. 'same' (Keras / TensorFlow): ceil(size / stride)
outputs, the fewest pad cells that make the last window fit, the odd one after (bottom / right).
"""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn.kernels import Window, output_size, padding_amounts

axes = st.tuples(st.integers(1, 30), st.integers(1, 6), st.integers(1, 4))   # (size, window, stride)


@settings(max_examples=200)
@given(axes)
def test_same_gives_ceil_size_over_stride_with_the_fewest_pads(axis):
    size, window, stride = axis
    before, after = padding_amounts(size, window, stride, "same")
    out = output_size(size, window, stride, before, after)
    assert out == math.ceil(size / stride)
    assert after - before in (0, 1)                                   # the odd cell goes after
    last_window_end = (out - 1) * stride + window                     # in padded coordinates
    assert last_window_end <= before + size + after                   # it fits ...
    assert before + after == max(last_window_end - size, 0)           # ... with no pad to spare


@settings(max_examples=200)
@given(axes)
def test_valid_has_no_padding_and_counts_the_whole_windows(axis):
    size, window, stride = axis
    assert padding_amounts(size, window, stride, "valid") == (0, 0)
    starts = [s for s in range(0, size, stride) if s + window <= size]   # windows wholly inside the image
    if starts:
        assert output_size(size, window, stride, 0, 0) == len(starts)
    else:
        assert output_size(size, window, stride, 0, 0) <= 0               # none fits: Window.over refuses


def test_an_even_kernel_pads_one_more_cell_after_as_tensorflow_does():
    assert padding_amounts(6, 4, 1, "same") == (1, 2)
    assert padding_amounts(7, 2, 2, "same") == (0, 1)                 # the lab's last pooling: 7 -> 4


def test_window_over_an_image_holds_its_whole_geometry():
    window = Window.over((7, 5), (3, 2), (2, 1), "same")
    assert window.size == (3, 2) and window.strides == (2, 1)
    assert (window.h, window.w) == (7, 5)
    assert window.pads == padding_amounts(7, 3, 2, "same") + padding_amounts(5, 2, 1, "same") == (1, 1, 0, 1)
    assert window.output_hw == (window.oh, window.ow) == (4, 5)
    assert Window.over((28, 28), (2, 2), (2, 2), "valid").pads == (0, 0, 0, 0)


def test_a_window_larger_than_a_valid_input_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        Window.over((3, 3), (4, 1), (1, 1), "valid")
