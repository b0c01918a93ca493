# A regression script in the style of the Keras "Regression" tutorials: mse loss, mae metric, an
# Adadelta and an SGD with clipvalue, EarlyStopping, predictions of shape (N, 1). Synthetic data.
import numpy as np
import minicnn as keras

rng = np.random.default_rng(0)
X = rng.standard_normal((400, 8)).astype("float32")
true_w = rng.standard_normal(8)
y = (X @ true_w + 0.5 + 0.05 * rng.standard_normal(400)).astype("float32")

model = keras.Sequential([
    keras.layers.Dense(16, activation="relu", input_shape=[8]),
    keras.layers.Dense(1),
])
model.compile(loss="mse", optimizer=keras.optimizers.SGD(learning_rate=0.01, clipvalue=1.0), metrics=["mae"])
history = model.fit(X, y, epochs=20, validation_split=0.2, verbose=0,
                    callbacks=[keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)])
mse_test, mae_test = model.evaluate(X[:50], y[:50], verbose=0)
y_pred = model.predict(X[:3])
print(history.history["mae"][-1], mse_test, mae_test, y_pred.shape)
model.compile(loss="mean_absolute_error", optimizer=keras.optimizers.Adadelta(learning_rate=1.0))
model.fit(X, y, epochs=1, verbose=0)
RESULT = {"loss": history.history["loss"], "mae": mae_test, "shape": y_pred.shape}
