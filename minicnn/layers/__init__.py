"""Layers, as Keras names them. Each file holds a family, forward and backward side by side."""
from minicnn.layers.advanced_activations import ELU, LeakyReLU, PReLU, ReLU, Softmax
from minicnn.layers.base import Layer, SymbolicTensor
from minicnn.layers.convolutional import Conv2D
from minicnn.layers.core import Activation, Dense, Dropout, Flatten, Rescaling, Reshape
from minicnn.layers.functional import Add, Input, InputLayer, add
from minicnn.layers.normalization import BatchNormalization
from minicnn.layers.pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D

# Class name -> class, used by load_model to rebuild a saved model.
BY_CLASS_NAME = {cls.__name__: cls for cls in (
    Conv2D, MaxPooling2D, Dense, Flatten, Dropout, Activation, LeakyReLU, ReLU, BatchNormalization,
    ELU, PReLU, Softmax, Reshape, Rescaling, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, Add)}

# Keras aliases
Convolution2D = Conv2D
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D

__all__ = ["Layer", "SymbolicTensor", "Conv2D", "Convolution2D", "MaxPooling2D", "MaxPool2D", "Dense",
           "Flatten", "Dropout", "Activation", "LeakyReLU", "ReLU", "BatchNormalization", "ELU", "PReLU",
           "Softmax", "Reshape", "Rescaling", "AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D",
           "GlobalAvgPool2D", "GlobalMaxPooling2D", "GlobalMaxPool2D", "Add", "add", "Input", "InputLayer",
           "BY_CLASS_NAME"]


# Keras layers minicnn leaves out: asking for one says so (README's compatibility table).
NOT_IN_MINICNN = (
    "Conv1D", "Conv3D", "Conv2DTranspose", "Conv1DTranspose", "Conv3DTranspose", "DepthwiseConv2D",
    "SeparableConv2D", "SeparableConv1D", "MaxPooling1D", "MaxPool1D", "MaxPooling3D", "AveragePooling1D",
    "GlobalAveragePooling1D", "GlobalMaxPooling1D", "UpSampling1D", "UpSampling2D", "ZeroPadding2D",
    "Cropping2D", "Concatenate", "concatenate", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot",
    "Embedding", "LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "TimeDistributed", "ConvLSTM2D",
    "LayerNormalization", "GroupNormalization", "UnitNormalization", "Normalization", "Attention",
    "MultiHeadAttention", "AdditiveAttention", "Lambda", "SpatialDropout1D", "SpatialDropout2D", "AlphaDropout",
    "GaussianDropout", "GaussianNoise", "ActivityRegularization", "RepeatVector", "Permute", "Masking",
    "ThresholdedReLU", "RandomFlip", "RandomRotation", "RandomZoom", "RandomCrop", "RandomTranslation",
    "RandomContrast", "Resizing", "CenterCrop", "TextVectorization", "StringLookup", "IntegerLookup",
    "CategoryEncoding", "Discretization", "Hashing", "Identity", "EinsumDense", "experimental",
)


def __getattr__(name):
    from minicnn.utils.checks import missing_keras_name
    raise missing_keras_name("layers", name, NOT_IN_MINICNN)
