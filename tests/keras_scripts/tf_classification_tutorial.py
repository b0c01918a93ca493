# The TensorFlow "Basic classification: Classify images of clothing" tutorial, imports swapped to
# minicnn, and the data shrunk (the first 2,000 training and 500 test images).
import numpy as np

import minicnn as keras
import minicnn as tf   # the tutorial writes tf.keras.X; here tf.X

fashion_mnist = keras.datasets.fashion_mnist
(train_images, train_labels), (test_images, test_labels) = fashion_mnist.load_data()
train_images, train_labels = train_images[:2000], train_labels[:2000]
test_images, test_labels = test_images[:500], test_labels[:500]
class_names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
               'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']

train_images = train_images / 255.0
test_images = test_images / 255.0

model = tf.Sequential([
    tf.layers.Flatten(input_shape=(28, 28)),
    tf.layers.Dense(128, activation='relu'),
    tf.layers.Dense(10)
])
model.compile(optimizer='adam',
              loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=['accuracy'])
model.fit(train_images, train_labels, epochs=3)

test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=2)
print('\nTest accuracy:', test_acc)

probability_model = tf.Sequential([model, tf.layers.Softmax()])
predictions = probability_model.predict(test_images)
print(predictions[0], np.argmax(predictions[0]), test_labels[0])

img = test_images[1]
img = (np.expand_dims(img, 0))
predictions_single = probability_model.predict(img)
print(np.argmax(predictions_single[0]))

RESULT = {"test_acc": test_acc, "sums": predictions.sum(axis=1)}
