"""Layers, as Keras names them. Each file holds a family, forward and backward side by side."""
from minicnn.layers.advanced_activations import LeakyReLU, ReLU
from minicnn.layers.base import Layer, SymbolicTensor
from minicnn.layers.convolutional import Conv2D
from minicnn.layers.core import Activation, Dense, Dropout, Flatten
from minicnn.layers.normalization import BatchNormalization
from minicnn.layers.pooling import MaxPooling2D

# Class name -> class, used by load_model to rebuild a saved model.
BY_CLASS_NAME = {cls.__name__: cls for cls in (
    Conv2D, MaxPooling2D, Dense, Flatten, Dropout, Activation, LeakyReLU, ReLU, BatchNormalization)}

# Keras aliases
Convolution2D = Conv2D
MaxPool2D = MaxPooling2D

__all__ = ["Layer", "SymbolicTensor", "Conv2D", "Convolution2D", "MaxPooling2D", "MaxPool2D", "Dense",
           "Flatten", "Dropout", "Activation", "LeakyReLU", "ReLU", "BatchNormalization", "BY_CLASS_NAME"]
