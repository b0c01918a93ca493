# Patterns from a popular hands-on textbook's chapter on training deep networks: he_normal / selu with
# lecun_normal, BatchNormalization, l2 regularization, Nadam, RMSprop, gradient clipping, an
# exponential schedule with LearningRateScheduler, ReduceLROnPlateau, Monte-Carlo dropout.
# Imports swapped to minicnn; data shrunk.
from functools import partial

import numpy as np
import minicnn as keras
from minicnn import backend as K

keras.backend.clear_session()
keras.utils.set_random_seed(42)
(X_train_full, y_train_full), (X_test, y_test) = keras.datasets.fashion_mnist.load_data()
X_train_full = X_train_full[:1200] / 255.0
y_train_full = y_train_full[:1200].astype(np.float32)     # float labels, as after a pandas round trip
X_valid, X_train = X_train_full[:200], X_train_full[200:]
y_valid, y_train = y_train_full[:200], y_train_full[200:]
X_test, y_test = X_test[:200] / 255.0, y_test[:200]

# selu + lecun_normal
model = keras.models.Sequential()
model.add(keras.layers.Flatten(input_shape=[28, 28]))
model.add(keras.layers.Dense(64, activation="selu", kernel_initializer="lecun_normal"))
model.add(keras.layers.Dense(32, activation="selu", kernel_initializer="lecun_normal"))
model.add(keras.layers.Dense(10, activation="softmax"))
model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.SGD(learning_rate=1e-3),
              metrics=["accuracy"])
model.fit(X_train, y_train, epochs=1, validation_data=(X_valid, y_valid), verbose=0)

# BatchNormalization, elu, he_normal, Nadam, l2
RegularizedDense = partial(keras.layers.Dense, activation="elu", kernel_initializer="he_normal",
                           kernel_regularizer=keras.regularizers.l2(0.01))
model = keras.models.Sequential([
    keras.layers.Flatten(input_shape=[28, 28]),
    keras.layers.BatchNormalization(),
    RegularizedDense(64),
    keras.layers.BatchNormalization(),
    RegularizedDense(32),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(loss="sparse_categorical_crossentropy", optimizer="nadam", metrics=["accuracy"])


def exponential_decay(lr0, s):
    def exponential_decay_fn(epoch):
        return lr0 * 0.1 ** (epoch / s)
    return exponential_decay_fn


lr_scheduler = keras.callbacks.LearningRateScheduler(exponential_decay(lr0=0.01, s=20))
history = model.fit(X_train, y_train, epochs=3, validation_data=(X_valid, y_valid), callbacks=[lr_scheduler],
                    verbose=0)
scheduled = history.history["lr"]

# RMSprop with clipnorm, ReduceLROnPlateau
model.compile(loss="sparse_categorical_crossentropy",
              optimizer=keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9, clipnorm=1.0), metrics=["accuracy"])
plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=0, min_delta=10.0)
history = model.fit(X_train, y_train, epochs=3, validation_data=(X_valid, y_valid), callbacks=[plateau], verbose=0)
reduced = history.history["lr"]
print("learning rates:", scheduled, reduced, K.get_value(model.optimizer.lr))


# Monte-Carlo dropout
class MCDropout(keras.layers.Dropout):
    def call(self, inputs):
        return super().call(inputs, training=True)


mc_model = keras.models.Sequential([
    keras.layers.Flatten(input_shape=[28, 28]),
    keras.layers.Dense(64, activation="relu"),
    MCDropout(rate=0.2),
    keras.layers.Dense(10, activation="softmax"),
])
mc_model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
mc_model.fit(X_train, y_train, epochs=1, verbose=0)
y_probas = np.stack([mc_model.predict(X_test[:3]) for sample in range(20)])
y_proba = y_probas.mean(axis=0)
y_std = y_probas.std(axis=0)
print(np.round(y_proba, 2), np.round(y_std, 2))
RESULT = {"scheduled": scheduled, "reduced": reduced, "final_lr": K.get_value(model.optimizer.lr), "std": y_std}
