# A Keras-2-era blog CNN for Fashion-MNIST: np_utils, K.image_data_format(), K.set_value on the
# learning rate, a per-batch decay callback with on_batch_end, history keys 'acc' / 'val_acc', an
# Activation layer, Adamax and Adagrad, class_weight. Imports swapped, data shrunk.
import numpy as np
from minicnn import backend as K
from minicnn.callbacks import Callback
from minicnn.datasets import fashion_mnist
from minicnn.layers import Activation, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from minicnn.models import Sequential
from minicnn.optimizers import Adagrad, Adamax
from minicnn.utils import np_utils

(X_train, y_train), (X_test, y_test) = fashion_mnist.load_data()
X_train, y_train, X_test, y_test = X_train[:800], y_train[:800], X_test[:200], y_test[:200]
img_rows, img_cols = 28, 28
if K.image_data_format() == 'channels_first':
    X_train = X_train.reshape(X_train.shape[0], 1, img_rows, img_cols)
    input_shape = (1, img_rows, img_cols)
else:
    X_train = X_train.reshape(X_train.shape[0], img_rows, img_cols, 1)
    X_test = X_test.reshape(X_test.shape[0], img_rows, img_cols, 1)
    input_shape = (img_rows, img_cols, 1)
X_train = X_train.astype('float32') / 255
X_test = X_test.astype('float32') / 255
Y_train = np_utils.to_categorical(y_train, 10)
Y_test = np_utils.to_categorical(y_test, 10)

model = Sequential()
model.add(Conv2D(8, (3, 3), input_shape=input_shape))
model.add(Activation('relu'))
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Dropout(0.25))
model.add(Flatten())
model.add(Dense(32))
model.add(Activation('relu'))
model.add(Dense(10))
model.add(Activation('softmax'))
model.compile(loss='categorical_crossentropy', optimizer=Adamax(lr=0.002), metrics=['acc'])


class BatchDecay(Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_begin(self, logs):
        self.batches = 0

    def on_batch_end(self, batch, logs=None):
        self.batches += 1
        lr = K.get_value(self.model.optimizer.lr)
        K.set_value(self.model.optimizer.lr, lr * 0.99)
        self.rates.append(K.get_value(self.model.optimizer.lr))


decay = BatchDecay()
history = model.fit(X_train, Y_train, batch_size=100, epochs=2, verbose=1, validation_data=(X_test, Y_test),
                    callbacks=[decay], class_weight={0: 2.0, 6: 2.0})
print(history.history['acc'], history.history['val_acc'])
score = model.evaluate(X_test, Y_test, verbose=0)
print('Test score:', score[0], 'Test accuracy:', score[1])
model.compile(loss='categorical_crossentropy', optimizer=Adagrad(learning_rate=0.01), metrics=['accuracy'])
model.train_on_batch(X_train[:32], Y_train[:32])
RESULT = {"rates": decay.rates, "batches": decay.batches, "acc": history.history['acc']}
