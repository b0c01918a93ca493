"""Optimizers, computed as Keras 3 computes them: SGD (with momentum and Nesterov), Adam,
RMSprop, Nadam, Adagrad, Adadelta and Adamax.

`apply_gradients(zip(grads, params))` updates each parameter array in place, so a
layer's `params` dict keeps pointing at the trained values. Per-parameter slots
(Adam's m and v, SGD's velocity...) live in lists aligned with the parameters.

Every optimizer also takes Keras's gradient clipping (one of clipnorm, clipvalue,
global_clipnorm) and a learning rate that is a number or a schedule from
`minicnn.optimizers.schedules`. `optimizer.learning_rate` (or `lr`, its Keras 2 name) reads
as a float and can be set while training: `optimizer.learning_rate = 0.01`,
`optimizer.learning_rate.assign(0.01)`, `minicnn.backend.set_value(optimizer.lr, 0.01)`.
"""
import math
import sys
import types

import numpy as np

from minicnn import kernels
from minicnn.backend import get_array_module
from minicnn.utils import checks
from minicnn.utils.checks import check_bool, check_number


# --- learning-rate schedules: keras.optimizers.schedules ------------------------------------------
class LearningRateSchedule:
    """A learning rate that depends on the step: schedule(step) -> float.

    The optimizer calls it with its `iterations` before each update (0 for the first one).
    """

    def __call__(self, step):
        raise NotImplementedError(f"{type(self).__name__} must define __call__(self, step)")

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} must define get_config() to be saved")

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Decay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: a starting rate, and the progress
    p = step / decay_steps, rounded down with staircase=True (the rate then drops in steps)."""
    decay_rate_may_be_zero = False

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        who = type(self).__name__
        self.initial_learning_rate = check_number(initial_learning_rate, "initial_learning_rate", who,
                                                  low=0, include_low=False)
        self.decay_steps = check_number(decay_steps, "decay_steps", who, low=0, include_low=False)
        self.decay_rate = check_number(decay_rate, "decay_rate", who, low=0,
                                       include_low=self.decay_rate_may_be_zero)
        self.staircase = check_bool(staircase, "staircase", who)
        self.name = name or who

    def progress(self, step):
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(Decay):
    """initial_learning_rate * decay_rate ** (step / decay_steps); with staircase=True the
    exponent is rounded down, so the rate drops every decay_steps steps."""

    def __call__(self, step):
        return self.initial_learning_rate * self.decay_rate ** self.progress(step)


class InverseTimeDecay(Decay):
    """initial_learning_rate / (1 + decay_rate * step / decay_steps); with staircase=True
    step / decay_steps is rounded down. (Keras 2's `decay` argument was this with decay_steps=1.)"""
    decay_rate_may_be_zero = True

    def __call__(self, step):
        return self.initial_learning_rate / (1 + self.decay_rate * self.progress(step))


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step <= boundaries[0], values[1] while step <= boundaries[1], ...,
    values[-1] after the last boundary (one more value than boundaries)."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        who = type(self).__name__
        if not isinstance(boundaries, (list, tuple)) or not isinstance(values, (list, tuple)) \
                or len(values) != len(boundaries) + 1:
            raise ValueError(f"{who}: expected a list of boundaries and a list of values one longer, "
                             f"got boundaries={boundaries!r} and values={values!r}")
        self.boundaries = [check_number(b, "each boundary", who) for b in boundaries]
        if any(a >= b for a, b in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"{who}: boundaries must increase strictly, got {boundaries!r}")
        self.values = [check_number(v, "each value", who, low=0, include_low=False) for v in values]
        self.name = name

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


_SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay)}


def serialize_schedule(schedule):
    """{'class_name': ..., 'config': ...} for a save file; only minicnn's own schedules can be loaded back."""
    if type(schedule) not in _SCHEDULES.values():
        raise ValueError(f"minicnn can save only its own learning-rate schedules ({', '.join(_SCHEDULES)}), "
                         f"got {type(schedule).__name__}")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize_schedule(config):
    """The schedule serialize_schedule described."""
    if not isinstance(config, dict) or config.get("class_name") not in _SCHEDULES \
            or not isinstance(config.get("config"), dict):
        raise ValueError(f"expected a learning-rate schedule as {{'class_name': one of {sorted(_SCHEDULES)}, "
                         f"'config': {{...}}}}, got {config!r}")
    return _SCHEDULES[config["class_name"]].from_config(config["config"])


