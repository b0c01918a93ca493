"""The lab's full recipe in PyTorch, for comparing final test accuracy with minicnn's run.

Same data, same 48,000 / 12,000 split (train_test_split, random_state=13), same model (lab.spec),
Glorot-uniform kernels and zero biases as Keras, Adam(1e-3, eps=1e-7), batch 64, shuffled each
epoch, 20 epochs; then the test loss and accuracy on the 10,000 test images. One line per seed.

    python benchmarks/peer_lab_accuracy.py --model dropout --seeds 1,2,3 --threads 1

The point is the spread between seeds: one run of a 20-epoch recipe says little about a 0.5 %
difference in accuracy.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab    # noqa: E402
import peers  # noqa: E402

EPOCHS = 20
BATCH_SIZE = 64


def glorot_init(model, torch):
    """Keras's defaults: Glorot-uniform kernels (fans include the receptive field), zero biases."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.xavier_uniform_(module.weight)
            torch.nn.init.zeros_(module.bias)


def run(seed, model_name, epochs, threads):
    import torch
    from minicnn.datasets import fashion_mnist

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    (train_x, train_y), (test_x, test_y) = fashion_mnist.load_data()
    train_idx, valid_idx, _ = lab.split_indices(len(train_x))

    def tensors(images, labels):  # NCHW float32 in [0, 1], int64 labels
        x = torch.from_numpy(images.reshape(-1, 1, 28, 28).astype(np.float32) / np.float32(255))
        return x, torch.from_numpy(labels.astype(np.int64))

    x_train, y_train = tensors(train_x[train_idx], train_y[train_idx])
    x_valid, y_valid = tensors(train_x[valid_idx], train_y[valid_idx])
    x_test, y_test = tensors(test_x, test_y)
    model = peers.build_torch(lab.spec(model_name), torch.nn)
    glorot_init(model, torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    def evaluate(x, y):
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(x[i:i + 1000]) for i in range(0, len(x), 1000)])
        return (torch.nn.functional.cross_entropy(logits, y).item(),
                (logits.argmax(1) == y).float().mean().item())

    val_losses = []
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(x_train)))
        for i in range(0, len(order), BATCH_SIZE):
            batch = order[i:i + BATCH_SIZE]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
        val_losses.append(evaluate(x_valid, y_valid)[0])
    test_loss, test_accuracy = evaluate(x_test, y_test)
    return {"seed": seed, "model": model_name, "test_accuracy": test_accuracy, "test_loss": test_loss,
            "best_val_loss": min(val_losses), "best_val_epoch": int(np.argmin(val_losses)) + 1,
            "seconds": time.perf_counter() - start, "torch": torch.__version__}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["baseline", "dropout"], default="dropout")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds, one run each")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        result = run(seed, args.model, args.epochs, args.threads)
        results.append(result)
        print(f"PyTorch {result['torch']} {args.model} seed {seed}: test accuracy {result['test_accuracy']:.4f}, "
              f"test loss {result['test_loss']:.4f}, lowest val loss {result['best_val_loss']:.4f} "
              f"(epoch {result['best_val_epoch']}), {result['seconds']:.0f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
