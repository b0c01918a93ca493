"""RMSprop, Nadam, Adagrad, Adadelta, Adamax, gradient clipping, the learning rate as Keras scripts
use it (learning_rate, lr, assign, backend.get_value / set_value, schedules) and the Keras backend
helpers (issue 18).

Each optimizer is checked against two or three steps written out here in plain NumPy float64 from
Keras 3's update rule, on two parameter arrays; against PyTorch where it is installed.
"""
import io
import json
import math
import zipfile

import numpy as np
import pytest

import minicnn
from minicnn import backend, losses, optimizers
from minicnn.layers import Dense
from minicnn.models import Sequential, load_model
from minicnn.optimizers import schedules
from minicnn.plan import Observer
from minicnn.utils import to_categorical

SHAPES = [(3,), (2, 2)]


def gradients(steps, seed=0):
    """steps lists of gradients, one per array of SHAPES, in float64, none of them zero."""
    rng = np.random.default_rng(seed)
    return [[rng.uniform(0.1, 1.0, shape) * rng.choice([-1.0, 1.0], shape) for shape in SHAPES]
            for _ in range(steps)]


def start():
    return [np.array([1.0, -0.5, 0.25]), np.array([[0.5, -1.0], [2.0, 0.0]])]


def run(optimizer, grads_per_step):
    """The parameters after applying each step's gradients with `optimizer`."""
    params = start()
    for grads in grads_per_step:
        optimizer.apply_gradients(zip([g.copy() for g in grads], params))
    return params


def assert_params(actual, expected, rtol=1e-12):
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=1e-15)


# --- each optimizer against its update written out by hand ------------------------------------------
@pytest.mark.parametrize("momentum, centered", [(0.0, False), (0.5, False), (0.0, True), (0.5, True)])
def test_rmsprop_by_hand(momentum, centered):
    lr, rho, eps = 0.01, 0.8, 1e-7
    grads = gradients(3)
    expected = []
    for i, p in enumerate(start()):
        velocity, average, moving = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
        for step in grads:
            g = step[i]
            velocity = rho * velocity + (1 - rho) * g ** 2
            if centered:
                average = rho * average + (1 - rho) * g
                increment = lr * g / np.sqrt(velocity - average ** 2 + eps)
            else:
                increment = lr * g / np.sqrt(velocity + eps)
            if momentum:
                moving = momentum * moving + increment
                p = p - moving
            else:
                p = p - increment
        expected.append(p)
    optimizer = optimizers.RMSprop(lr, rho=rho, momentum=momentum, centered=centered)
    assert_params(run(optimizer, grads), expected)
    assert set(optimizer.slots) == {"velocity"} | ({"momentum"} if momentum else set()) | (
        {"average_gradient"} if centered else set())


def test_nadam_by_hand():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    grads = gradients(3)
    expected = []
    for i, p in enumerate(start()):
        m, v, product = np.zeros_like(p), np.zeros_like(p), 1.0
        for t, step in enumerate(grads, start=1):
            g = step[i]
            u_t = b1 * (1 - 0.5 * 0.96 ** t)
            u_next = b1 * (1 - 0.5 * 0.96 ** (t + 1))
            product = product * u_t                  # u_1 u_2 ... u_t
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g ** 2
            m_hat = u_next * m / (1 - product * u_next) + (1 - u_t) * g / (1 - product)
            v_hat = v / (1 - b2 ** t)
            p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        expected.append(p)
    assert_params(run(optimizers.Nadam(lr), grads), expected)


def test_nadams_momentum_product_follows_the_step_count_back_and_forth():
    nadam = optimizers.Nadam()
    u = [0.9 * (1 - 0.5 * 0.96 ** t) for t in range(1, 6)]
    assert nadam.u_product(5) == pytest.approx(math.prod(u), rel=1e-15)
    assert nadam.u_product(2) == pytest.approx(u[0] * u[1], rel=1e-15)   # went back: recomputed
    assert nadam.u_product(0) == 1.0
    assert nadam.u_product(3) == pytest.approx(u[0] * u[1] * u[2], rel=1e-15)