# `minicnn.optimizers.schedules.ExponentialDecay(...)`, as Keras spells it. A module object, listed in
# sys.modules so that `from minicnn.optimizers.schedules import ExponentialDecay` works too.
schedules = types.ModuleType(__name__ + ".schedules", "Learning-rate schedules (keras.optimizers.schedules).")
schedules.LearningRateSchedule = LearningRateSchedule
schedules.ExponentialDecay = ExponentialDecay
schedules.InverseTimeDecay = InverseTimeDecay
schedules.PiecewiseConstantDecay = PiecewiseConstantDecay
schedules.serialize = serialize_schedule
schedules.deserialize = deserialize_schedule
sys.modules[schedules.__name__] = schedules


# --- the learning rate as Keras scripts use it -----------------------------------------------------
class LearningRate:
    """`optimizer.learning_rate`: the optimizer's current learning rate, usable as a float and
    assignable, as Keras's learning-rate variable is.

        float(lr), lr * 0.5, lr < 1e-3, f"{lr:.4f}", lr.numpy(), backend.get_value(lr)    read
        lr.assign(0.01), backend.set_value(lr, 0.01)                                       write

    It holds no number itself: it reads and writes its optimizer's, so a value kept from it
    follows later changes (keep float(lr) to remember a value).
    """
    # Arithmetic with NumPy arrays comes back to the methods below (array * lr keeps the
    # array's float32), and np.asarray(lr) gives the number.
    __array_ufunc__ = None

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def numpy(self):
        return self.optimizer.current_learning_rate()

    def assign(self, value):
        self.optimizer.learning_rate = value
        return self

    def __float__(self):
        return self.numpy()

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.numpy(), dtype=dtype)

    def __repr__(self):
        return f"<LearningRate of {type(self.optimizer).__name__}: {self.numpy()!r}>"

    def __str__(self):
        return str(self.numpy())

    def __format__(self, spec):
        return format(self.numpy(), spec)

    def __bool__(self):
        return bool(self.numpy())

    # every operation is the float's
    def __add__(self, other): return self.numpy() + other
    def __radd__(self, other): return other + self.numpy()
    def __sub__(self, other): return self.numpy() - other
    def __rsub__(self, other): return other - self.numpy()
    def __mul__(self, other): return self.numpy() * other
    def __rmul__(self, other): return other * self.numpy()
    def __truediv__(self, other): return self.numpy() / other
    def __rtruediv__(self, other): return other / self.numpy()
    def __pow__(self, other): return self.numpy() ** other
    def __neg__(self): return -self.numpy()
    def __eq__(self, other): return self.numpy() == other
    def __lt__(self, other): return self.numpy() < other
    def __le__(self, other): return self.numpy() <= other
    def __gt__(self, other): return self.numpy() > other
    def __ge__(self, other): return self.numpy() >= other
    __hash__ = None   # its value changes: no use as a dict key


# --- the base class -----------------------------------------------------------------------------
# Keras optimizer arguments that minicnn does not support, each with the value(s) that change nothing
# and are accepted (Keras's defaults). Another value raises a TypeError that says so; a name neither
# here nor among the optimizer's own arguments is a typo, refused as Python would.
KERAS_ARGUMENTS = {
    "weight_decay": (None,), "use_ema": (False,), "ema_momentum": (0.99,), "ema_overwrite_frequency": (None,),
    "loss_scale_factor": (None,), "gradient_accumulation_steps": (None,), "amsgrad": (False,),
    "decay": (None, 0, 0.0),   # Keras 2's learning-rate decay; see the hint below
}


def _decay_hint(value):   # Keras 2: lr / (1 + decay * iterations)
    return (f"; for Keras 2's decay use learning_rate=minicnn.optimizers.schedules.InverseTimeDecay("
            f"<learning rate>, decay_steps=1, decay_rate={value!r})")


def refuse_arguments(who, kwargs):
    """Check the keyword arguments no parameter took: Keras's at their defaults pass, others raise."""
    if kwargs.get("name", 0) is None or isinstance(kwargs.get("name"), str):
        kwargs = {key: value for key, value in kwargs.items() if key != "name"}   # no variables to name
    checks.refuse_arguments(who, kwargs, KERAS_ARGUMENTS, {"decay": _decay_hint})


