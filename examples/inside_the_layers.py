"""Inside the layers: trace, statistics, figures, a gradient check and a time profile of the lab's model.

Run it from the repository root:

    python examples/inside_the_layers.py                # train the lab's baseline 1 epoch on 6,000 images
    python examples/inside_the_layers.py --quick        # 1,000 images, 2 profiled steps, a smaller check
    python examples/inside_the_layers.py --model lab_output/fashion_model_baseline.h5py   # a trained model

Steps: get a model (train the lab's baseline briefly, recording every layer's gradient norm per batch,
or load a saved one); trace one batch of test images through it and print each layer's statistics;
draw the first-layer filters, the feature maps of one test image at every Conv2D layer, the histograms
of every layer's output and of its gradient, and the gradient norms over training; profile a training
step as fit runs it (each Conv2D -> LeakyReLU -> MaxPooling2D one fused step of model.plan), then layer by
layer; check the gradients of the saved model in float64 (python -m minicnn.gradcheck).
The tools are in minicnn/inspection.py: they watch the model's own training step (Model.train_step)
through observers (minicnn.plan.Observer), so what they show is what fit runs.
Figures, the model and results.json (every number printed) go to the --output folder.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # minicnn from this checkout

from minicnn import backend, gradcheck, inspection, plotting  # noqa: E402
from minicnn.datasets import fashion_mnist                   # noqa: E402
from minicnn.lab import IMAGE_SHAPE, NUM_CLASSES, lab_model  # noqa: E402
from minicnn.models import load_model                        # noqa: E402
from minicnn.utils import set_random_seed, to_categorical    # noqa: E402
from minicnn.utils.files import atomic_write                 # noqa: E402

plt = plotting.plt
DEFAULT_TRAIN_IMAGES = 6000
QUICK_TRAIN_IMAGES = 1000
BATCH_SIZE = 64                 # the lab's
TRACE_IMAGES = 64               # one batch of test images is traced and profiled
PROFILE_STEPS = 5
GRADCHECK_ENTRIES = 10          # entries per array checked by the gradient check (5 with --quick)


def step(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)), flush=True)


def load_images(train_images, test_images):
    """The first train_images / test_images of Fashion-MNIST as the lab prepares them: (N, 28, 28, 1) in [0, 1]."""
    (train_X, train_Y), (test_X, test_Y) = fashion_mnist.load_data()

    def prepare(images, labels, count):
        x = images[:count].reshape(-1, *IMAGE_SHAPE).astype("float32") / 255.
        return x, to_categorical(labels[:count], NUM_CLASSES)
    return prepare(train_X, train_Y, train_images), prepare(test_X, test_Y, test_images)


def get_model(args, train):
    """Load --model, or build the lab's baseline; train it for args.epochs epochs, logging gradient norms."""
    step("1. The model")
    if args.model:
        model = load_model(args.model)
        print(f"Loaded {args.model}")
    else:
        model = lab_model()
        print("Built the lab's baseline model (minicnn.lab.lab_model)")
    model.to(args.device)
    logger = inspection.GradientNormLogger()
    if args.epochs:
        x, y = train
        print(f"Training {args.epochs} epoch(s) on {len(x)} images, batch {BATCH_SIZE}, "
              "with GradientNormLogger recording every layer's gradient norm after each batch")
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=args.epochs, verbose=1, callbacks=[logger])
    return model, logger


def look_inside(model, x, y, image_index, output, figures):
    """trace + stats of one batch, and the figures drawn from it."""
    step("2. Trace one batch through every layer")
    records = inspection.trace(model, x, y)
    layer_stats = inspection.stats(records)
    print(f"inspection.trace(model, x, y) on {len(x)} test images, layer by layer; inspection.stats of each "
          "layer (< 0: share of pre-activations below LeakyReLU's kink; norms are L2 norms):")
    print(inspection.stats_table(layer_stats))

    step("3. Figures")
    figures["filters"] = save(plotting.plot_filters(model), output, "filters.png")
    figures["feature_maps"] = save(plotting.plot_feature_maps(model, x[image_index]), output, "feature_maps.png")
    figures["activation_histograms"] = save(plotting.plot_activation_histograms(records), output,
                                            "activation_histograms.png")
    figures["gradient_histograms"] = save(plotting.plot_activation_histograms(records, value="grad_output", log=True),
                                          output, "gradient_histograms.png")
    print("In both histogram figures a LeakyReLU panel's 'inputs < 0' is the share of that layer's inputs below 0 "
          "(where it passes on only its slope times the gradient), whichever array the panel shows; the last "
          "layer's gradient panel shows dL/dz = (p - y) / N, since its softmax is taken with the loss.")
    return [stats_dict(s) for s in layer_stats]


def stats_dict(layer_stats):
    """A LayerStats as a JSON-able dict."""
    values = dict(vars(layer_stats))
    values["output_shape"] = list(values["output_shape"])
    return values


