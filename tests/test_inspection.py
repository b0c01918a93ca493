"""minicnn/inspection.py: trace, stats, GradientNormLogger and profile, checked on values."""
import time

import numpy as np
import pytest

from conftest import load_example, toy_images
from minicnn import activations, backend, inspection, optimizers
from minicnn.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, Layer, LeakyReLU, MaxPooling2D
from minicnn.models import Sequential
from minicnn.utils import to_categorical

ALPHA = 0.1


def small_model(extra=(), size=6, classes=3):
    """Conv2D -> LeakyReLU -> MaxPooling2D [-> extra layers] -> Flatten -> Dense softmax, compiled."""
    model = Sequential([Conv2D(3, 3, padding="same", input_shape=(size, size, 1)), LeakyReLU(alpha=ALPHA),
                        MaxPooling2D(2, padding="same"), *extra, Flatten(), Dense(classes, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def batch(n=4, size=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, size, size, 1)), to_categorical(rng.integers(0, classes, n), classes)


# --- trace ------------------------------------------------------------------------------------
def test_trace_records_every_layers_input_and_output(float64):
    model = small_model()
    x, y = batch()
    records = inspection.trace(model, x, y)
    assert [r.name for r in records] == [layer.name for layer in model.layers]
    assert [r.type for r in records] == ["Conv2D", "LeakyReLU", "MaxPooling2D", "Flatten", "Dense"]
    assert [r.activation for r in records] == ["linear", "leaky_relu", None, None, "softmax"]
    np.testing.assert_array_equal(records[0].input, x)
    for before, after in zip(records, records[1:]):       # each output is the next layer's input
        np.testing.assert_array_equal(before.output, after.input)
    np.testing.assert_allclose(records[-1].output, model.predict(x), rtol=1e-12)
    # the LeakyReLU's pre-activation is its input, and its output is max(z, alpha z)
    z = records[1].preactivation
    np.testing.assert_array_equal(z, records[1].input)
    np.testing.assert_array_equal(records[1].output, np.where(z > 0, z, ALPHA * z))
    # the conv output is the convolution of x with the recorded kernel and bias (the loops of the walk-through)
    kernel, bias = records[0].params["kernel"], records[0].params["bias"]
    expected = load_example("conv_from_maths_to_code").conv2d_loops(x, kernel, bias, model.layers[0].window)
    np.testing.assert_allclose(records[0].output, expected, rtol=1e-12, atol=1e-14)


def test_trace_gradients_are_those_of_one_training_step(float64):
    model = small_model()
    x, y = batch()
    records = inspection.trace(model, x, y)
    loss, p, dx = model.compute_gradients(x, y, training=True)   # the same step, done directly
    np.testing.assert_allclose(records[0].grad_input, dx, rtol=1e-12)
    for record, layer in zip(records, model.layers):
        assert set(record.grads) == set(layer.params)
        for key in layer.params:
            np.testing.assert_allclose(record.grads[key], layer.grads[key], rtol=1e-12)
            np.testing.assert_array_equal(record.params[key], layer.params[key])
    for before, after in zip(records, records[1:]):       # dL/d output of a layer = dL/d input of the next
        np.testing.assert_array_equal(before.grad_output, after.grad_input)
    # the last layer: softmax fused with the cross-entropy, dL/dz = (p - y) / N enters it
    last = records[-1]
    assert last.grad_output is None
    np.testing.assert_allclose(last.grad_preactivation, (p - y) / len(x), rtol=1e-12)
    np.testing.assert_allclose(last.grads["kernel"], last.input.T @ last.grad_preactivation, rtol=1e-12)
    assert all(r.grad_preactivation is None for r in records[:-1])


def test_trace_without_the_fused_softmax_records_every_grad_output(float64):
    model = Sequential([Dense(4, input_shape=(3,)), LeakyReLU(alpha=ALPHA), Dense(2, activation="sigmoid")])
    model.compile(loss="categorical_crossentropy")       # sigmoid: no fusion, dL/dp enters the last layer
    x = np.random.default_rng(1).standard_normal((5, 3))
    y = to_categorical([0, 1, 1, 0, 1], 2)
    records = inspection.trace(model, x, y)
    p = records[-1].output
    np.testing.assert_allclose(records[-1].grad_output, model.loss.gradient(y, p), rtol=1e-12)
    dz = activations.Sigmoid().backward(records[-1].grad_output, None, p)
    np.testing.assert_allclose(records[-1].grads["kernel"], records[-1].input.T @ dz, rtol=1e-12)


def test_trace_without_targets_is_forward_only():
    model = small_model()
    x, _ = batch()
    records = inspection.trace(model, x.astype(np.float32))
    assert all(r.grad_output is None and r.grad_input is None and r.grads == {} for r in records)
    assert records[0].output.dtype == np.float32 and isinstance(records[0].output, np.ndarray)


def test_trace_leaves_the_model_as_it_was(float64):
    model = small_model(extra=[BatchNormalization(), Dropout(0.5)])
    x, y = batch()
    weights = model.get_weights()             # BatchNormalization's moving statistics included
    state = backend.get_rng_state()
    records = inspection.trace(model, x, y, training=True)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert backend.get_rng_state() == state   # the dropout draw was undone too
    assert "forward" not in vars(model.layers[0]) and "backward" not in vars(model.layers[0])
    kept = records[4].output != 0             # Dropout(0.5) in training: zeros, survivors doubled
    np.testing.assert_allclose(records[4].output[kept], 2 * records[4].input[kept])


def test_trace_with_targets_needs_a_compiled_model():
    model = Sequential([Flatten(input_shape=(2, 2)), Dense(2)])
    with pytest.raises(RuntimeError, match="compile"):
        inspection.trace(model, np.zeros((1, 2, 2)), np.zeros((1, 2)))


# --- stats ------------------------------------------------------------------------------------
def test_stats_are_the_numbers_of_the_records(float64):
    model = small_model()
    x, y = batch()
    records = inspection.trace(model, x, y)
    conv, leaky, pool, flatten, dense = inspection.stats(records)
    assert conv.mean == pytest.approx(records[0].output.mean()) and conv.std == pytest.approx(records[0].output.std())
    assert conv.output_shape == (4, 6, 6, 3)
    assert leaky.negative_share == pytest.approx(np.mean(records[1].input < 0))
    assert conv.negative_share is None and pool.negative_share is None
    assert conv.grad_norms["kernel"] == pytest.approx(np.linalg.norm(records[0].grads["kernel"]))
    assert conv.grad_norm == pytest.approx(np.hypot(np.linalg.norm(records[0].grads["kernel"]),
                                                    np.linalg.norm(records[0].grads["bias"])))
    assert conv.weight_norm == pytest.approx(np.sqrt(sum((w ** 2).sum() for w in records[0].params.values())))
    assert pool.grad_output_norm == pytest.approx(np.linalg.norm(records[2].grad_output))
    assert pool.grad_input_norm == pytest.approx(np.linalg.norm(records[2].grad_input))
    assert pool.grad_norm is None and pool.weight_norm is None
    assert dense.grad_preactivation_norm == pytest.approx(np.linalg.norm(records[4].grad_preactivation))
    assert pool.grad_preactivation_norm is None
    assert all(not s.problems for s in (conv, leaky, pool, flatten, dense))


def test_stats_flag_non_finite_values_and_all_zero_gradients():
    record = inspection.LayerRecord(0, "d", "Dense", "relu", input=np.ones((2, 2)), output=np.array([[1.0, np.nan]]),
                                 preactivation=np.array([[-1.0, 1.0], [-2.0, -3.0]]),
                                 params={"kernel": np.ones((2, 2))}, grads={"kernel": np.zeros((2, 2))})
    [s] = inspection.stats([record])
    assert s.negative_share == 0.75
    assert s.problems == ["NaN or inf in output", "all-zero gradient of kernel"]
    assert "WARNING: NaN or inf in output" in inspection.stats_table([s])


def test_stats_table_shows_each_layer_and_the_gradient_ratio(float64):
    model = small_model()
    x, y = batch()
    table_stats = inspection.stats(inspection.trace(model, x, y))
    table = inspection.stats_table(table_stats)
    for s in table_stats:
        assert f"{s.name} ({s.type})" in table
    assert f"{100 * table_stats[1].negative_share:.1f}%" in table
    assert f"{table_stats[0].grad_norm:.2e}" in table
    assert table_stats[-1].grad_output_norm is None    # the fused last layer: dL/dz, not dL/d output
    assert f"{table_stats[-1].grad_preactivation_norm:.2e}*" in table and "* ||dL/dz||" in table
    first, last = table_stats[0].grad_output_norm, table_stats[-2].grad_output_norm
    assert f"{last:.2e} -> {first:.2e} (x{first / last:.2g})" in table


def test_l2_norm_of_several_arrays():
    assert inspection.l2_norm([np.array([3.0]), np.array([[4.0, 12.0]], np.float32)]) == pytest.approx(13.0)


# --- GradientNormLogger -------------------------------------------------------------------------
def test_gradient_norm_logger_records_each_batch_and_epoch():
    x, labels = toy_images(40, size=6)
    y = to_categorical(labels)
    backend.set_random_seed(5)
    model = small_model()
    backend.set_random_seed(5)
    twin = small_model()                     # same weights: replays the first batch by hand
    logger = inspection.GradientNormLogger()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, callbacks=[logger])
    assert list(logger.batch_norms) == [model.layers[0].name, model.layers[-1].name]   # layers with params
    assert all(len(v) == 6 for v in logger.batch_norms.values())                      # 3 batches x 2 epochs
    assert logger.epoch_ends == [3, 6]
    for name, values in logger.batch_norms.items():
        np.testing.assert_allclose(logger.epoch_norms[name], [np.mean(values[:3]), np.mean(values[3:])])
    last = model.layers[0]                   # after fit, grads still hold the last batch's
    assert logger.batch_norms[last.name][-1] == pytest.approx(inspection.l2_norm(last.grads.values()))
    twin.compute_gradients(x[:16].astype(np.float32), y[:16], input_gradient=False)
    expected = inspection.l2_norm(twin.layers[0].grads.values())
    assert logger.batch_norms[last.name][0] == pytest.approx(expected, rel=1e-5)


# --- profile ------------------------------------------------------------------------------------
FORWARD_SLEEP, BACKWARD_SLEEP = 0.03, 0.01


class Sleepy(Layer):
    """Identity that sleeps a known time in forward and backward, and counts its calls."""
    calls = 0

    def forward(self, x, training=False):
        Sleepy.calls += 1
        time.sleep(FORWARD_SLEEP)
        return x

    def backward(self, dy):
        time.sleep(BACKWARD_SLEEP)
        return dy


def test_profile_times_each_layer_and_puts_the_weights_back():
    model = Sequential([Flatten(input_shape=(4, 4, 1)), Sleepy(name="sleepy"), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = batch(8, size=4)
    weights = model.get_weights()
    Sleepy.calls = 0
    result = inspection.profile(model, x, y, steps=3, warmup=2)
    assert Sleepy.calls == 5                                   # warm-up steps run but are not timed
    flatten, sleepy, dense = result.layers
    assert sleepy.name == "sleepy" and sleepy.type == "Sleepy"
    assert 1000 * FORWARD_SLEEP <= sleepy.forward_ms < 1000 * FORWARD_SLEEP + 50
    assert 1000 * BACKWARD_SLEEP <= sleepy.backward_ms < 1000 * BACKWARD_SLEEP + 50
    assert sleepy.share > 0.5 and sleepy.share == pytest.approx(sleepy.total_ms / result.step_ms)
    assert dense.backward_ms > 0 and result.optimizer_ms > 0 and result.other_ms >= 0
    assert sum(t.share for t in result.layers) + (result.optimizer_ms + result.other_ms) / result.step_ms \
        == pytest.approx(1.0)
    assert (result.device, result.batch_size, result.steps) == ("cpu", 8, 3)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert model.optimizer.iterations == 0 and model.optimizer.slots == {}
    table = result.table()
    assert f"{sleepy.forward_ms:12.3f}" in table and "sleepy (Sleepy)" in table
    assert "optimizer update" in table and "100.0%" in table


def test_profile_times_the_steps_fit_runs_or_every_layer_on_its_own():
    model = small_model()
    conv, leaky, pool, flatten, dense = model.layers
    x, y = batch()
    fused = inspection.profile(model, x, y, steps=1, warmup=0)          # as fit runs it: the fused block is one row
    assert [(t.name, t.type) for t in fused.layers] == [
        (f"{conv.name}+{leaky.name}+{pool.name}", "fused"), (flatten.name, "Flatten"), (dense.name, "Dense")]
    assert "fused" in fused.table()
    layers = inspection.profile(model, x, y, steps=1, warmup=0, layer_by_layer=True)
    assert [(t.name, t.type) for t in layers.layers] == [(layer.name, type(layer).__name__) for layer in model.layers]
    # every row has its forward and backward, the last layer's too (softmax fused with the loss)
    assert all(t.forward_ms > 0 and t.backward_ms > 0 for t in fused.layers + layers.layers)
    assert model.fusion is True


def test_profile_refuses_bad_arguments():
    with pytest.raises(ValueError, match="steps"):
        inspection.profile(small_model(), *batch(), steps=0)


def test_clock_waits_for_the_gpu(monkeypatch):
    """On the GPU the clock synchronizes CuPy's stream first (a stand-in cupy counts the calls)."""
    synchronized = []

    class Stream:
        def synchronize(self):
            synchronized.append(True)

    class FakeCupy:
        class cuda:
            @staticmethod
            def get_current_stream():
                return Stream()

    monkeypatch.setattr(backend, "cupy", FakeCupy)
    before = time.perf_counter()
    assert inspection.clock("gpu") >= before and synchronized == [True]
    inspection.clock("cpu")
    assert synchronized == [True]