class Optimizer:
    """What every optimizer shares: the learning rate, gradient clipping, the step count and slots.

    Subclasses define `update(index, param, grad)`: one step on one parameter array, in place.
    """
    name = None
    slot_names = ()          # the per-parameter state this optimizer keeps
    non_negative_slots = ()  # slots that add up squares or absolute values: load_model refuses negatives

    def __init__(self, learning_rate=0.001, lr=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 **keras_arguments):
        who = type(self).__name__
        refuse_arguments(who, keras_arguments)
        if lr is not None:  # the Keras 2 spelling, used by older tutorials
            learning_rate = lr
        self._learning_rate = None        # a float, or a LearningRateSchedule
        self.learning_rate = learning_rate   # checked by the setter below
        self.clipnorm, self.clipvalue, self.global_clipnorm = [
            None if value is None else check_number(value, argument, who, low=0, include_low=False)
            for value, argument in [(clipnorm, "clipnorm"), (clipvalue, "clipvalue"),
                                    (global_clipnorm, "global_clipnorm")]]
        if sum(value is not None for value in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(f"{who}: only one of clipnorm, clipvalue and global_clipnorm can be set, got "
                             f"clipnorm={clipnorm!r}, clipvalue={clipvalue!r}, global_clipnorm={global_clipnorm!r}")
        self.iterations = 0   # how many updates have been applied
        self.slots = {}       # slot name -> list of arrays, one per parameter
        # Set by the model: a weak reference to the one model compiled with this optimizer
        # (Model.compile), and which of its weights the slots belong to (Model.train_step).
        self.owner = None
        self.slots_for = None

    # --- the learning rate ------------------------------------------------------------------
    @property
    def learning_rate(self):
        """The learning rate as a LearningRate: a float that can also be assigned."""
        return LearningRate(self)

    @learning_rate.setter
    def learning_rate(self, value):
        who = type(self).__name__
        if isinstance(value, LearningRateSchedule):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, LearningRateSchedule):
            raise TypeError(f"{who}: this optimizer's learning rate follows a {type(self._learning_rate).__name__} "
                            "schedule and cannot be set; give the optimizer a number as learning_rate to "
                            "change it while training")
        if isinstance(value, LearningRate):
            value = float(value)
        self._learning_rate = check_number(value, "learning_rate", who, low=0, include_low=False)

    lr = learning_rate   # the Keras 2 name: optimizer.lr reads and writes the same value

    def current_learning_rate(self):
        """The learning rate of the coming update, a float: the schedule's value at `iterations`."""
        schedule = self._learning_rate
        if not isinstance(schedule, LearningRateSchedule):
            return schedule
        return check_number(schedule(self.iterations), f"the learning rate {type(schedule).__name__} gives at step "
                            f"{self.iterations}", type(self).__name__, low=0)

    # --- one step ------------------------------------------------------------------------------
    def build(self, params):
        """Create the slots (zeros like each parameter) on first use."""
        for slot in self.slot_names:
            self.slots[slot] = [get_array_module(p).zeros_like(p) for p in params]

    def apply_gradients(self, grads_and_params):
        """Update every parameter in place from its (clipped) gradient; then count one iteration."""
        pairs = list(grads_and_params)
        grads, params = [g for g, _ in pairs], [p for _, p in pairs]
        self.current_learning_rate()   # a schedule's value is checked before anything changes
        for grad, param in pairs:
            if param.shape != grad.shape:
                raise ValueError(
                    f"{type(self).__name__}: gradient of shape {grad.shape} for a parameter of shape {param.shape}"
                )
        if not self.slots and self.slot_names:
            self.build(params)
        self._check_slots(params)
        for index, (grad, param) in enumerate(zip(self.clip_gradients(grads), params)):
            self.update(index, param, grad)
        self.iterations += 1

    def clip_gradients(self, grads):
        """The gradients clipped as Keras clips them, as new arrays (the caller's stay unchanged):

            clipnorm:        g * clipnorm / max(||g||, clipnorm)                 each array on its own
            global_clipnorm: g * global_clipnorm / max(||all g||, global_clipnorm)   one factor for all
            clipvalue:       g limited to [-clipvalue, clipvalue]                elementwise

        ||g|| is the L2 norm of all the array's values; ||all g|| that of every array's values together.
        """
        if self.clipnorm is not None:
            return [g * (self.clipnorm / max(math.sqrt(_sum_of_squares(g)), self.clipnorm)) for g in grads]
        if self.global_clipnorm is not None:
            norm = math.sqrt(sum(_sum_of_squares(g) for g in grads))
            return [g * (self.global_clipnorm / max(norm, self.global_clipnorm)) for g in grads]
        if self.clipvalue is not None:
            return [get_array_module(g).clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def _check_slots(self, params):
        if not self.fits(params):
            raise ValueError(f"{type(self).__name__}: this optimizer holds state ({', '.join(self.slots)}) for "
                             f"{len(next(iter(self.slots.values())))} other parameter arrays, got {len(params)}; "
                             "a new set of parameters needs a new optimizer")

    def fits(self, params):
        """True when the slots (if any yet) are one per parameter, of the same shapes."""
        return all(len(arrays) == len(params) and all(a.shape == p.shape for a, p in zip(arrays, params))
                   for arrays in self.slots.values())

    def slot_problem(self, name, array):
        """What is wrong with `array` as the value of slot `name` (None: nothing); load_model asks."""
        if name in self.non_negative_slots and (array < 0).any():
            return (f"holds negative values; {type(self).__name__}'s {name} is a sum or running mean of squared "
                    "(or absolute) values and is never negative")
        return None

    def update(self, index, param, grad):
        raise NotImplementedError

    def get_config(self):
        learning_rate = self._learning_rate
        if isinstance(learning_rate, LearningRateSchedule):
            learning_rate = serialize_schedule(learning_rate)
        return {"learning_rate": learning_rate, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config):
        """The optimizer get_config described (its schedule, if any, rebuilt)."""
        if not isinstance(config, dict):
            raise TypeError(f"{cls.__name__}.from_config: expected a dict of arguments, got {config!r}")
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = deserialize_schedule(config["learning_rate"])
        return cls(**config)

    # --- state, for saving and resuming -------------------------------------------
    def get_state(self):
        """(iterations, {slot: [arrays]}) for save files."""
        return self.iterations, self.slots

    def set_state(self, iterations, slots):
        self.iterations = int(iterations)
        self.slots = {name: list(arrays) for name, arrays in slots.items()}
        self.slots_for = None   # the caller vouches for the order: the model's trainable weights


def _sum_of_squares(g):
    """The sum of g's squared values as a float, added up in float64 (the squares of large float32
    gradients would overflow)."""
    xp = get_array_module(g)
    return float(xp.sum(xp.square(g, dtype=xp.float64)))


# --- the optimizers -------------------------------------------------------------------------------
class SGD(Optimizer):
    """Stochastic gradient descent.

    plain:     param -= lr * grad
    momentum:  v = momentum * v - lr * grad;  param += v
    nesterov:  v = momentum * v - lr * grad;  param += momentum * v - lr * grad
    """
    name = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = check_number(momentum, "momentum", "SGD", low=0, high=1)
        self.nesterov = check_bool(nesterov, "nesterov", "SGD")
        self.slot_names = ("velocity",) if self.momentum else ()

    def update(self, index, param, grad):
        lr = param.dtype.type(self.current_learning_rate())
        if not self.momentum:
            param -= lr * grad
            return
        v = self.slots["velocity"][index]
        v *= param.dtype.type(self.momentum)
        v -= lr * grad
        if self.nesterov:
            param += param.dtype.type(self.momentum) * v - lr * grad
        else:
            param += v

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Moments(Optimizer):
    """What Adam, Nadam and Adamax share: running moments of the gradient with decay rates beta_1
    (the mean) and beta_2 (the squares, or Adamax's maximum), and epsilon (Keras's defaults)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        who = type(self).__name__
        self.beta_1 = check_number(beta_1, "beta_1", who, low=0, high=1, include_high=False)
        self.beta_2 = check_number(beta_2, "beta_2", who, low=0, high=1, include_high=False)
        self.epsilon = check_number(epsilon, "epsilon", who, low=0, include_low=False)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Adam(Moments):
    """Adam (Kingma & Ba), in Keras's form, with t = iterations + 1:

        m = m + (1 - beta_1) * (grad - m)
        v = v + (1 - beta_2) * (grad^2 - v)
        param -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

    The bias corrections are folded into the step size; epsilon (1e-7) is not corrected.
    """
    name = "adam"
    slot_names = ("m", "v")
    non_negative_slots = ("v",)

    def step_size(self):
        """lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) for the coming update t = iterations + 1."""
        t = self.iterations + 1
        return self.current_learning_rate() * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)

    def update(self, index, param, grad):
        m, v = self.slots["m"][index], self.slots["v"][index]
        kernels.adam_update(param, grad, m, v, self.step_size(), self.beta_1, self.beta_2, self.epsilon)


class RMSprop(Optimizer):
    """RMSprop (Hinton), in Keras's form. Slots, by Keras's names: velocity, a running mean of
    grad^2; average_gradient, a running mean of grad (centered=True only); momentum, the moving
    step (momentum > 0 only; `moving` below):

        velocity = rho * velocity + (1 - rho) * grad^2
        average_gradient = rho * average_gradient + (1 - rho) * grad           (centered)
        increment = lr * grad / sqrt(velocity + epsilon)                       (plain)
                  = lr * grad / sqrt(velocity - average_gradient^2 + epsilon)  (centered: the variance)
        param -= increment                                                      (momentum = 0)
        moving = momentum * moving + increment;  param -= moving               (momentum > 0)

    epsilon (1e-7) sits inside the square root, as in Keras (PyTorch adds it outside).
    """
    name = "rmsprop"
    non_negative_slots = ("velocity",)

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = check_number(rho, "rho", "RMSprop", low=0, high=1, include_high=False)
        self.momentum = check_number(momentum, "momentum", "RMSprop", low=0, high=1)
        self.epsilon = check_number(epsilon, "epsilon", "RMSprop", low=0, include_low=False)
        self.centered = check_bool(centered, "centered", "RMSprop")
        self.slot_names = (("velocity",) + (("momentum",) if self.momentum else ())
                           + (("average_gradient",) if self.centered else ()))

    def update(self, index, param, grad):
        xp = get_array_module(param)
        lr, rho = self.current_learning_rate(), self.rho
        velocity = self.slots["velocity"][index]
        velocity *= rho
        velocity += (1 - rho) * xp.square(grad)
        if self.centered:
            average = self.slots["average_gradient"][index]
            average *= rho
            average += (1 - rho) * grad
            increment = lr * grad / xp.sqrt(velocity - xp.square(average) + self.epsilon)
        else:
            increment = lr * grad / xp.sqrt(velocity + self.epsilon)
        if self.momentum:
            moving = self.slots["momentum"][index]
            moving *= self.momentum
            moving += increment
            param -= moving
        else:
            param -= increment

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}


class Nadam(Moments):
    """Nadam (Dozat): Adam with Nesterov momentum, in Keras's form, with t = iterations + 1.
    The momentum coefficient follows a schedule, u_t = beta_1 * (1 - 0.5 * 0.96^t), and
    U_t = u_1 * u_2 * ... * u_t is its running product:

        m = m + (1 - beta_1) * (grad - m)
        v = v + (1 - beta_2) * (grad^2 - v)
        m_hat = u_{t+1} * m / (1 - U_{t+1}) + (1 - u_t) * grad / (1 - U_t)
        v_hat = v / (1 - beta_2^t)
        param -= lr * m_hat / (sqrt(v_hat) + epsilon)

    Keras keeps U_t as a variable; here it is recomputed from the step count, so that it needs no
    saving and follows `iterations` wherever that is put back (an undone step, a loaded file).
    """
    name = "nadam"
    slot_names = ("m", "v")
    non_negative_slots = ("v",)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, **kwargs)
        self._u_product = (0, 1.0)   # (t, U_t), the last product computed: the next one takes one multiplication

    def momentum_at(self, t):
        """u_t = beta_1 * (1 - 0.5 * 0.96^t), the momentum coefficient of step t."""
        return self.beta_1 * (1 - 0.5 * 0.96 ** t)

    def u_product(self, t):
        """U_t = u_1 * u_2 * ... * u_t (U_0 = 1)."""
        done, product = self._u_product
        if done > t:                 # the step count went back: start again from U_0
            done, product = 0, 1.0
        for i in range(done + 1, t + 1):
            product *= self.momentum_at(i)
        self._u_product = (t, product)
        return product

    def update(self, index, param, grad):
        xp = get_array_module(param)
        t = self.iterations + 1
        u_t, u_next = self.momentum_at(t), self.momentum_at(t + 1)
        u_product = self.u_product(t)
        u_product_next = u_product * u_next
        m, v = self.slots["m"][index], self.slots["v"][index]
        m += (1 - self.beta_1) * (grad - m)
        v += (1 - self.beta_2) * (xp.square(grad) - v)
        m_hat = u_next * m / (1 - u_product_next) + (1 - u_t) * grad / (1 - u_product)
        v_hat = v / (1 - self.beta_2 ** t)
        param -= self.current_learning_rate() * m_hat / (xp.sqrt(v_hat) + self.epsilon)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), in Keras's form. The accumulator starts at initial_accumulator_value
    and adds up every squared gradient, so each parameter's steps shrink as it is updated:

        accumulator = accumulator + grad^2
        param -= lr * grad / sqrt(accumulator + epsilon)
    """
    name = "adagrad"
    slot_names = ("accumulator",)
    non_negative_slots = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = check_number(initial_accumulator_value, "initial_accumulator_value",
                                                      "Adagrad", low=0)
        self.epsilon = check_number(epsilon, "epsilon", "Adagrad", low=0, include_low=False)

    def build(self, params):
        """The accumulators start at initial_accumulator_value, not at zero."""
        self.slots["accumulator"] = [get_array_module(p).full_like(p, self.initial_accumulator_value)
                                     for p in params]

    def update(self, index, param, grad):
        xp = get_array_module(param)
        accumulator = self.slots["accumulator"][index]
        accumulator += xp.square(grad)
        param -= self.current_learning_rate() * grad / xp.sqrt(accumulator + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Adadelta (Zeiler), in Keras's form. Two running means, of grad^2 and of the squared steps;
    their ratio sets each parameter's step size (rms(x) = sqrt(x + epsilon)):

        accumulated_grad = rho * accumulated_grad + (1 - rho) * grad^2
        delta = -rms(accumulated_delta_var) / rms(accumulated_grad) * grad
        accumulated_delta_var = rho * accumulated_delta_var + (1 - rho) * delta^2
        param += lr * delta

    The paper has no learning rate (lr = 1.0); Keras's default is 0.001.
    """
    name = "adadelta"
    slot_names = ("accumulated_grad", "accumulated_delta_var")
    non_negative_slots = ("accumulated_grad", "accumulated_delta_var")

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = check_number(rho, "rho", "Adadelta", low=0, high=1, include_high=False)
        self.epsilon = check_number(epsilon, "epsilon", "Adadelta", low=0, include_low=False)

    def update(self, index, param, grad):
        xp = get_array_module(param)
        rho = self.rho
        accumulated_grad = self.slots["accumulated_grad"][index]
        accumulated_delta = self.slots["accumulated_delta_var"][index]
        accumulated_grad *= rho
        accumulated_grad += (1 - rho) * xp.square(grad)
        delta = -xp.sqrt(accumulated_delta + self.epsilon) / xp.sqrt(accumulated_grad + self.epsilon) * grad
        accumulated_delta *= rho
        accumulated_delta += (1 - rho) * xp.square(delta)
        param += self.current_learning_rate() * delta

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adamax(Moments):
    """Adamax (Kingma & Ba), Adam with the infinity norm, in Keras's form, with t = iterations + 1:

        m = m + (1 - beta_1) * (grad - m)
        u = max(beta_2 * u, |grad|)
        param -= lr / (1 - beta_1^t) * m / (u + epsilon)
    """
    name = "adamax"
    slot_names = ("m", "u")
    non_negative_slots = ("u",)

    def update(self, index, param, grad):
        xp = get_array_module(param)
        t = self.iterations + 1
        m, u = self.slots["m"][index], self.slots["u"][index]
        m += (1 - self.beta_1) * (grad - m)
        xp.maximum(self.beta_2 * u, xp.abs(grad), out=u)
        param -= self.current_learning_rate() * m / ((1 - self.beta_1 ** t) * (u + self.epsilon))


_BY_NAME = {"adam": Adam, "sgd": SGD, "rmsprop": RMSprop, "nadam": Nadam, "adagrad": Adagrad,
            "adadelta": Adadelta, "adamax": Adamax}


def get(identifier):
    """An optimizer from a name ('adam', 'sgd', 'rmsprop', 'nadam', 'adagrad', 'adadelta',
    'adamax'; any case) or an Optimizer object."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; expected one of {sorted(_BY_NAME)} or an Optimizer object")


# Keras names minicnn leaves out: asking for one says so (README's compatibility table).
NOT_IN_MINICNN = ("AdamW", "Ftrl", "Lion", "Lamb", "Loss", "LossScaleOptimizer", "legacy", "experimental")


def __getattr__(name):
    from minicnn.utils.checks import missing_keras_name
    raise missing_keras_name("optimizers", name, NOT_IN_MINICNN)