@pytest.mark.parametrize("initial", [0.1, 0.0, 2.5])
def test_adagrad_by_hand(initial):
    lr, eps = 0.05, 1e-7
    grads = gradients(3)
    expected = []
    for i, p in enumerate(start()):
        accumulator = np.full_like(p, initial)
        for step in grads:
            g = step[i]
            accumulator = accumulator + g ** 2
            p = p - lr * g / np.sqrt(accumulator + eps)
        expected.append(p)
    optimizer = optimizers.Adagrad(lr, initial_accumulator_value=initial)
    assert_params(run(optimizer, grads), expected)


def test_adadelta_by_hand():
    lr, rho, eps = 1.0, 0.95, 1e-7
    grads = gradients(3)
    expected = []
    for i, p in enumerate(start()):
        accumulated_grad, accumulated_delta = np.zeros_like(p), np.zeros_like(p)
        for step in grads:
            g = step[i]
            accumulated_grad = rho * accumulated_grad + (1 - rho) * g ** 2
            delta = -np.sqrt(accumulated_delta + eps) / np.sqrt(accumulated_grad + eps) * g
            accumulated_delta = rho * accumulated_delta + (1 - rho) * delta ** 2
            p = p + lr * delta
        expected.append(p)
    assert_params(run(optimizers.Adadelta(lr), grads), expected)


def test_adamax_by_hand():
    lr, b1, b2, eps = 0.02, 0.9, 0.999, 1e-7
    grads = gradients(3)
    expected = []
    for i, p in enumerate(start()):
        m, u = np.zeros_like(p), np.zeros_like(p)
        for t, step in enumerate(grads, start=1):
            g = step[i]
            m = b1 * m + (1 - b1) * g
            u = np.maximum(b2 * u, np.abs(g))
            p = p - lr / (1 - b1 ** t) * m / (u + eps)
        expected.append(p)
    assert_params(run(optimizers.Adamax(lr), grads), expected)


