"""Exercise softmax_cross_entropy_gradient: the gradient of the mean cross-entropy of softmax(z).

    p    = softmax(z) = exp(z) / sum_k exp(z_k)        each row
    loss = -1/N sum_n sum_k y_nk log p_nk
    dL/dz = (p - y) / N
minicnn's answer is losses.Loss.gradient_from_logits, the gradient the model trains with.
"""
import numpy as np

from minicnn import losses
from minicnn.exercises import inputs
from minicnn.exercises.checking import Case, Exercise, GradientCheck, Mistake, returned
from minicnn.exercises.plugging import attributes_replaced
from minicnn.plan import SoftmaxCrossEntropy

CROSS_ENTROPY = losses.CategoricalCrossentropy()


def reference_gradient(z, y):
    """(softmax(z) - y) / N, as the model computes it (softmax through losses.log_softmax)."""
    return CROSS_ENTROPY.gradient_from_logits(y, np.exp(losses.log_softmax(z)))


def run(f, z, y):
    return returned(f.softmax_cross_entropy_gradient(z, y), ["dz"], "softmax_cross_entropy_gradient")


def one_hot(labels, classes, dtype):
    return np.eye(classes, dtype=dtype)[labels]


def hand_made(dtype):
    return [
        Case("z = [[1, 2, 3], [1, 1, 1]], y = [[0, 0, 1], [1, 0, 0]] (N = 2 images, 3 classes)",
             {"z": np.array([[1, 2, 3], [1, 1, 1]], dtype), "y": one_hot([2, 0], 3, dtype)}),
        Case("large logits: z = [[1000, 0, -1000], [0, 500, 1000]], y = [[1, 0, 0], [0, 1, 0]]",
             {"z": np.array([[1000, 0, -1000], [0, 500, 1000]], dtype), "y": one_hot([0, 1], 3, dtype)}),
    ]


def drawn(dtype):
    cases = []
    for i, (n, classes, scale) in enumerate([(4, 10, 1.0), (1, 3, 3.0), (64, 10, 5.0), (7, 2, 20.0)]):
        generator = inputs.rng(i)
        z = (inputs.normal(generator, (n, classes), np.float64) * scale).astype(dtype)
        y = one_hot(generator.integers(0, classes, n), classes, dtype)
        cases.append(Case(f"N={n}, {classes} classes, logits normal times {scale}", {"z": z, "y": y}))
    return cases


def gradient(f):
    """Your dz against central differences of minicnn's loss, -1/N sum y log softmax(z)."""
    generator = inputs.rng()
    z = inputs.normal(generator, (4, 5), np.float64)
    y = one_hot(generator.integers(0, 5, 4), 5, np.float64)
    dz = run(f, z.copy(), y)["dz"]
    numeric = inputs.numerical(lambda: CROSS_ENTROPY.forward_from_logits(y, z), z)
    return "N=4, 5 classes, normal logits", [GradientCheck("dz", dz, numeric)]


def plug(model, f):
    """The model's loss hands the last layer your gradient (from the logits z that layer kept)."""
    if not isinstance(model.plan.steps[-1], SoftmaxCrossEntropy):
        raise ValueError("softmax_cross_entropy_gradient plugs into a model that ends in softmax + cross-entropy")

    def gradient_from_logits(y_true, p, sample_weight=None):     # fit's sample weights scale each row
        return losses.weighted_rows(f.softmax_cross_entropy_gradient(model.plan.steps[-1].z, y_true), sample_weight)
    return attributes_replaced([(model.loss, "gradient_from_logits", gradient_from_logits)])


# --- planted mistakes ---------------------------------------------------------------------------
def not_divided_by_batch(z, y):
    return reference_gradient(z, y) * z.dtype.type(len(z))


def sign_flipped(z, y):
    return -reference_gradient(z, y)


def softmax_over_batch(z, y):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return (e / e.sum(axis=0, keepdims=True) - y) / z.dtype.type(len(z))


def no_softmax(z, y):
    return (z - y) / z.dtype.type(len(z))


def no_max_shift(z, y):
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True) - y) / z.dtype.type(len(z))


MISTAKES = [
    Mistake("loss not divided by the batch", {"softmax_cross_entropy_gradient": not_divided_by_batch},
            "the loss is the mean over the N images of the batch, so its gradient is (p - y) / N."),
    Mistake("sign flipped", {"softmax_cross_entropy_gradient": sign_flipped},
            "dL/dz = (p - y) / N: raising the logit of the true class lowers the loss, so that entry is negative."),
    Mistake("softmax over the batch", {"softmax_cross_entropy_gradient": softmax_over_batch},
            "softmax normalises each row (one image): sum over axis=-1 with keepdims=True, not over axis 0."),
    Mistake("no softmax", {"softmax_cross_entropy_gradient": no_softmax},
            "z holds logits; first turn them into probabilities p = softmax(z), then dL/dz = (p - y) / N."),
    Mistake("softmax overflows", {"softmax_cross_entropy_gradient": no_max_shift},
            "exp(1000) overflows to inf and inf / inf is NaN. Subtract each row's largest logit first: "
            "softmax(z) = softmax(z - max(z)), and every exponent is then <= 0."),
]

EXERCISE = Exercise(
    name="softmax_cross_entropy_gradient", summary="softmax + cross-entropy: dL/dz from the logits",
    functions=("softmax_cross_entropy_gradient",),
    reference={"softmax_cross_entropy_gradient": reference_gradient},
    run=run, hand_made=hand_made, drawn=drawn, gradient=gradient, mistakes=MISTAKES, plug=plug,
    advice="compute p = softmax(z) for the hand-made input on paper; each row of p sums to 1.")
