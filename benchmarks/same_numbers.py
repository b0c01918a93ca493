"""Same numbers as before? Train the lab's models from one seed on a small real subset and save every
weight, prediction and loss, so that two checkouts (before and after a refactor) can be compared bit for bit.

    python benchmarks/same_numbers.py save OLD_CHECKOUT old.npz     # e.g. a `git worktree add` of the old commit
    python benchmarks/same_numbers.py save .            new.npz
    python benchmarks/same_numbers.py compare old.npz new.npz       # exit status 0 when every array is identical

The models are built with the public layer API only (no minicnn.lab, which older checkouts lack): the
baseline fused and layer by layer for one epoch, and the dropout model for two.
"""
import argparse
import sys

import numpy as np

RUNS = [("baseline_fused", False, True, 1), ("baseline_layer_by_layer", False, False, 1), ("dropout_2_epochs", True, True, 2)]
IMAGES = 1280


def save(checkout, path):
    sys.path.insert(0, checkout)          # import minicnn from that checkout
    import minicnn
    from minicnn import backend
    from minicnn.datasets import fashion_mnist
    from minicnn.layers import Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPooling2D
    from minicnn.models import Sequential
    from minicnn.utils import to_categorical
    print("minicnn from", minicnn.__file__)

    def build(dropout):
        model = Sequential()
        for i, filters in enumerate((32, 64, 128)):
            first = {"input_shape": (28, 28, 1)} if i == 0 else {}
            model.add(Conv2D(filters, (3, 3), activation="linear", padding="same", **first))
            model.add(LeakyReLU(alpha=0.1))
            model.add(MaxPooling2D((2, 2), padding="same"))
            if dropout:
                model.add(Dropout((0.25, 0.25, 0.4)[i]))
        model.add(Flatten())
        model.add(Dense(128, activation="linear"))
        model.add(LeakyReLU(alpha=0.1))
        if dropout:
            model.add(Dropout(0.3))
        model.add(Dense(10, activation="softmax"))
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        return model

    (x, y), _ = fashion_mnist.load_data()
    x = x[:IMAGES].reshape(-1, 28, 28, 1).astype("float32") / 255.
    y = to_categorical(y[:IMAGES], 10)
    arrays = {}
    for name, dropout, fusion, epochs in RUNS:
        backend.set_random_seed(13)
        model = build(dropout)
        model.fusion = fusion
        history = model.fit(x, y, batch_size=64, epochs=epochs, validation_split=0.2, verbose=0)
        for i, weight in enumerate(model.get_weights()):
            arrays[f"{name}/weight_{i}"] = weight
        arrays[f"{name}/predictions"] = model.predict(x[:100], verbose=0)
        arrays[f"{name}/losses"] = np.array(history.history["loss"] + history.history["val_loss"])
    np.savez(path, **arrays)
    print(f"saved {len(arrays)} arrays to {path}")


def compare(path_a, path_b):
    a, b = np.load(path_a), np.load(path_b)
    differing = [key for key in a.files if key not in b.files or a[key].tobytes() != b[key].tobytes()]
    print(f"{len(a.files)} arrays; byte-identical: {len(a.files) - len(differing)}; differing: {differing or 'none'}")
    return 1 if differing else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("save")
    s.add_argument("checkout")
    s.add_argument("output")
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    args = parser.parse_args(argv)
    if args.command == "save":
        save(args.checkout, args.output)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    raise SystemExit(main())
