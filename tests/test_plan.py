"""The step plan (minicnn/plan.py): what a model runs for one batch, and its fused steps.

The claim is that fusion changes how the layers run, never what they compute:
  (a) the fused kernels of cpu.py equal the reference ones (ties, overlapping windows, padding);
  (b) the reference fused backward equals the unfused chain maxpool -> LeakyReLU -> bias,
      i.e. reading the slope from the pooled output's sign is right;
  (c) a model gives the same outputs, loss, gradients and dx fused and layer by layer,
      over drawn architectures, and passes a float64 gradient check fused;
  (d) only the supported runs are fused, never a layer whose code is not minicnn's own (patched on
      the object or on its class, a subclass, its activation patched, a kernel it calls overridden);
      inspection's tools still see every layer;
  (e) the plan is made once and reused batch after batch, made again when the layers, the loss
      or the fusion switch change; observers hear about every step, in order, and about the update.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minicnn import activations, backend, gradcheck, inspection, kernels, losses, models, plan
from minicnn.kernels import Window, reference
from minicnn.lab import lab_model
from minicnn.layers import (Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, LeakyReLU,
                            MaxPooling2D, ReLU)
from minicnn.models import Sequential
from minicnn.plan import ConvActivationPool, LayerStep, Observer, SoftmaxCrossEntropy, make_plan
from minicnn.utils import to_categorical

from conftest import toy_images

try:
    from minicnn.kernels import cpu
except ImportError:
    cpu = None
needs_numba = pytest.mark.skipif(cpu is None, reason="Numba is not installed")
FAST = settings(max_examples=40, deadline=None)


@st.composite
def pool_cases(draw):
    """z (N, H, W, F), bias or None, slope, and a pooling window; ties are common."""
    n, f = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    ph, pw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["valid", "same"]))
    if padding == "valid" and (ph > h or pw > w):
        ph, pw = min(ph, h), min(pw, w)
    window = Window.over((h, w), (ph, pw), (sh, sw), padding)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        z = rng.standard_normal((n, h, w, f))
    else:   # small integers: many equal values, so many ties (also after the slope)
        z = rng.integers(-3, 4, (n, h, w, f)).astype(float)
    if draw(st.booleans()):  # a few overflowed or undefined values, as a diverging run makes
        z.flat[rng.integers(0, z.size, 3)] = rng.choice([np.inf, -np.inf, np.nan], 3)
    bias = rng.integers(-2, 3, f).astype(float) if draw(st.booleans()) else None
    slope = draw(st.sampled_from([0.0, 0.1, 0.3, 1.0]))
    return z, bias, slope, window


def _overlapping(window):
    return window.sh < window.kh or window.sw < window.kw


@needs_numba
@FAST
@given(pool_cases(), st.sampled_from([np.float32, np.float64]))
def test_cpu_fused_kernels_match_reference(case, dtype):
    z, bias, slope, window = case
    z = z.astype(dtype)
    bias = None if bias is None else bias.astype(dtype)
    y, argmax = cpu.bias_leaky_maxpool_forward(z, bias, slope, window)
    y_ref, argmax_ref = reference.bias_leaky_maxpool_forward(z, bias, slope, window)
    assert y.dtype == dtype and argmax.dtype == np.int32 and y.shape == y_ref.shape
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)          # the same winners, ties included

    dy = np.random.default_rng(0).standard_normal(y.shape).astype(dtype)
    dz, d_bias = cpu.bias_leaky_maxpool_backward(dy, y, argmax, slope, window)
    dz_ref, d_bias_ref = reference.bias_leaky_maxpool_backward(dy, y_ref, argmax_ref, slope, window)
    assert dz.dtype == d_bias.dtype == dtype and dz.shape == z.shape and d_bias.shape == (z.shape[-1],)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    if _overlapping(window):   # a cell that wins several windows: its sum may be added in another order
        np.testing.assert_allclose(dz, dz_ref, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(dz, dz_ref)
    np.testing.assert_allclose(d_bias, d_bias_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("module_name", ["reference", pytest.param("cpu", marks=needs_numba)])
def test_a_window_won_by_its_padding_passes_nothing_to_the_bias(module_name):
    """A window of -inf keeps cell 0, here a padding cell: its gradient is dropped, also for the bias."""
    module = reference if module_name == "reference" else cpu
    z = np.full((1, 1, 2, 1), -np.inf, np.float32)          # a row of two overflowed values
    window = Window.over((1, 2), (1, 3), (1, 1), "same")     # 1x3 windows, one padding column each side
    assert window.pads == (0, 0, 1, 1)
    y, argmax = module.bias_leaky_maxpool_forward(z, None, 0.1, window)
    np.testing.assert_array_equal(y, -np.inf)
    np.testing.assert_array_equal(argmax, 0)                 # [pad, -inf, -inf] and [-inf, -inf, pad]
    dz, d_bias = module.bias_leaky_maxpool_backward(np.ones_like(y), y, argmax, 0.1, window)
    np.testing.assert_allclose(dz.ravel(), [0.1, 0.0])       # the first window's winner is padding: dropped
    np.testing.assert_allclose(d_bias, [0.1])                # ... for the bias too


@FAST
@given(pool_cases())
def test_reference_fused_backward_equals_the_three_steps(case):
    """Bias, LeakyReLU and max-pooling one after the other, forward and backward, in float64."""
    z, bias, slope, window = case
    zb = z if bias is None else z + bias
    activated = reference.leaky_relu_forward(zb, slope) if slope > 0 else np.maximum(zb, 0)   # 0: ReLU
    y_chain, argmax_chain = kernels.reference.maxpool_forward(activated, window)
    y, argmax = reference.bias_leaky_maxpool_forward(z, bias, slope, window)
    np.testing.assert_array_equal(y, y_chain)
    np.testing.assert_array_equal(argmax, argmax_chain)

    dy = np.random.default_rng(1).standard_normal(y.shape)
    d_pool = reference.maxpool_backward(dy, argmax, window)
    dz_chain = reference.leaky_relu_backward(d_pool, zb, slope)     # slope read from z + bias itself
    dz, d_bias = reference.bias_leaky_maxpool_backward(dy, y, argmax, slope, window)
    np.testing.assert_allclose(dz, dz_chain, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(d_bias, dz_chain.reshape(-1, z.shape[-1]).sum(axis=0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("form", ["leaky_layer", "relu_layer", "activation_relu", "conv_relu", "conv_leaky"])
def test_fused_block_equals_its_layers_with_inf_and_nan(form):
    """A diverging run makes inf and NaN: the fused block passes them on exactly as the layers do."""
    layers = _block(form, 4, 3, 1, "same", True, 0.2, MaxPooling2D(2, padding="same"))
    plain = Sequential(list(layers))
    plain.build((None, 5, 5, 2))
    plain.layers[0].params["bias"][...] = [np.inf, -np.inf, np.nan, 0.5]   # one channel of each, one finite
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 5, 5, 2)).astype(np.float32)
    x[0, 1, 1, 0] = -np.inf                                                  # and an overflowed input pixel
    block = make_plan(plain.layers).steps[0]
    assert isinstance(block, ConvActivationPool) and block.layers == plain.layers
    with np.errstate(invalid="ignore", over="ignore"):
        y_fused = block.forward(x, training=True)
        dy = rng.standard_normal(y_fused.shape).astype(np.float32)
        dx_fused = block.backward(dy)
        grads_fused = {key: value.copy() for key, value in plain.layers[0].grads.items()}
        y_plain = x
        for layer in plain.layers:
            y_plain = layer.forward(y_plain, training=True)
        d = dy
        for layer in reversed(plain.layers):
            d = layer.backward(d)
    np.testing.assert_array_equal(y_fused, y_plain)                 # NaN where NaN, inf where inf
    np.testing.assert_array_equal(block.argmax, plain.layers[-1].argmax)
    np.testing.assert_allclose(dx_fused, d, rtol=1e-6, atol=1e-6)
    for key, value in grads_fused.items():
        np.testing.assert_allclose(value, plain.layers[0].grads[key], rtol=1e-5, atol=1e-5)


# --- whole models, fused and layer by layer ---------------------------------------
ACTIVATION_FORMS = ["leaky_layer", "relu_layer", "activation_relu", "conv_relu", "conv_leaky"]


def _block(form, filters, kernel_size, strides, padding, use_bias, slope, pool):
    """The layers of one fusable block, with the activation written in one of five ways."""
    conv_activation = {"conv_relu": "relu", "conv_leaky": activations.LeakyReLU(slope)}.get(form)
    layers = [Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias,
                     activation=conv_activation)]
    if form == "leaky_layer":
        layers.append(LeakyReLU(alpha=slope))
    elif form == "relu_layer":
        layers.append(ReLU())
    elif form == "activation_relu":
        layers.append(Activation("relu"))
    return layers + [pool]


@st.composite
def block_models(draw):
    size = draw(st.integers(5, 9))
    kernel_size = draw(st.integers(1, 3))
    conv_strides = draw(st.integers(1, 2))
    padding = draw(st.sampled_from(["valid", "same"]))
    pool_size, pool_strides = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pool_padding = draw(st.sampled_from(["valid", "same"]))
    form = draw(st.sampled_from(ACTIVATION_FORMS))
    slope = draw(st.sampled_from([0.05, 0.1, 0.3]))   # ReLU forms cover slope 0
    use_bias = draw(st.booleans())
    filters, channels = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    two_blocks = draw(st.booleans())
    layers = _block(form, filters, kernel_size, conv_strides, padding, use_bias, slope,
                    MaxPooling2D(pool_size, strides=pool_strides, padding=pool_padding))
    if two_blocks:   # a second block after the first, so its dx goes through a fused backward
        layers += _block("leaky_layer", 3, 2, 1, "same", True, 0.1, MaxPooling2D(2, padding="same"))
    model = Sequential(layers + [Flatten(), Dense(3, activation="softmax")])
    try:
        model.build((None, size, size, channels))
    except ValueError:          # the window does not fit the image: draw again
        assume(False)
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    seed = draw(st.integers(0, 2**16))
    return model, channels, size, seed


def _run(model, x, y):
    loss, y_pred, dx = model.compute_gradients(x, y, training=True, input_gradient=True)
    grads = [model_layer.grads[key].copy() for model_layer, key in model.trainable_params()]
    return float(loss), y_pred.copy(), dx.copy(), grads


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(max_examples=30, deadline=None)
@given(case=block_models())
def test_fused_model_equals_layer_by_layer(case, dtype, request):
    if dtype == "float64":
        request.getfixturevalue("float64")
    model, channels, size, seed = case
    if dtype == "float64":
        model = gradcheck.as_float64(model)
    assert any(isinstance(step, ConvActivationPool) for step in model.plan.steps)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, size, size, channels)).astype(dtype)
    y = to_categorical(rng.integers(0, 3, 3), 3).astype(dtype)
    fused = _run(model, x, y)
    with model.layer_by_layer():
        plain = _run(model, x, y)
    assert model.fusion is True
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert fused[0] == pytest.approx(plain[0], rel=tol)
    np.testing.assert_array_equal(fused[1], plain[1])                  # the forward pass is identical
    for ours, theirs in zip([fused[2]] + fused[3], [plain[2]] + plain[3]):
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol)


def test_lab_model_fused_is_bit_identical_to_layer_by_layer():
    """The lab's geometry (2x2 pools, no overlap): every number is exactly the same."""
    model = lab_model()
    assert _kinds(model) == ["fused:Conv2D+LeakyReLU+MaxPooling2D"] * 3 + ["Flatten", "Dense", "LeakyReLU",
                                                                           "softmax+loss:Dense"]
    rng = np.random.default_rng(0)
    x = rng.random((8, 28, 28, 1), dtype=np.float32)
    y = to_categorical(rng.integers(0, 10, 8), 10)
    fused = _run(model, x, y)
    with model.layer_by_layer():
        plain = _run(model, x, y)
    assert fused[0] == plain[0]
    for ours, theirs in zip([fused[1], fused[2]] + fused[3], [plain[1], plain[2]] + plain[3]):
        assert ours.tobytes() == theirs.tobytes()                     # bit for bit, zero signs included