def test_defaults_are_keras():
    def config(optimizer):
        return {k: v for k, v in optimizer.get_config().items() if k not in ("clipnorm", "clipvalue",
                                                                             "global_clipnorm")}
    assert config(optimizers.RMSprop()) == {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
                                            "centered": False}
    assert config(optimizers.Nadam()) == {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
    assert config(optimizers.Adagrad()) == {"learning_rate": 0.001, "initial_accumulator_value": 0.1,
                                            "epsilon": 1e-7}
    assert config(optimizers.Adadelta()) == {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7}
    assert config(optimizers.Adamax()) == {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
    assert optimizers.SGD().get_config()["clipnorm"] is None


NEW = [optimizers.RMSprop, optimizers.Nadam, optimizers.Adagrad, optimizers.Adadelta, optimizers.Adamax]


@pytest.mark.parametrize("make", NEW + [lambda: optimizers.RMSprop(momentum=0.9, centered=True)])
def test_float32_stays_float32_and_updates_are_in_place(make):
    params = [np.ones(3, np.float32), np.full((2, 2), -1.0, np.float32)]
    same = list(params)
    optimizer = make()
    for _ in range(2):
        optimizer.apply_gradients([(np.full(3, 0.5, np.float32), params[0]),
                                   (np.full((2, 2), -0.25, np.float32), params[1])])
    assert all(a is b for a, b in zip(params, same))
    assert all(p.dtype == np.float32 for p in params) and (params[0] < 1).all() and (params[1] > -1).all()
    assert all(a.dtype == np.float32 for arrays in optimizer.slots.values() for a in arrays)
    assert optimizer.iterations == 2


def test_lookup_by_name():
    for name, cls in [("rmsprop", optimizers.RMSprop), ("RMSprop", optimizers.RMSprop), ("nadam", optimizers.Nadam),
                      ("adagrad", optimizers.Adagrad), ("adadelta", optimizers.Adadelta),
                      ("adamax", optimizers.Adamax)]:
        assert type(optimizers.get(name)) is cls
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprops'.*'nadam'"):
        optimizers.get("rmsprops")


@pytest.mark.parametrize("make, message", [
    (lambda: optimizers.RMSprop(rho=1.0), "RMSprop: rho must be a number in"),
    (lambda: optimizers.RMSprop(momentum=-0.1), "RMSprop: momentum"),
    (lambda: optimizers.RMSprop(centered="yes"), "RMSprop: centered must be True or False"),
    (lambda: optimizers.Nadam(beta_2=1.0), "Nadam: beta_2"),
    (lambda: optimizers.Adagrad(initial_accumulator_value=-1), "Adagrad: initial_accumulator_value"),
    (lambda: optimizers.Adadelta(epsilon=0), "Adadelta: epsilon"),
    (lambda: optimizers.Adamax(beta_1=-0.5), "Adamax: beta_1"),
    (lambda: optimizers.Adam(clipnorm=0), "Adam: clipnorm must be a number > 0"),
    (lambda: optimizers.SGD(clipvalue=-1), "SGD: clipvalue must be a number > 0"),
    (lambda: optimizers.Nadam(global_clipnorm=float("inf")), "Nadam: global_clipnorm"),
    (lambda: optimizers.Adam(clipnorm=1.0, clipvalue=0.5), "only one of clipnorm, clipvalue and global_clipnorm"),
    (lambda: optimizers.RMSprop(learning_rate=0), "RMSprop: learning_rate must be a number > 0"),
])
def test_bad_hyperparameters_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_keras_arguments_at_their_defaults_pass_others_are_refused_by_name():
    optimizers.Adam(weight_decay=None, use_ema=False, ema_momentum=0.99, amsgrad=False, decay=0.0, name="Adam")
    with pytest.raises(TypeError, match=r"minicnn does not support the argument 'amsgrad' \(in Adam\) other "
                                        r"than amsgrad=False \(got True\); see the Keras compatibility table"):
        optimizers.Adam(amsgrad=True)
    with pytest.raises(TypeError, match=r"'weight_decay' \(in RMSprop\)"):
        optimizers.RMSprop(weight_decay=1e-4)
    with pytest.raises(TypeError, match="Nadam got an unexpected keyword argument 'bet_1'"):
        optimizers.Nadam(bet_1=0.9)


def test_keras_2_decay_is_refused_with_the_schedule_that_does_it():
    """SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True), as older tutorials write it: the
    error names the schedule that computes Keras 2's lr / (1 + decay * iterations)."""
    with pytest.raises(TypeError, match=r"'decay' \(in SGD\).*InverseTimeDecay\(<learning rate>, decay_steps=1, "
                                        r"decay_rate=0.5\)"):
        optimizers.SGD(lr=0.01, decay=0.5, momentum=0.9, nesterov=True)
    keras_2 = [0.1 / (1 + 0.5 * iterations) for iterations in range(3)]
    schedule = schedules.InverseTimeDecay(0.1, decay_steps=1, decay_rate=0.5)
    np.testing.assert_allclose(lr_per_step(optimizers.SGD(schedule), 3), keras_2, rtol=1e-12)


# --- gradient clipping ------------------------------------------------------------------------------------
def sgd_step(grads, **clipping):
    """The change one plain SGD step (lr 1) makes to zero parameters: minus the clipped gradients.
    Also checks that the caller's gradient arrays are left as they were."""
    grads = [np.array(g, dtype=np.float64) for g in grads]
    kept = [g.copy() for g in grads]
    params = [np.zeros_like(g) for g in grads]
    optimizers.SGD(1.0, **clipping).apply_gradients(zip(grads, params))
    for g, k in zip(grads, kept):
        np.testing.assert_array_equal(g, k)
    return [-p for p in params]


def test_clipnorm_scales_each_array_to_at_most_that_norm():
    big, small = [3.0, 4.0], [0.3, 0.4]       # norms 5 and 0.5
    clipped = sgd_step([big, small], clipnorm=1.0)
    np.testing.assert_allclose(clipped[0], [0.6, 0.8], rtol=1e-15)
    np.testing.assert_allclose(clipped[1], small, rtol=1e-15)


def test_global_clipnorm_scales_all_arrays_by_one_factor():
    clipped = sgd_step([[3.0, 4.0], [12.0]], global_clipnorm=2.6)   # norm of all: 13
    np.testing.assert_allclose(clipped[0], [0.6, 0.8], rtol=1e-15)
    np.testing.assert_allclose(clipped[1], [2.4], rtol=1e-15)
    clipped = sgd_step([[0.3, 0.4], [1.2]], global_clipnorm=2.6)    # norm 1.3: unchanged
    np.testing.assert_allclose(clipped[0], [0.3, 0.4], rtol=1e-15)


def test_clipvalue_clips_each_value():
    clipped = sgd_step([[-5.0, 0.3, 2.0], [-0.7]], clipvalue=1.0)
    np.testing.assert_array_equal(clipped[0], [-1.0, 0.3, 1.0])
    np.testing.assert_array_equal(clipped[1], [-0.7])


def test_clipnorm_of_huge_float32_gradients_does_not_overflow():
    grad = np.array([3e20, 4e20], np.float32)   # grad**2 overflows float32
    param = np.zeros(2, np.float32)
    optimizers.SGD(1.0, clipnorm=1.0).apply_gradients([(grad, param)])
    np.testing.assert_allclose(-param, [0.6, 0.8], rtol=1e-6)


@pytest.mark.parametrize("clipping", [{"clipnorm": 0.5}, {"clipvalue": 0.1}, {"global_clipnorm": 0.3}])
def test_clipping_happens_before_the_update(clipping):
    """Adam with clipping takes the same step as Adam without, given the clipped gradients."""
    grads = gradients(2)
    plain, clipper = optimizers.Adam(0.1), optimizers.SGD(1.0, **clipping)
    clipped_steps = [[g.copy() for g in step] for step in grads]
    for step in clipped_steps:
        clipped = clipper.clip_gradients(step)
        step[:] = clipped
    assert_params(run(optimizers.Adam(0.1, **clipping), grads), run(plain, clipped_steps))
    assert optimizers.Adam(**clipping).get_config()[next(iter(clipping))] == next(iter(clipping.values()))


def test_clipping_in_a_model_leaves_the_layer_gradients_alone():
    backend.set_random_seed(0)
    model = Sequential([Dense(3, input_shape=(4,), activation="softmax")])
    model.compile(optimizer=optimizers.SGD(1.0, clipvalue=1e-3), loss="categorical_crossentropy")
    x, y = np.full((8, 4), 10.0, np.float32), to_categorical(np.arange(8) % 3, 3)
    before = model.get_weights()
    model.train_on_batch(x, y)
    kernel_grad = model.layers[0].grads["kernel"]
    assert np.abs(kernel_grad).max() > 1.0                       # the layer's own gradient, unclipped
    moved = [np.abs(a - b).max() for a, b in zip(model.get_weights(), before)]
    assert max(moved) == pytest.approx(1e-3, rel=1e-3)           # the step used the clipped one


# --- the learning rate: read, written, scheduled -------------------------------------------------------
def test_the_learning_rate_reads_as_a_float():
    optimizer = optimizers.RMSprop(0.01)
    lr = optimizer.learning_rate
    assert float(lr) == 0.01 and lr.numpy() == 0.01 and isinstance(lr.numpy(), float)
    assert lr == 0.01 and lr != 0.02 and 0.001 < lr < 0.1 and lr >= 0.01 and lr <= 0.01
    assert lr * 2 == 0.02 and 2 * lr == 0.02 and lr / 2 == 0.005 and 1 / lr == 100 and lr + 1 == 1.01
    assert 1 - lr == 0.99 and lr - 0.01 == 0 and -lr == -0.01 and lr ** 2 == pytest.approx(1e-4)
    assert f"{lr:g}" == "0.01" and f"{lr:.3f}" == "0.010" and str(lr) == "0.01" and "0.01" in repr(lr)
    assert lr == pytest.approx(0.01) and pytest.approx(0.01) == lr and math.isclose(lr, 0.01)
    assert np.asarray(lr) == 0.01 and np.isclose(lr, 0.01)
    array = np.ones(2, np.float32)
    assert (array * lr).dtype == np.float32 and (lr * array).dtype == np.float32
    np.testing.assert_array_equal(array * lr, np.float32(0.01))
    assert optimizer.lr == 0.01 and backend.get_value(optimizer.lr) == 0.01
    assert optimizers.Adamax(lr=0.2).learning_rate == 0.2          # the Keras 2 argument


@pytest.mark.parametrize("write", [
    lambda opt: setattr(opt, "learning_rate", 0.5),
    lambda opt: setattr(opt, "lr", 0.5),
    lambda opt: opt.learning_rate.assign(0.5),
    lambda opt: opt.lr.assign(np.float32(0.5)),
    lambda opt: backend.set_value(opt.lr, 0.5),
    lambda opt: backend.set_value(opt.learning_rate, np.float64(0.5)),
    lambda opt: setattr(opt, "learning_rate", opt.learning_rate * 5),
])
def test_the_learning_rate_can_be_set_between_steps(write):
    optimizer = optimizers.SGD(0.1)
    param = np.zeros(1)
    optimizer.apply_gradients([(np.ones(1), param)])
    kept = optimizer.learning_rate
    remembered = float(optimizer.learning_rate)
    write(optimizer)
    assert optimizer.learning_rate == optimizer.lr == backend.get_value(optimizer.lr) == 0.5
    assert kept == 0.5 and remembered == 0.1                      # the object follows, float() remembers
    assert optimizer.get_config()["learning_rate"] == 0.5
    optimizer.apply_gradients([(np.ones(1), param)])
    assert param[0] == pytest.approx(-0.1 - 0.5)


@pytest.mark.parametrize("value", [0, -1, float("nan"), "0.1", None, [0.1]])
def test_a_bad_learning_rate_is_refused_and_changes_nothing(value):
    optimizer = optimizers.Nadam(0.01)
    with pytest.raises(ValueError, match="Nadam: learning_rate must be a number > 0"):
        optimizer.learning_rate = value
    with pytest.raises(ValueError, match="learning_rate"):
        backend.set_value(optimizer.lr, value)
    assert optimizer.learning_rate == 0.01


def test_a_compile_error_message_formats_the_learning_rate():
    adam = optimizers.Adam(0.003)
    first = Sequential([Dense(2, input_shape=(2,))])
    first.compile(optimizer=adam, loss="categorical_crossentropy")
    with pytest.raises(ValueError, match=r"Adam\(learning_rate=0.003\)"):
        Sequential([Dense(2, input_shape=(2,))]).compile(optimizer=adam, loss="categorical_crossentropy")


def lr_per_step(optimizer, steps):
    """The learning rate each of `steps` plain SGD steps used (gradient 1 on one value)."""
    param, used = np.zeros(1), []
    for _ in range(steps):
        before = param[0]
        optimizer.apply_gradients([(np.ones(1), param)])
        used.append(before - param[0])
    return used


def test_schedules_are_evaluated_at_the_step_count():
    decay = schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    np.testing.assert_allclose(lr_per_step(optimizers.SGD(decay), 4), [0.1 * 0.5 ** (t / 2) for t in range(4)],
                               rtol=1e-12)
    stairs = schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5, staircase=True)
    np.testing.assert_allclose(lr_per_step(optimizers.SGD(stairs), 5), [0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-12)
    inverse = schedules.InverseTimeDecay(0.1, decay_steps=2, decay_rate=1.0)
    np.testing.assert_allclose(lr_per_step(optimizers.SGD(inverse), 3), [0.1 / (1 + t / 2) for t in range(3)],
                               rtol=1e-12)
    pieces = schedules.PiecewiseConstantDecay([1, 3], [0.1, 0.01, 0.001])
    np.testing.assert_allclose(lr_per_step(optimizers.SGD(pieces), 5), [0.1, 0.1, 0.01, 0.01, 0.001], rtol=1e-12)
    optimizer = optimizers.Adam(pieces)
    optimizer.iterations = 2
    assert optimizer.learning_rate == 0.01 and float(optimizer.lr) == 0.01


def test_keras_spellings_of_the_schedules():
    from minicnn.optimizers.schedules import ExponentialDecay
    assert minicnn.optimizers.schedules.ExponentialDecay is ExponentialDecay
    assert isinstance(ExponentialDecay(0.1, 10, 0.9), minicnn.optimizers.schedules.LearningRateSchedule)


def test_a_scheduled_learning_rate_cannot_be_set():
    optimizer = optimizers.SGD(schedules.ExponentialDecay(0.1, 10, 0.9))
    with pytest.raises(TypeError, match="follows a ExponentialDecay schedule and cannot be set"):
        optimizer.learning_rate = 0.01
    with pytest.raises(TypeError, match="cannot be set"):
        backend.set_value(optimizer.lr, 0.01)
    optimizer.learning_rate = schedules.PiecewiseConstantDecay([5], [0.2, 0.1])   # another schedule may replace it
    assert optimizer.learning_rate == 0.2


@pytest.mark.parametrize("make, message", [
    (lambda: schedules.ExponentialDecay(0.1, 0, 0.9), "decay_steps must be a number > 0"),
    (lambda: schedules.ExponentialDecay(-0.1, 10, 0.9), "initial_learning_rate"),
    (lambda: schedules.InverseTimeDecay(0.1, 10, -1), "decay_rate must be a number >= 0"),
    (lambda: schedules.PiecewiseConstantDecay([10], [0.1]), "one longer"),
    (lambda: schedules.PiecewiseConstantDecay([10, 5], [0.1, 0.01, 0.001]), "increase strictly"),
    (lambda: schedules.PiecewiseConstantDecay([10], [0.1, 0]), "each value must be a number > 0"),
])
def test_bad_schedules_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


class Halving(schedules.LearningRateSchedule):
    """A schedule written by a user, as in Keras."""

    def __init__(self, start=0.1):
        self.start = start

    def __call__(self, step):
        return self.start / 2 ** step


def test_a_users_schedule_trains_but_is_not_saved(tmp_path):
    np.testing.assert_allclose(lr_per_step(optimizers.SGD(Halving()), 3), [0.1, 0.05, 0.025], rtol=1e-12)
    model = Sequential([Dense(2, input_shape=(2,), activation="softmax")])
    model.compile(optimizer=optimizers.SGD(Halving()), loss="categorical_crossentropy")
    model.train_on_batch(np.ones((2, 2), np.float32), np.eye(2, dtype=np.float32))
    with pytest.raises(ValueError, match="only its own learning-rate schedules.*got Halving"):
        model.save(tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_a_schedule_that_gives_nan_changes_nothing():
    optimizer = optimizers.Adam(Halving(float("nan")))
    param = np.ones(2)
    with pytest.raises(ValueError, match="the learning rate Halving gives at step 0 must be a number >= 0, got nan"):
        optimizer.apply_gradients([(np.ones(2), param)])
    assert optimizer.slots == {} and optimizer.iterations == 0 and (param == 1).all()


# --- saving and loading; failed updates ----------------------------------------------------------------
MAKERS = [
    lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True, clipnorm=1.0),
    lambda: optimizers.RMSprop(0.01),
    lambda: optimizers.Nadam(0.01, global_clipnorm=2.0),
    lambda: optimizers.Adagrad(0.1, initial_accumulator_value=0.5, clipvalue=0.5),
    lambda: optimizers.Adadelta(1.0, rho=0.9),
    lambda: optimizers.Adamax(0.01),
    lambda: optimizers.Adam(schedules.ExponentialDecay(0.01, 3, 0.5)),
    lambda: optimizers.SGD(schedules.PiecewiseConstantDecay([1], [0.1, 0.05]), momentum=0.9),
]


def tiny_model(optimizer, seed=3):
    backend.set_random_seed(seed)
    model = Sequential([Dense(4, input_shape=(3,), activation="tanh"), Dense(2, activation="softmax")])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    return model


def tiny_data(n=8):
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, 3)).astype(np.float32), to_categorical(np.arange(n) % 2, 2)


