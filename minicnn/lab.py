"""The Fashion-MNIST lab's two networks, built in one place.

The lab (examples/fashion_mnist_lab.py follows it step by step) trains a baseline and
the same network with Dropout. Everything that needs "the lab's model" builds it here:
the example, the gradient-check command, the benchmarks and the tests.

    3 x [Conv2D(32, 64, 128 filters, 3x3, same) -> LeakyReLU(0.1) -> MaxPooling2D(2x2, same)
         (-> Dropout 0.25, 0.25, 0.4)]
    Flatten -> Dense(128) -> LeakyReLU(0.1) (-> Dropout 0.3) -> Dense(10, softmax)

At 28x28x1 the baseline has 356,234 parameters.
"""
from minicnn import losses, optimizers
from minicnn.layers import Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPooling2D
from minicnn.models import Sequential

IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
NEGATIVE_SLOPE = 0.1                        # the lab's LeakyReLU(alpha=0.1)
CONV_FILTERS = (32, 64, 128)
CONV_DROPOUT = (0.25, 0.25, 0.4)            # after each pooling, in the dropout model
DENSE_DROPOUT = 0.3                         # after the hidden Dense layer, in the dropout model


def lab_model(dropout=False, input_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES, compile=True):
    """The lab's baseline (dropout=False) or dropout model, compiled as the lab compiles it
    (categorical cross-entropy, Adam with Keras's defaults, accuracy) unless compile=False."""
    model = Sequential()
    for i, filters in enumerate(CONV_FILTERS):
        first = {"input_shape": tuple(input_shape)} if i == 0 else {}
        model.add(Conv2D(filters, kernel_size=(3, 3), activation="linear", padding="same", **first))
        model.add(LeakyReLU(alpha=NEGATIVE_SLOPE))
        model.add(MaxPooling2D(pool_size=(2, 2), padding="same"))
        if dropout:
            model.add(Dropout(CONV_DROPOUT[i]))
    model.add(Flatten())
    model.add(Dense(128, activation="linear"))
    model.add(LeakyReLU(alpha=NEGATIVE_SLOPE))
    if dropout:
        model.add(Dropout(DENSE_DROPOUT))
    model.add(Dense(num_classes, activation="softmax"))
    if compile:
        model.compile(loss=losses.categorical_crossentropy, optimizer=optimizers.Adam(), metrics=["accuracy"])
    return model
