"""Activation layers with their own arguments: LeakyReLU and ReLU.

(Keras 2 kept them in keras.layers.advanced_activations; the lab imports them from there.)
"""
from minicnn import activations
from minicnn.layers.core import Activation
from minicnn.utils.checks import check_number


class LeakyReLU(Activation):
    """y = x if x > 0 else negative_slope * x; dx = dy or negative_slope * dy.

    Accepts `negative_slope` (Keras 3) or `alpha` (Keras 2, the lab); default 0.3 as Keras.
    """

    def __init__(self, negative_slope=None, alpha=None, **kwargs):
        if negative_slope is not None and alpha is not None and negative_slope != alpha:
            raise ValueError(
                f"LeakyReLU: give negative_slope or alpha, not both (got {negative_slope!r} and {alpha!r})"
            )
        slope = next((s for s in (negative_slope, alpha) if s is not None), 0.3)
        slope = check_number(slope, "negative_slope", "LeakyReLU", low=0)
        super().__init__(activations.LeakyReLU(slope), **kwargs)

    @property
    def negative_slope(self):
        return self.activation.negative_slope

    @property
    def alpha(self):
        """Keras 2's name for negative_slope (the lab writes LeakyReLU(alpha=0.1))."""
        return self.negative_slope

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return {**config, "negative_slope": self.negative_slope}


class ReLU(Activation):
    """y = max(x, 0); dx = dy where x > 0."""

    def __init__(self, **kwargs):
        super().__init__("relu", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return config
