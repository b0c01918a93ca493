"""Exercise dense_backward: the gradients of a Dense layer, z = x @ kernel + bias.

    d_kernel = x^T @ dz          (in, units)
    d_bias   = sum of dz over the batch          (units,)
    dx       = dz @ kernel^T     (N, in)
minicnn's answer is Dense.backward_linear itself (minicnn/layers/core.py).
"""
import numpy as np

from minicnn.exercises import inputs
from minicnn.exercises.checking import Case, Exercise, GradientCheck, Mistake, returned
from minicnn.exercises.plugging import attributes_replaced, layers_of
from minicnn.layers import Dense

OUTPUTS = ["dx", "d_kernel", "d_bias"]


def reference_dense_backward(dz, x, kernel):
    """Dense.backward_linear on a layer holding `kernel` that has just seen `x`."""
    layer = Dense(kernel.shape[1], kernel_initializer="zeros")     # zeros: draws no random numbers
    layer.build((None, kernel.shape[0]))
    layer.params["kernel"], layer.x = kernel, x
    dx = layer.backward_linear(dz)
    return dx, layer.grads["kernel"], layer.grads["bias"]


def run(f, dz, x, kernel):
    return returned(f.dense_backward(dz, x, kernel), OUTPUTS, "dense_backward")


def hand_made(dtype):
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype)                      # N = 2 images, 3 features
    kernel = np.arange(1, 10, dtype=dtype).reshape(3, 3) / 10        # 3 in, 3 units (square on purpose)
    dz = np.array([[1, 0, -1], [2, 1, 0]], dtype)
    return [Case("x = [[1, 2, 3], [4, 5, 6]], kernel = [[.1, .2, .3], [.4, .5, .6], [.7, .8, .9]], "
                 "dz = [[1, 0, -1], [2, 1, 0]]", {"dz": dz, "x": x, "kernel": kernel})]


def drawn(dtype):
    cases = []
    for i, (n, features, units) in enumerate([(4, 5, 3), (1, 7, 2), (8, 3, 6), (64, 20, 10)]):
        generator = inputs.rng(i)
        case_inputs = {"dz": inputs.normal(generator, (n, units), dtype),
                       "x": inputs.normal(generator, (n, features), dtype),
                       "kernel": inputs.normal(generator, (features, units), dtype)}
        cases.append(Case(f"N={n}, in={features}, units={units}, normal values", case_inputs))
    return cases


def gradient(f):
    """L = sum((x @ kernel + bias) * R): your dx, d_kernel, d_bias against central differences."""
    generator = inputs.rng()
    x, kernel, bias = (inputs.normal(generator, shape, np.float64) for shape in [(3, 4), (4, 2), (2,)])
    r = inputs.projection((3, 2))
    yours = returned(f.dense_backward(r, x.copy(), kernel.copy()), OUTPUTS, "dense_backward")

    def loss():
        return ((x @ kernel + bias) * r).sum()

    checks = [GradientCheck(name, yours[name], inputs.numerical(loss, array))
              for name, array in [("dx", x), ("d_kernel", kernel), ("d_bias", bias)]]
    return "N=3, in=4, units=2, L = sum((x @ kernel + bias) * R)", checks


def plug(model, f):
    """Every Dense layer's backward_linear becomes yours."""
    def backward_linear_of(layer):
        def backward_linear(dz):
            dx, layer.grads["kernel"], layer.grads["bias"] = f.dense_backward(dz, layer.x, layer.params["kernel"])
            return dx
        return backward_linear
    return attributes_replaced([(layer, "backward_linear", backward_linear_of(layer))
                                for layer in layers_of(model, Dense)])


# --- planted mistakes ---------------------------------------------------------------------------
def kernel_not_transposed(dz, x, kernel):
    dx, d_kernel, d_bias = reference_dense_backward(dz, x, kernel)
    return dz @ kernel, d_kernel, d_bias


def d_kernel_transposed(dz, x, kernel):
    dx, d_kernel, d_bias = reference_dense_backward(dz, x, kernel)
    return dx, dz.T @ x, d_bias


def d_kernel_averaged(dz, x, kernel):
    dx, d_kernel, d_bias = reference_dense_backward(dz, x, kernel)
    return dx, d_kernel / x.dtype.type(len(x)), d_bias


def bias_averaged(dz, x, kernel):
    dx, d_kernel, d_bias = reference_dense_backward(dz, x, kernel)
    return dx, d_kernel, dz.mean(axis=0)


def bias_not_summed(dz, x, kernel):
    dx, d_kernel, d_bias = reference_dense_backward(dz, x, kernel)
    return dx, d_kernel, dz


BATCH_ALREADY = "dz = dL/dz already holds the loss's 1/N (the loss is the batch mean)"
MISTAKES = [
    Mistake("kernel not transposed", {"dense_backward": kernel_not_transposed},
            "dx = dz @ kernel^T: dz is (N, units) and kernel (in, units), so kernel.T brings units back to in. "
            "(dz @ kernel only runs here because this kernel is square.)"),
    Mistake("d_kernel transposed", {"dense_backward": d_kernel_transposed},
            "d_kernel = x^T @ dz, of shape (in, units) like the kernel; dz^T @ x is its transpose."),
    Mistake("d_kernel divided by the batch", {"dense_backward": d_kernel_averaged},
            f"do not divide by N again: {BATCH_ALREADY}; d_kernel = x^T @ dz sums over the batch."),
    Mistake("bias gradient averaged", {"dense_backward": bias_averaged},
            f"d_bias is dz summed over the batch, not averaged: {BATCH_ALREADY}."),
    Mistake("bias gradient not summed", {"dense_backward": bias_not_summed},
            "the bias is added to every image, so its gradient sums dz over the batch axis: "
            "d_bias = dz.sum(axis=0), of shape (units,)."),
]

EXERCISE = Exercise(
    name="dense_backward", summary="Dense layer backward: dx, d_kernel, d_bias", functions=("dense_backward",),
    reference={"dense_backward": reference_dense_backward},
    run=run, hand_made=hand_made, drawn=drawn, gradient=gradient, mistakes=MISTAKES, plug=plug,
    advice="write the shapes next to each product: (N, in)^T @ (N, units) -> (in, units).")