def time_profile(model, x, y, steps, output, figures):
    """The steps of model.plan as fit runs them (a fused block is one row), then every layer on its own."""
    step("4. Where the time of a training step goes")
    profile = inspection.profile(model, x, y, steps=steps)
    print(profile.table())
    figures["profile"] = save(plotting.plot_profile(profile), output, "profile.png")
    print("\nThe same, layer by layer (model.fusion = False: slower, but each layer gets its own row):")
    layer_by_layer = inspection.profile(model, x, y, steps=steps, layer_by_layer=True)
    print(layer_by_layer.table())
    return profile_dict(profile), profile_dict(layer_by_layer)


def profile_dict(profile):
    """A Profile as a JSON-able dict."""
    return {"device": profile.device, "batch_size": profile.batch_size, "steps": profile.steps,
            "step_ms": profile.step_ms, "optimizer_ms": profile.optimizer_ms, "other_ms": profile.other_ms,
            "layers": [dict(vars(t), total_ms=t.total_ms) for t in profile.layers]}


def gradient_check(model_path, entries):
    step("5. Gradient check of the saved model, in float64")
    argv = ["--model", str(model_path), "--batch", "2", "--max-elements", str(entries)]
    print("python -m minicnn.gradcheck " + " ".join(argv))
    return gradcheck.main(argv)


def save(fig, output, filename):
    """Save a figure as a PNG in the output folder and close it; return the file name."""
    plotting.save_figure(fig, output / filename)
    plt.close(fig)
    print(f"Saved figure {output / filename}")
    return filename


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a saved model to look inside (default: train the lab's baseline)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of training (default 1; 0 with --model: look at the model as saved)")
    parser.add_argument("--train-images", type=int, default=None,
                        help=f"training images (default {DEFAULT_TRAIN_IMAGES}, {QUICK_TRAIN_IMAGES} with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer images, fewer profiled steps, a smaller check")
    parser.add_argument("--image", type=int, default=0,
                        help="which traced test image shows its feature maps (default 0)")
    parser.add_argument("--profile-steps", type=int, default=None, help=f"profiled steps (default {PROFILE_STEPS})")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--seed", type=int, default=0, help="minicnn.utils.set_random_seed (default 0)")
    parser.add_argument("--output", type=Path, default=Path("out/inside_the_layers"),
                        help="folder for the figures, model.h5py and results.json (default out/inside_the_layers)")
    args = parser.parse_args(argv)
    args.epochs = (0 if args.model else 1) if args.epochs is None else args.epochs
    args.train_images = args.train_images or (QUICK_TRAIN_IMAGES if args.quick else DEFAULT_TRAIN_IMAGES)
    args.profile_steps = args.profile_steps or (2 if args.quick else PROFILE_STEPS)
    if args.epochs < 0 or args.train_images < 1 or args.profile_steps < 1:
        parser.error("--epochs must be >= 0, --train-images and --profile-steps >= 1")
    if not 0 <= args.image < TRACE_IMAGES:
        parser.error(f"--image must be in [0, {TRACE_IMAGES - 1}]")
    if args.device == "gpu" and not backend.gpu_available():
        parser.error("--device gpu needs CuPy and a CUDA GPU; none was found")
    return args


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    set_random_seed(args.seed)
    output = args.output
    output.mkdir(parents=True, exist_ok=True)
    train, (test_x, test_y) = load_images(args.train_images, TRACE_IMAGES)
    figures = {}

    model, logger = get_model(args, train)
    if logger.batch_norms:
        figures["gradient_norms"] = save(plotting.plot_gradient_norms(logger), output, "gradient_norms.png")
    else:
        print("No training, so no gradient-norm curve (give --epochs N to fine-tune and record one)")
    model_path = output / "model.h5py"
    model.save(model_path)

    layer_stats = look_inside(model, test_x, test_y, args.image, output, figures)
    profile, profile_layers = time_profile(model, test_x, test_y, args.profile_steps, output, figures)
    status = gradient_check(model_path, GRADCHECK_ENTRIES // 2 if args.quick else GRADCHECK_ENTRIES)

    results = {"model": args.model, "epochs": args.epochs, "train_images": args.train_images if args.epochs else 0,
               "trace_images": TRACE_IMAGES, "stats": layer_stats, "profile": profile,
               "profile_layer_by_layer": profile_layers,
               "gradient_norms": logger.batch_norms, "epoch_ends": logger.epoch_ends,
               "gradcheck_status": status, "figures": figures, "seconds": time.perf_counter() - started}
    with atomic_write(output / "results.json", "w", encoding="utf-8") as out:
        out.write(json.dumps(results, indent=1) + "\n")
    print(f"\nWrote {output / 'results.json'} ({results['seconds']:.0f} s in all)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