def state(model):
    optimizer = model.optimizer
    return (model.get_weights(), optimizer.iterations, optimizer.get_config(),
            {name: [a.copy() for a in arrays] for name, arrays in optimizer.slots.items()})


def assert_same_state(a, b):
    weights_a, iterations_a, config_a, slots_a = a
    weights_b, iterations_b, config_b, slots_b = b
    assert iterations_a == iterations_b and config_a == config_b and slots_a.keys() == slots_b.keys()
    for x, y in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(x, y)
    for name in slots_a:
        for x, y in zip(slots_a[name], slots_b[name], strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("make", MAKERS)
def test_save_and_load_keep_the_optimizer_and_its_state(make, tmp_path):
    model = tiny_model(make())
    x, y = tiny_data()
    for _ in range(2):
        model.train_on_batch(x, y)
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert_same_state(state(loaded), state(model))
    assert loaded.optimizer.learning_rate == model.optimizer.learning_rate
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    assert_same_state(state(loaded), state(model))


@pytest.mark.parametrize("slot", ["velocity", "accumulator", "accumulated_delta_var", "u"])
def test_a_file_with_a_negative_sum_of_squares_is_refused(slot, tmp_path):
    make = {"velocity": optimizers.RMSprop, "accumulator": optimizers.Adagrad,
            "accumulated_delta_var": optimizers.Adadelta, "u": optimizers.Adamax}[slot]
    model = tiny_model(make())
    model.train_on_batch(*tiny_data())
    model.save(tmp_path / "good.h5")
    entry = f"optimizer/{slot}_0.npy"
    with zipfile.ZipFile(tmp_path / "good.h5") as source, zipfile.ZipFile(tmp_path / "bad.h5", "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == entry:
                array = np.load(io.BytesIO(data))
                array.flat[0] = -1.0
                buffer = io.BytesIO()
                np.save(buffer, array)
                data = buffer.getvalue()
            target.writestr(name, data)
    with pytest.raises(minicnn.saving.ModelFileError, match=f"{entry}.*negative"):
        load_model(tmp_path / "bad.h5")


def test_a_bad_schedule_in_a_file_is_refused(tmp_path):
    model = tiny_model(optimizers.Adam(schedules.ExponentialDecay(0.01, 3, 0.5)))
    model.train_on_batch(*tiny_data())
    model.save(tmp_path / "good.h5")
    with zipfile.ZipFile(tmp_path / "good.h5") as archive:
        config = json.loads(archive.read("config.json"))
    for bad in [{"class_name": "eval", "config": {}}, {"class_name": "ExponentialDecay", "config": {"x": 1}},
                {"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.1, "decay_steps": -1,
                                                              "decay_rate": 0.5}}]:
        config["compile"]["optimizer"]["config"]["learning_rate"] = bad
        with zipfile.ZipFile(tmp_path / "good.h5") as source, zipfile.ZipFile(tmp_path / "bad.h5", "w") as target:
            for name in source.namelist():
                target.writestr(name, json.dumps(config) if name == "config.json" else source.read(name))
        with pytest.raises(minicnn.saving.ModelFileError, match="bad compile settings"):
            load_model(tmp_path / "bad.h5")


@pytest.mark.parametrize("make", MAKERS)
def test_a_failed_update_changes_nothing_and_training_goes_on_as_before(make):
    """A NaN gradient (refused before the update), an update that overflows (undone) and Ctrl-C
    during the update (undone) leave weights, step count and slots as they were; afterwards the
    model trains exactly like a twin that never saw them (Nadam's momentum product included)."""
    x, y = tiny_data()
    model, twin = tiny_model(make()), tiny_model(make())
    for m in (model, twin):
        for _ in range(2):
            m.train_on_batch(x, y)
    before = state(model)

    class NaNGradients(Observer):
        def after_backward(self, step, dy, dx):
            model.layers[0].grads["kernel"][0, 0] = np.nan
    loss, _, problem = model.train_step(x, y, observers=[NaNGradients()])
    assert problem == "the gradients overflowed; this batch changed no weight"
    assert_same_state(state(model), before)

    schedule = model.optimizer._learning_rate
    model.optimizer.learning_rate = optimizers.PiecewiseConstantDecay([], [1e300]) if isinstance(
        schedule, optimizers.LearningRateSchedule) else 1e300
    with pytest.raises(RuntimeError, match="train_on_batch: the update overflowed"):
        model.train_on_batch(x, y)
    model.optimizer.learning_rate = schedule
    assert_same_state(state(model), before)

    class Interrupt(Observer):
        def after_update(self, optimizer):
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        model.train_step(x, y, observers=[Interrupt()])
    assert_same_state(state(model), before)

    for m in (model, twin):
        m.train_on_batch(x, y)
    assert_same_state(state(model), state(twin))


# --- the Keras backend helpers ------------------------------------------------------------------------
def test_image_data_format_is_channels_last_only():
    assert backend.image_data_format() == "channels_last"
    backend.set_image_data_format("channels_last")
    with pytest.raises(ValueError, match="minicnn is channels-last only.*got 'channels_first'"):
        backend.set_image_data_format("channels_first")
    assert backend.image_data_format() == "channels_last"


def test_clear_session_starts_layer_names_afresh():
    backend.clear_session()
    assert [Dense(2).name, Dense(2).name] == ["dense", "dense_1"]
    backend.clear_session()
    assert Dense(2).name == "dense"


def test_get_value_and_set_value_on_arrays_and_numbers():
    array = np.arange(3.0)
    copy = backend.get_value(array)
    copy[0] = 9
    assert array[0] == 0                                         # get_value gives a copy
    same = array
    backend.set_value(array, [5.0, 6.0, 7.0])
    assert same is array and array.tolist() == [5.0, 6.0, 7.0]  # set_value writes in place
    backend.set_value(array, 1)
    assert array.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError):
        backend.set_value(array, [1.0, 2.0])                    # does not fit: nothing written
    assert array.tolist() == [1.0, 1.0, 1.0]
    assert backend.get_value(3) == 3 and backend.get_value(0.5) == 0.5
    optimizer = optimizers.Adam()
    optimizer.apply_gradients([(np.ones(1), np.ones(1))])
    assert backend.get_value(optimizer.iterations) == 1
    with pytest.raises(TypeError, match="set_value: expected an optimizer's learning rate or an array.*got float"):
        backend.set_value(0.5, 0.1)
    with pytest.raises(TypeError, match="get_value: expected an optimizer's learning rate, an array or a number, "
                                        "got str"):
        backend.get_value("lr")


