"""The lab's own code, with `keras` replaced by `minicnn`, on a few thousand real images."""
import numpy as np

from conftest import needs_fashion_mnist


def test_the_labs_imports_work():
    import minicnn as keras
    from minicnn.models import Sequential, Input, Model  # noqa: F401
    from minicnn.layers import Dense, Dropout, Flatten  # noqa: F401
    from minicnn.layers import Conv2D, MaxPooling2D  # noqa: F401
    from minicnn.layers.normalization import BatchNormalization  # noqa: F401
    from minicnn.layers.advanced_activations import LeakyReLU  # noqa: F401
    from minicnn.utils import to_categorical  # noqa: F401
    from minicnn.datasets import fashion_mnist as fm  # noqa: F401
    assert callable(keras.losses.categorical_crossentropy) and callable(keras.optimizers.Adam)


@needs_fashion_mnist
def test_lab_baseline_learns_in_one_epoch_on_real_images():
    import minicnn as keras
    from sklearn.model_selection import train_test_split
    from minicnn.datasets import fashion_mnist
    from minicnn.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from minicnn.layers.advanced_activations import LeakyReLU
    from minicnn.models import Sequential
    from minicnn.utils import to_categorical

    keras.utils.set_random_seed(13)
    (train_X, train_Y), (test_X, test_Y) = fashion_mnist.load_data()
    train_X, train_Y, test_X, test_Y = train_X[:10000], train_Y[:10000], test_X[:1000], test_Y[:1000]
    train_X = train_X.reshape(-1, 28, 28, 1).astype("float32") / 255.
    test_X = test_X.reshape(-1, 28, 28, 1).astype("float32") / 255.
    train_Y_one_hot = to_categorical(train_Y)
    test_Y_one_hot = to_categorical(test_Y)
    train_X, valid_X, train_label, valid_label = train_test_split(
        train_X, train_Y_one_hot, test_size=0.2, random_state=13)

    fashion_model = Sequential()
    fashion_model.add(Conv2D(32, kernel_size=(3, 3), activation='linear', input_shape=(28, 28, 1), padding='same'))
    fashion_model.add(LeakyReLU(alpha=0.1))
    fashion_model.add(MaxPooling2D((2, 2), padding='same'))
    fashion_model.add(Conv2D(64, (3, 3), activation='linear', padding='same'))
    fashion_model.add(LeakyReLU(alpha=0.1))
    fashion_model.add(MaxPooling2D(pool_size=(2, 2), padding='same'))
    fashion_model.add(Conv2D(128, (3, 3), activation='linear', padding='same'))
    fashion_model.add(LeakyReLU(alpha=0.1))
    fashion_model.add(MaxPooling2D(pool_size=(2, 2), padding='same'))
    fashion_model.add(Flatten())
    fashion_model.add(Dense(128, activation='linear'))
    fashion_model.add(LeakyReLU(alpha=0.1))
    fashion_model.add(Dense(10, activation='softmax'))
    fashion_model.compile(loss=keras.losses.categorical_crossentropy, optimizer=keras.optimizers.Adam(),
                          metrics=['accuracy'])
    fashion_model.summary(print_fn=lambda text: None)
    fashion_train = fashion_model.fit(train_X, train_label, batch_size=64, epochs=1, verbose=0,
                                      validation_data=(valid_X, valid_label))
    assert fashion_train.history['val_acc'][0] > 0.75, fashion_train.history

    test_eval = fashion_model.evaluate(test_X, test_Y_one_hot, verbose=0)
    assert test_eval[1] > 0.7 and test_eval[0] < 1.0
    predicted_classes = fashion_model.predict(test_X)
    predicted_classes = np.argmax(np.round(predicted_classes), axis=1)
    correct = np.where(predicted_classes == test_Y)[0]
    assert len(correct) > 600
