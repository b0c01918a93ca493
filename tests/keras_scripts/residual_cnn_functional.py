# A small residual CNN written with Keras's functional API (keras-io style), imports swapped, data shrunk:
# Rescaling, Conv2D, BatchNormalization, x + y / layers.add, GlobalAveragePooling2D, RMSprop, CSVLogger,
# LambdaCallback, ModelCheckpoint, plot_model, get_layer.
import numpy as np
import minicnn as keras
from minicnn import layers

(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
x_train, y_train = x_train[:600, :, :, np.newaxis], y_train[:600]
x_test, y_test = x_test[:200, :, :, np.newaxis], y_test[:200]

inputs = keras.Input(shape=(28, 28, 1), name="img")
x = layers.Rescaling(1.0 / 255)(inputs)
x = layers.Conv2D(8, 3, activation="relu")(x)
block_1_output = layers.MaxPooling2D(3)(x)

x = layers.Conv2D(8, 3, activation="relu", padding="same")(block_1_output)
x = layers.Conv2D(8, 3, activation="relu", padding="same")(x)
block_2_output = layers.add([x, block_1_output])

x = layers.Conv2D(8, 3, activation="relu", padding="same")(block_2_output)
x = layers.BatchNormalization()(x)
block_3_output = x + block_2_output

x = layers.GlobalAveragePooling2D()(block_3_output)
x = layers.Dense(16, activation="relu")(x)
x = layers.Dropout(0.5)(x)
outputs = layers.Dense(10)(x)

model = keras.Model(inputs, outputs, name="toy_resnet")
model.summary()
keras.utils.plot_model(model, "mini_resnet.png", show_shapes=True)

epochs_seen = []
model.compile(
    optimizer=keras.optimizers.RMSprop(1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=[keras.metrics.SparseCategoricalAccuracy()],
)
history = model.fit(x_train, y_train, batch_size=64, epochs=2, validation_split=0.2, callbacks=[
    keras.callbacks.CSVLogger("training.log"),
    keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: epochs_seen.append(epoch)),
    keras.callbacks.ModelCheckpoint("best.keras", save_best_only=True, monitor="val_loss"),
])
results = model.evaluate(x_test, y_test, return_dict=True, verbose=0)
print(results, model.metrics_names)
print(model.get_layer("img") if False else model.get_layer(index=0).name)
restored = keras.models.load_model("best.keras")
RESULT = {"results": results, "epochs_seen": epochs_seen, "history": history.history,
          "csv": open("training.log").read(), "restored_layers": len(restored.layers)}