def test_epsilon_and_floatx():
    assert backend.epsilon() == losses.EPSILON == 1e-7
    assert backend.floatx() in ("float32", "float64")


# --- against PyTorch, where it is installed ----------------------------------------------------------
def torch_steps(torch, make, grads):
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in start()]
    optimizer = make(params)
    for step in grads:
        for p, g in zip(params, step):
            p.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
    return [p.detach().numpy() for p in params]


# Keras and PyTorch place epsilon differently in RMSprop (sqrt(v + eps) against sqrt(v) + eps), Adagrad
# (the same) and Adamax (u + eps against max(beta_2 u, |g| + eps)): there both take eps = 1e-12, whose
# effect (about 1e-9 relative here, gradients are at least 0.1) is far below the tolerance. Nadam is
# PyTorch's NAdam with momentum_decay=1 (Keras's schedule 0.96^t); Adadelta places eps alike.
TORCH_PAIRS = [
    ("RMSprop", lambda: optimizers.RMSprop(0.01, rho=0.8, epsilon=1e-12),
     lambda torch, p: torch.optim.RMSprop(p, lr=0.01, alpha=0.8, eps=1e-12)),
    ("RMSprop momentum centered", lambda: optimizers.RMSprop(0.01, rho=0.8, momentum=0.5, centered=True,
                                                              epsilon=1e-12),
     lambda torch, p: torch.optim.RMSprop(p, lr=0.01, alpha=0.8, eps=1e-12, momentum=0.5, centered=True)),
    ("Adagrad", lambda: optimizers.Adagrad(0.05, initial_accumulator_value=0.1, epsilon=1e-12),
     lambda torch, p: torch.optim.Adagrad(p, lr=0.05, initial_accumulator_value=0.1, eps=1e-12)),
    ("Adamax", lambda: optimizers.Adamax(0.02, epsilon=1e-12),
     lambda torch, p: torch.optim.Adamax(p, lr=0.02, betas=(0.9, 0.999), eps=1e-12)),
    ("Nadam", lambda: optimizers.Nadam(0.01),
     lambda torch, p: torch.optim.NAdam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-7, momentum_decay=1.0)),
    ("Adadelta", lambda: optimizers.Adadelta(1.0, rho=0.95, epsilon=1e-6),
     lambda torch, p: torch.optim.Adadelta(p, lr=1.0, rho=0.95, eps=1e-6)),
]


@pytest.mark.parametrize("name, ours, theirs", TORCH_PAIRS, ids=[pair[0] for pair in TORCH_PAIRS])
def test_against_pytorch(name, ours, theirs):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; the comparison is skipped")
    grads = gradients(4, seed=7)
    assert_params(run(ours(), grads), torch_steps(torch, lambda p: theirs(torch, p), grads), rtol=1e-7)
