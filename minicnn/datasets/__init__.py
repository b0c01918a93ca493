"""Datasets, loaded as in Keras: ``fashion_mnist.load_data()``."""
from minicnn.datasets import fashion_mnist

__all__ = ["fashion_mnist"]