def test_training_fused_and_unfused_ends_with_the_same_weights():
    x, labels = toy_images(n=96, size=8)
    y = to_categorical(labels, 3)
    weights = []
    for fuse in (True, False):
        model = Sequential([Conv2D(4, 3, padding="same", input_shape=(8, 8, 1)), LeakyReLU(alpha=0.1),
                            MaxPooling2D(2), Dropout(0.2), Flatten(), Dense(3, activation="softmax")])
        init = np.random.default_rng(0)                      # the same starting weights both times
        model.set_weights([init.uniform(-0.3, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()])
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        model.fusion = fuse
        backend.set_random_seed(7)                            # the same shuffles and dropout masks
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        weights.append(model.get_weights())
    for fused, plain in zip(*weights):
        np.testing.assert_array_equal(fused, plain)


@pytest.mark.parametrize("pool", [(2, 2), (3, 2)], ids=["2x2 pools", "3x3 pools moved by 2 (overlap)"])
def test_fused_model_passes_the_gradient_check(float64, pool):
    size, stride = pool
    model = Sequential([Conv2D(3, 3, padding="same", input_shape=(7, 7, 2)), LeakyReLU(alpha=0.1),
                        MaxPooling2D(size, strides=stride, padding="same"),
                        Conv2D(4, 2, activation="relu"), MaxPooling2D(2),
                        Flatten(), Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy")
    assert sum(isinstance(step, ConvActivationPool) for step in model.plan.steps) == 2
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 7, 2))
    y = to_categorical([0, 2], 3)
    errors = gradcheck.check_model(model, x, y, fused=True)      # the plan as fit runs it
    assert all(map(gradcheck.passed, errors.values())), errors


@needs_numba
def test_reference_kernels_give_the_same_fused_model():
    model = lab_model(input_shape=(12, 12, 1))
    rng = np.random.default_rng(5)
    x = rng.random((4, 12, 12, 1), dtype=np.float32)
    y = to_categorical([1, 2, 3, 4], 10)
    fast = _run(model, x, y)
    kernels.use_reference_kernels(True)
    try:
        slow = _run(model, x, y)
    finally:
        kernels.use_reference_kernels(False)
    for ours, theirs in zip([fast[1], fast[2]] + fast[3], [slow[1], slow[2]] + slow[3]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


# --- which runs are fused -----------------------------------------------------------
def _kind(step):
    """'fused:Conv2D+LeakyReLU+MaxPooling2D', 'softmax+loss:Dense', or the layer's class for a LayerStep."""
    names = "+".join(type(layer).__name__ for layer in step.layers)
    if isinstance(step, ConvActivationPool):
        return "fused:" + names
    if isinstance(step, SoftmaxCrossEntropy):
        return "softmax+loss:" + names
    assert isinstance(step, LayerStep) and len(step.layers) == 1
    return names


def _kinds(what, input_shape=(8, 8, 2)):
    """The kinds of the steps of a plan, of a model's plan, or of the plan of a model built from layers."""
    if isinstance(what, list):
        what = Sequential(what)
        what.build((None,) + input_shape)
    steps = what.steps if isinstance(what, plan.Plan) else what.plan.steps
    return [_kind(step) for step in steps]


def test_steps_fuse_only_the_supported_runs():
    assert _kinds([Conv2D(2, 3), LeakyReLU(0.2), MaxPooling2D()]) == ["fused:Conv2D+LeakyReLU+MaxPooling2D"]
    assert _kinds([Conv2D(2, 3, activation="relu"), MaxPooling2D()]) == ["fused:Conv2D+MaxPooling2D"]
    assert _kinds([Conv2D(2, 3), Activation("relu"), MaxPooling2D()]) == ["fused:Conv2D+Activation+MaxPooling2D"]
    # not fusable: another activation, a layer in between, no pooling, an activation applied twice
    assert _kinds([Conv2D(2, 3, activation="sigmoid"), MaxPooling2D()]) == ["Conv2D", "MaxPooling2D"]
    assert _kinds([Conv2D(2, 3), Activation("tanh"), MaxPooling2D()]) == ["Conv2D", "Activation", "MaxPooling2D"]
    assert _kinds([Conv2D(2, 3), LeakyReLU(0.1), Dropout(0.5), MaxPooling2D()]) == [
        "Conv2D", "LeakyReLU", "Dropout", "MaxPooling2D"]
    assert _kinds([Conv2D(2, 3), BatchNormalization(), LeakyReLU(0.1), MaxPooling2D()]) == [
        "Conv2D", "BatchNormalization", "LeakyReLU", "MaxPooling2D"]
    assert _kinds([Conv2D(2, 3), LeakyReLU(0.1)]) == ["Conv2D", "LeakyReLU"]
    assert _kinds([Conv2D(2, 3, activation="relu"), LeakyReLU(0.1), MaxPooling2D()]) == [
        "Conv2D", "LeakyReLU", "MaxPooling2D"]
    # a negative slope is not monotone: the pooled sign no longer tells the slope
    assert _kinds([Conv2D(2, 3, activation=activations.LeakyReLU(-0.5)), MaxPooling2D()]) == [
        "Conv2D", "MaxPooling2D"]
    # LeakyReLU(0) is not ReLU at -inf (0 * -inf is NaN), so it runs as written
    assert _kinds([Conv2D(2, 3), LeakyReLU(0.0), MaxPooling2D()]) == ["Conv2D", "LeakyReLU", "MaxPooling2D"]

    class MyLeakyReLU(LeakyReLU):     # a subclass may change forward/backward: never fused
        pass
    assert _kinds([Conv2D(2, 3), MyLeakyReLU(0.1), MaxPooling2D()]) == ["Conv2D", "MyLeakyReLU", "MaxPooling2D"]
    # two blocks in a row, each fused
    assert _kinds([Conv2D(2, 3, padding="same"), LeakyReLU(0.1), MaxPooling2D(),
                   Conv2D(2, 3, padding="same", activation="relu"), MaxPooling2D()]) == [
        "fused:Conv2D+LeakyReLU+MaxPooling2D", "fused:Conv2D+MaxPooling2D"]


def test_softmax_meets_only_a_cross_entropy_on_probabilities():
    layers = [Flatten(), Dense(3, activation="softmax")]
    assert _kinds(layers) == ["Flatten", "Dense"]                                 # no loss yet
    assert _kinds(make_plan(layers, losses.get("categorical_crossentropy"))) == [
        "Flatten", "softmax+loss:Dense"]
    assert _kinds(make_plan(layers, losses.CategoricalCrossentropy(from_logits=True))) == ["Flatten", "Dense"]
    sigmoid = [Flatten(), Dense(3, activation="sigmoid")]
    assert _kinds(make_plan(sigmoid, losses.get("categorical_crossentropy"))) == ["Flatten", "Dense"]


def test_a_layer_patched_on_the_object_runs_as_patched_and_is_never_fused():
    """A learner (or a trace) replaces a layer's forward: that code runs, not a fused kernel."""
    model = Sequential([Conv2D(2, 3, padding="same", input_shape=(6, 6, 1)), LeakyReLU(0.1), MaxPooling2D(),
                        Flatten(), Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy")
    conv, leaky, pool = model.layers[:3]
    assert _kinds(model)[0] == "fused:Conv2D+LeakyReLU+MaxPooling2D"
    calls = []

    def watched_forward(x, training=False):
        calls.append(x.shape)
        return LeakyReLU.forward(leaky, x, training=training)

    leaky.forward = watched_forward                         # patched on the object, not on the class
    assert plan.replaced(leaky) and not plan.replaced(conv)
    assert _kinds(model)[:3] == ["Conv2D", "LeakyReLU", "MaxPooling2D"]
    x = np.random.default_rng(0).standard_normal((4, 6, 6, 1))
    model.train_on_batch(x, to_categorical([0, 1, 2, 0], 3))
    assert calls == [(4, 6, 6, 2)]                          # the patched code is the code that ran
    del leaky.forward                                       # the patch removed: fused again
    assert not plan.replaced(leaky) and _kinds(model)[0] == "fused:Conv2D+LeakyReLU+MaxPooling2D"
    leaky.backward_linear = lambda dz: dz                   # any of forward, backward, linear, backward_linear
    assert plan.replaced(leaky) and _kinds(model)[0] == "Conv2D"


def _block_model():
    model = Sequential([Conv2D(2, 3, padding="same", input_shape=(6, 6, 1)), LeakyReLU(0.1), MaxPooling2D(),
                        Flatten(), Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    return model


@pytest.mark.parametrize("cls, name", [(activations.LeakyReLU, "backward"), (activations.LeakyReLU, "forward"),
                                       (LeakyReLU, "backward"), (Conv2D, "backward_linear"), (Conv2D, "linear"),
                                       (MaxPooling2D, "backward"), (Activation, "backward")],
                         ids=lambda v: getattr(v, "__qualname__", v))
def test_a_method_patched_on_the_class_is_never_fused_away(monkeypatch, cls, name):
    """A learner writes `activations.LeakyReLU.backward = mine` after import: the plan made before
    is made again, without the fused step, so the learner's code runs in fit."""
    model = _block_model()
    assert _kinds(model)[0] == "fused:Conv2D+LeakyReLU+MaxPooling2D"
    original = getattr(cls, name)
    calls = []

    def watched(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(cls, name, watched)
    assert _kinds(model)[:3] == ["Conv2D", "LeakyReLU", "MaxPooling2D"]
    model.train_on_batch(np.random.default_rng(0).standard_normal((2, 6, 6, 1)), to_categorical([0, 1], 3))
    assert calls                                              # the patched method ran
    monkeypatch.undo()                                        # put back: fused again
    assert _kinds(model)[0] == "fused:Conv2D+LeakyReLU+MaxPooling2D"


def test_a_wrong_backward_patched_on_the_class_changes_training(monkeypatch):
    """With LeakyReLU's derivative multiplied by 100, fit's first step changes the weights differently."""
    weights = []
    for patch in (False, True):
        backend.set_random_seed(3)
        model = _block_model()
        if patch:
            monkeypatch.setattr(activations.LeakyReLU, "backward",
                                lambda self, dy, z, y: 100 * dy * np.where(z > 0, 1, self.negative_slope))
        model.train_on_batch(np.random.default_rng(0).standard_normal((4, 6, 6, 1)), to_categorical([0, 1, 2, 0], 3))
        weights.append(model.layers[0].get_weights()[0])
    assert not np.allclose(weights[0], weights[1])


def test_a_subclass_changing_backward_keeps_its_own_softmax_backward():
    """The softmax + cross-entropy step would skip a Dense subclass's own backward: not for a changed one."""
    class MyDense(Dense):
        def backward(self, dy):
            return super().backward(dy)

    class SameDense(Dense):
        pass

    loss = losses.get("categorical_crossentropy")
    assert _kinds(make_plan([Flatten(), MyDense(3, activation="softmax")], loss)) == ["Flatten", "MyDense"]
    assert _kinds(make_plan([Flatten(), SameDense(3, activation="softmax")], loss)) == [
        "Flatten", "softmax+loss:SameDense"]
    assert plan.replaced(MyDense(2)) and not plan.replaced(SameDense(2))


def test_a_kernel_the_fused_step_skips_turns_fusion_off_while_it_is_overridden():
    model = _block_model()
    for name in ("leaky_relu_backward", "maxpool_forward", "sum_rows"):
        with kernels.override(name, getattr(reference, name)):
            assert _kinds(model)[0] == "Conv2D", name
        assert _kinds(model)[0] == "fused:Conv2D+LeakyReLU+MaxPooling2D"
    with kernels.override("im2col", reference.im2col):      # the fused step calls im2col itself
        assert _kinds(model)[0] == "fused:Conv2D+LeakyReLU+MaxPooling2D"


def test_a_fused_step_runs_its_layers_and_leaves_them_nothing_stale():
    model = lab_model(input_shape=(8, 8, 1))
    block = model.plan.steps[0]
    conv, leaky, pool = block.layers
    assert (block.conv, block.pool, block.negative_slope) == (conv, pool, leaky.negative_slope) == (conv, pool, 0.1)
    x = np.random.default_rng(1).random((2, 8, 8, 1), dtype=np.float32)
    with model.layer_by_layer():
        model.forward(x, training=True)                     # every layer keeps its own caches ...
    assert leaky.z is not None and pool.argmax is not None
    y = block.forward(x, training=True)                     # ... which the fused step drops
    assert leaky.z is None and leaky.y is None and pool.argmax is None and conv.z is None
    assert conv.col is not None                             # the convolution's own part keeps col for backward
    assert y is block.y and y.shape == block.argmax.shape == (2,) + pool.output_shape[1:]


# --- the plan is made once ----------------------------------------------------------
def test_the_plan_is_made_once_and_reused_batch_after_batch(monkeypatch):
    x, labels = toy_images(n=64, size=8)
    y = to_categorical(labels, 3)
    model = Sequential([Conv2D(4, 3, padding="same", input_shape=(8, 8, 1)), LeakyReLU(alpha=0.1),
                        MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    first = model.plan
    assert model.plan is first
    made = []
    monkeypatch.setattr(models, "make_plan", lambda *args: made.append(args) or make_plan(*args))
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_split=0.25)   # 12 batches, 2 validations
    model.train_on_batch(x[:8], y[:8])
    model.evaluate(x, y, verbose=0)
    model.predict(x)
    assert made == [] and model.plan is first


def test_the_plan_is_made_again_when_fusion_the_layers_or_the_loss_change():
    model = Sequential([Conv2D(2, 3, padding="same", input_shape=(6, 6, 1)), LeakyReLU(0.1), MaxPooling2D(),
                        Flatten()])
    fused = model.plan
    model.fusion = False
    plain = model.plan
    assert plain is not fused and _kinds(model) == ["Conv2D", "LeakyReLU", "MaxPooling2D", "Flatten"]
    assert model.plan is plain
    model.fusion = True
    assert model.plan is not plain and _kinds(model)[0] == "fused:Conv2D+LeakyReLU+MaxPooling2D"

    before = model.plan
    model.add(Dense(3, activation="softmax"))               # a layer added
    assert model.plan is not before and _kinds(model)[-1] == "Dense"
    before = model.plan
    model.compile(loss="categorical_crossentropy")          # the loss set: softmax meets it
    assert model.plan is not before and _kinds(model)[-1] == "softmax+loss:Dense"
    before = model.plan
    model.compile(loss=losses.CategoricalCrossentropy(from_logits=True))   # another loss
    assert model.plan is not before and model.plan.loss_function is model.loss
    assert _kinds(model)[-1] == "Dense"


def test_fusion_can_be_switched_off():
    model = lab_model(input_shape=(12, 12, 1))
    model.fusion = False
    assert [step.layers for step in model.plan.steps] == [[layer] for layer in model.layers]
    assert _kinds(model)[-1] == "softmax+loss:Dense"      # not a fusion of layers: kept with fusion off
    with pytest.raises(RuntimeError):
        with model.layer_by_layer():
            raise RuntimeError("inside")
    assert model.fusion is False        # put back as it was, also after an exception
    model.fusion = True
    with model.layer_by_layer():
        assert len(model.plan.steps) == len(model.layers)
    assert model.fusion is True and len(model.plan.steps) == len(model.layers) - 6


# --- observers ------------------------------------------------------------------------
class Recorder(Observer):
    """Writes down every call, with the step and what it received."""

    def __init__(self):
        self.calls = []

    def before_forward(self, step, x):
        self.calls.append(("before_forward", step, x))

    def after_forward(self, step, x, y):
        self.calls.append(("after_forward", step, y))

    def before_backward(self, step, dy):
        self.calls.append(("before_backward", step, dy))

    def after_backward(self, step, dy, dx):
        self.calls.append(("after_backward", step, dx))

    def before_update(self, optimizer):
        self.calls.append(("before_update", optimizer, None))

    def after_update(self, optimizer):
        self.calls.append(("after_update", optimizer, None))


def test_observers_see_every_step_forward_in_order_and_backward_in_reverse(float64):
    model = lab_model(input_shape=(8, 8, 1))
    steps = model.plan.steps
    rng = np.random.default_rng(6)
    x, y = rng.random((3, 8, 8, 1)), to_categorical([1, 5, 9], 10)
    recorder, second = Recorder(), Recorder()
    loss, y_pred, dx = model.compute_gradients(x, y, observers=[recorder, second])
    calls = recorder.calls
    assert [(name, step) for name, step, _ in calls] == (
        [(name, step) for step in steps for name in ("before_forward", "after_forward")]
        + [(name, step) for step in reversed(steps) for name in ("before_backward", "after_backward")])
    assert [c[:2] for c in second.calls] == [c[:2] for c in calls]          # every observer hears everything
    forward, backward = calls[:2 * len(steps)], calls[2 * len(steps):]
    assert forward[0][2] is x and forward[-1][2] is y_pred
    for (_, _, out), (_, _, into) in zip(forward[1::2], forward[2::2]):
        assert into is out                                                  # a step's y is the next one's x
    np.testing.assert_allclose(backward[0][2], (y_pred - y) / len(x), rtol=1e-12)   # softmax + loss: dL/dz
    for (_, _, out), (_, _, into) in zip(backward[1::2], backward[2::2]):
        assert into is out                                                  # dx flows to the step before
    assert backward[-1][2] is dx


def test_train_step_tells_observers_about_the_update_and_only_when_there_is_one():
    model = lab_model(input_shape=(8, 8, 1))
    rng = np.random.default_rng(7)
    xb, yb = model.prepare_batch(rng.random((4, 8, 8, 1)), to_categorical([0, 1, 2, 3], 10))
    recorder = Recorder()
    loss, y_pred, problem = model.train_step(xb, yb, observers=[recorder])
    assert problem is None and np.isfinite(loss)
    names = [name for name, _, _ in recorder.calls]
    steps = len(model.plan.steps)
    assert names[:4 * steps] == ([name for _ in range(steps) for name in ("before_forward", "after_forward")]
                                 + [name for _ in range(steps) for name in ("before_backward", "after_backward")])
    assert recorder.calls[4 * steps:] == [("before_update", model.optimizer, None),
                                          ("after_update", model.optimizer, None)]
    assert model.optimizer.iterations == 1

    recorder = Recorder()
    model.layers[0].params["bias"][0] = np.nan                              # a diverged model: no update
    weights = model.get_weights()
    _, _, problem = model.train_step(xb, yb, observers=[recorder])
    assert problem and "changed no weight" in problem
    assert not [name for name, _, _ in recorder.calls if name.endswith("update")]
    assert model.optimizer.iterations == 1
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)                        # NaN where it was, nothing else


# --- inspection sees the layers, and the steps ----------------------------------------
def test_inspection_sees_every_layer_and_every_step_of_a_fused_model():
    model = lab_model(input_shape=(12, 12, 1))
    rng = np.random.default_rng(2)
    x = rng.random((4, 12, 12, 1), dtype=np.float32)
    y = to_categorical([0, 1, 2, 3], 10)
    records = inspection.trace(model, x, y)
    assert all(record.output is not None for record in records)
    assert all(record.grad_input is not None for record in records[1:])
    leaky = records[1]
    np.testing.assert_array_equal(leaky.output, np.where(leaky.input > 0, leaky.input, np.float32(0.1) * leaky.input))
    fused = inspection.profile(model, x, y, steps=1, warmup=0)              # the steps fit runs
    assert [t.type for t in fused.layers] == ["fused"] * 3 + ["Flatten", "Dense", "LeakyReLU", "Dense"]
    assert [t.name for t in fused.layers] == [step.name for step in model.plan.steps]
    layers = inspection.profile(model, x, y, steps=1, warmup=0, layer_by_layer=True)
    assert [t.name for t in layers.layers] == [layer.name for layer in model.layers]
    assert all(t.forward_ms > 0 for t in fused.layers + layers.layers)
    assert model.fusion is True


def test_float32_end_to_end():
    """A float32 model stays float32 in every array of a training step, fused or layer by layer."""
    model = lab_model(input_shape=(12, 12, 1))
    rng = np.random.default_rng(4)
    x = rng.random((4, 12, 12, 1), dtype=np.float32)
    y = to_categorical([0, 1, 2, 3], 10).astype(np.float32)
    for record in inspection.trace(model, x, y):                  # layer by layer
        arrays = [record.input, record.output, record.grad_output, record.grad_input, record.preactivation,
                  *record.grads.values(), *record.params.values()]
        assert {a.dtype for a in arrays if a is not None} == {np.dtype(np.float32)}, record.name
    out = x
    for step in model.plan.steps:                                 # fused
        out = step.forward(out, training=True)
        assert out.dtype == np.float32, step
    model.train_on_batch(x, y)
    slots = [a for arrays in model.optimizer.slots.values() for a in arrays]
    arrays = [layer.grads[key] for layer, key in model.trainable_params()] + model.get_weights() + slots
    assert {a.dtype for a in arrays} == {np.dtype(np.float32)}
