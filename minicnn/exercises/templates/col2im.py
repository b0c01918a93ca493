"""Exercise col2im: im2col backwards, the way a convolution's gradient reaches the image.

im2col copied each pixel into every row whose window covers it. Backwards, the gradient of each copy
must be added back to the pixel it was copied from:
    dx_padded[n, a*SH + i, b*SW + j, c] += dcol[(n*OH + a)*OW + b, (i*KW + j)*C + c]
for every row (n, a, b) and every entry (i, j, c). A pixel under several windows (stride < window)
receives the sum of their gradients. The padding cells hold gradients too, but they are not pixels:
drop them, dx = dx_padded without its top / bottom rows and left / right columns.

window: a minicnn.kernels.Window (fields kh kw sh sw top bottom left right h w oh ow; see the im2col
exercise: python -m minicnn.exercises start im2col).

Check it:          python -m minicnn.exercises check col2im col2im.py
Train with it:     python -m minicnn.exercises check col2im col2im.py --train
"""
import numpy as np


def col2im(dcol, window):
    """Add every row's entries back to the pixels they came from.

    dcol: (N*OH*OW, KH*KW*C); window: a minicnn.kernels.Window.
    Returns dx: (N, H, W, C), in dcol's dtype.
    """
    # your code here
    raise NotImplementedError("write col2im")
