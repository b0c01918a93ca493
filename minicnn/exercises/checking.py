"""The checker: run a learner's functions through six stages and stop at the first failure.

    1. defined      the file defines every function the exercise asks for
    2. runs         they run on the first hand-made input (a short traceback if not)
    3. shapes       every output has minicnn's shape and dtype (float32 stays float32), on every input
    4. hand-made    the values equal minicnn's on small inputs made by hand
    5. drawn        ... and on inputs drawn with fixed seeds (strides, padding, overlaps, ties)
    6. gradient     in float64, the backward pass agrees with central differences of the forward pass

On a failure the report names the input, the first differing element (its index, your value, minicnn's)
and, when your output equals the output of a classic mistake, a HINT naming that mistake. Each exercise
plants those mistakes itself (Exercise.mistakes): a mistake is a wrong version of the function.
"""
import textwrap
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np

from minicnn import gradcheck

# float32 values may differ from minicnn's by rounding: a summation in another order, say.
FLOAT32_RTOL = 1e-4
FLOAT32_ATOL = 1e-5        # relative to the largest expected entry (at least 1)
GRADIENT_TOLERANCE = gradcheck.DEFAULT_TOLERANCE    # 1e-6: a correct backward gives about 1e-9
TRACEBACK_FRAMES = 3       # frames of the learner's own code shown when it raises
SHOWN_WHOLE = 25           # arrays of up to this many entries are printed whole in a report
REPORT_WIDTH = 100         # longer lines of a report are wrapped


# --- what an exercise is --------------------------------------------------------------------
@dataclass
class Case:
    """One input of an exercise: a label a learner can read, and the keyword arguments of run()."""
    label: str
    inputs: dict


@dataclass
class Mistake:
    """A planted mistake: a classic wrong version of one or more of the functions, and its hint."""
    name: str
    functions: dict
    hint: str


@dataclass
class GradientCheck:
    """One array of a gradient check: the learner's gradient beside the numerical one (float64)."""
    name: str
    analytic: np.ndarray
    numerical: np.ndarray
    source: str = "yours"       # whose code gave `analytic`: 'yours', or minicnn's backward of your forward


@dataclass
class Exercise:
    """An exercise: what to write, how to run it, minicnn's answer, and how to check and plug it in.

    run(functions, **case.inputs) -> {output name: array}: calls the functions (attributes of
        `functions`: the learner's module, or the reference) and collects what they return or update.
    hand_made(dtype), drawn(dtype) -> [Case]
    gradient(functions) -> (label, [GradientCheck]), float64; None when there is no backward pass.
    plug(model, functions) -> a context manager inside which `model` trains with `functions`.
    """
    name: str
    summary: str
    functions: tuple
    reference: dict
    run: Callable
    hand_made: Callable
    drawn: Callable
    gradient: Callable
    mistakes: list
    plug: Callable
    model: str = "baseline"          # which lab model --train trains: 'baseline' or 'dropout'
    fusion: bool = True              # False when the fused Conv2D -> LeakyReLU -> MaxPooling2D step would skip the code
    advice: str = ""                 # said when a value is wrong and no planted mistake explains it

    def template_path(self):
        return Path(__file__).parent / "templates" / f"{self.name}.py"

    def template(self):
        return self.template_path().read_text(encoding="utf-8")

    def reference_functions(self):
        return SimpleNamespace(**self.reference)

    def with_mistake(self, mistake):
        """The reference functions with the mistake's versions in their place."""
        return SimpleNamespace(**{**self.reference, **mistake.functions})


# --- running a learner's code -----------------------------------------------------------------
class LearnerError(Exception):
    """The learner's code raised, or returned something that is not what the exercise asks for."""

    def __init__(self, message, error=None):
        super().__init__(message)
        self.error = error


def copy_inputs(inputs):
    """Fresh copies of the arrays (a learner's function may write into its inputs)."""
    return {key: value.copy() if isinstance(value, np.ndarray) else value for key, value in inputs.items()}


def call(exercise, functions, case):
    """exercise.run on a copy of the case's inputs; what it returns, as NumPy arrays, or a LearnerError."""
    try:
        with np.errstate(all="ignore"):      # overflow shows as inf or NaN in the report, not as warnings
            outputs = exercise.run(functions, **copy_inputs(case.inputs))
    except LearnerError:
        raise
    except NotImplementedError as error:
        raise LearnerError("still the template: it raises NotImplementedError. Write its body in place of "
                           "`raise NotImplementedError`.", error) from error
    except Exception as error:
        raise LearnerError(f"raised {type(error).__name__}: {error}", error) from error
    return outputs


def returned(value, names, function):
    """Check that `function` returned one array (one name) or a tuple of len(names) arrays; return them."""
    if len(names) == 1:
        values = (value,)
    elif not isinstance(value, (tuple, list)) or len(value) != len(names):
        got = f"{len(value)} values" if isinstance(value, (tuple, list)) else f"a {type(value).__name__}"
        raise LearnerError(f"{function} returned {got}; it should return {len(names)} arrays: ({', '.join(names)})")
    else:
        values = tuple(value)
    for name, array in zip(names, values):
        if not isinstance(array, np.ndarray):
            fix = " (did you forget `return`?)" if array is None else ""
            raise LearnerError(f"{function} returned {name} as {type(array).__name__}{fix}; "
                               "it should be a NumPy array")
    return dict(zip(names, values))


def brief_traceback(error, path=None):
    """The last few frames of the learner's own code: those in `path`, or (without a path) those outside
    this package; the last frame when there are none."""
    frames = traceback.extract_tb(error.__traceback__)
    if path is not None:
        own = [f for f in frames if Path(f.filename).resolve() == Path(path).resolve()]
    else:
        own = [f for f in frames if Path(f.filename).resolve().parent != Path(__file__).resolve().parent]
    lines = traceback.format_list((own or frames[-1:])[-TRACEBACK_FRAMES:])
    return ("".join(lines) + "".join(traceback.format_exception_only(type(error), error))).rstrip("\n")


# --- comparing ------------------------------------------------------------------------------
def differing(yours, expected):
    """Boolean array: where yours differs from expected beyond rounding (exact for integer arrays)."""
    if np.issubdtype(expected.dtype, np.integer) or expected.dtype == bool:
        return yours != expected
    rtol, atol = (1e-9, 1e-12) if expected.dtype == np.float64 else (FLOAT32_RTOL, FLOAT32_ATOL)
    finite = np.abs(expected[np.isfinite(expected)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    with np.errstate(invalid="ignore"):
        close = np.isclose(yours.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol * scale,
                           equal_nan=True)
    return ~close


def same_values(yours, expected):
    return yours.shape == expected.shape and not differing(yours, expected).any()


def first_difference(name, yours, expected, other="expected"):
    """'name differs first at name[i, j]: yours 0.5, expected 1.25 (3 of 16 entries differ, ...)';
    small arrays are shown whole."""
    wrong = differing(yours, expected)
    index = tuple(int(i) for i in np.argwhere(wrong)[0])
    gap = np.abs(yours.astype(np.float64) - expected.astype(np.float64))[wrong]
    largest = f", the largest by {gap.max():.4g}" if np.isfinite(gap).all() else ""
    text = (f"{name} differs first at {name}[{', '.join(map(str, index))}]: yours {number(yours[index])}, "
            f"{other} {number(expected[index])}\n({int(wrong.sum())} of {wrong.size} entries differ{largest})")
    if expected.size <= SHOWN_WHOLE:
        text += f"\nyours:    {whole(yours)}\n{other + ':':<9} {whole(expected)}"
    return text


def number(value):
    """A NumPy scalar as a learner writes it: 0.7, 3, nan."""
    return f"{value.item():.6g}" if isinstance(value.item(), float) else str(value.item())


def whole(array):
    """A small array on one line, unit axes dropped: [[1 2] [3 4]]."""
    return " ".join(np.array2string(np.squeeze(array), precision=4, separator=" ").split())


# --- hints -----------------------------------------------------------------------------------
def hints(exercise, case, matches):
    """The hints of the planted mistakes whose outputs on `case` pass matches(mistake outputs)."""
    found = []
    for mistake in exercise.mistakes:
        try:
            outputs = call(exercise, exercise.with_mistake(mistake), case)
        except LearnerError as error:
            outputs = error
        if matches(outputs):
            found.append(mistake)
    return found


def format_hints(found, advice=""):
    if not found:
        return f"HINT: {advice}" if advice else ""
    return "\n".join(f"HINT ({m.name}): {m.hint}" for m in found)


def same_error(error):
    """A matcher: the mistake raised the same exception, with the same message."""
    def matches(outputs):
        return (isinstance(outputs, LearnerError) and type(outputs.error) is type(error.error)
                and str(outputs) == str(error))
    return matches


def same_output(name, yours):
    def matches(outputs):
        return isinstance(outputs, dict) and name in outputs and same_values(yours, np.asarray(outputs[name]))
    return matches


def same_shape_and_dtype(name, yours):
    def matches(outputs):
        return (isinstance(outputs, dict) and name in outputs and outputs[name].shape == yours.shape
                and outputs[name].dtype == yours.dtype)
    return matches


# --- the stages -------------------------------------------------------------------------------
@dataclass
class Report:
    """The result of a check: passed or not, at which stage, and the lines to print."""
    exercise: str
    passed: bool = True
    stage: str = ""
    lines: list = field(default_factory=list)

    def ok(self, text):
        self.lines.append(f"  [ok]   {text}")

    def fail(self, stage, text, details):
        self.passed, self.stage = False, stage
        self.lines.append(f"  [FAIL] {text}")
        for line in details.strip("\n").splitlines():
            wrapped = textwrap.wrap(line, REPORT_WIDTH, subsequent_indent="  ", break_long_words=False,
                                    break_on_hyphens=False) if len(line) > REPORT_WIDTH else [line]
            self.lines += [f"         {part}" for part in wrapped]

    def text(self):
        if self.passed:
            verdict = f"PASS: {self.exercise} agrees with minicnn at every stage."
        else:
            verdict = f"FAIL: {self.exercise} is not right yet (stage: {self.stage})."
        return "\n".join([f"checking {self.exercise}"] + self.lines + [verdict])


def indented(label):
    """A label of several lines, its later lines indented under the first."""
    return label.replace("\n", "\n  ")


class _Stop(Exception):
    """A stage failed: the report says why."""


def _error_details(exercise, case, error, path):
    """Where it failed: the input, the message (or the traceback of the learner's code), and any hint."""
    details = f"on input: {indented(case.label)}\n"
    if error.error is None:                                  # a wrong return: the message names the function
        details += str(error)
    elif isinstance(error.error, NotImplementedError):
        details += f"{', '.join(exercise.functions)}: {error}"
    else:
        details += f"{', '.join(exercise.functions)} raised {type(error.error).__name__}:\n" + brief_traceback(
            error.error, path)
    found = hints(exercise, case, same_error(error))
    return details + ("\n" + format_hints(found) if found else "")


def _run_all(exercise, functions, cases, report, path):
    """The learner's outputs on every case (stage 'shapes'); stops at the first error or wrong shape."""
    reference = exercise.reference_functions()
    results = []
    for case in cases:
        try:
            yours = call(exercise, functions, case)
        except LearnerError as error:
            report.fail("runs", "runs on every input", _error_details(exercise, case, error, path))
            raise _Stop from None
        expected = call(exercise, reference, case)
        for name, want in expected.items():
            got = yours[name]
            if got.shape != want.shape or not _same_kind(got.dtype, want.dtype):
                what = "shape" if got.shape != want.shape else "dtype"
                details = (f"on input: {indented(case.label)}\n{name} has {what} "
                           f"{got.shape if what == 'shape' else got.dtype}, expected "
                           f"{want.shape if what == 'shape' else want.dtype}")
                found = hints(exercise, case, same_shape_and_dtype(name, got))
                advice = _dtype_advice(want.dtype) if what == "dtype" else ""
                report.fail("shapes and dtypes", "output shapes and dtypes",
                            details + "\n" + format_hints(found, advice))
                raise _Stop
        results.append((case, yours, expected))
    return results


def _dtype_advice(want):
    if np.issubdtype(want, np.integer):
        return "this output holds positions: give it an integer dtype (np.int32 or np.int64)"
    return "keep the input's dtype: create arrays with dtype=x.dtype (float32 stays float32)"


def _same_kind(got, want):
    """The same dtype; for integer outputs (argmax) any integer dtype will do."""
    if np.issubdtype(want, np.integer):
        return np.issubdtype(got, np.integer)
    return got == want


def _compare_values(exercise, results, stage, title, report):
    for case, yours, expected in results:
        for name, want in expected.items():
            if differing(yours[name], want).any():
                details = f"on input: {indented(case.label)}\n" + first_difference(name, yours[name], want)
                found = hints(exercise, case, same_output(name, yours[name]))
                report.fail(stage, title, details + "\n" + format_hints(found, exercise.advice))
                raise _Stop
    report.ok(f"{title} ({len(results)} inputs)")


def _gradient_stage(exercise, functions, report, path):
    title = "gradient check in float64 (central differences)"
    try:
        with np.errstate(all="ignore"):
            found = exercise.gradient(functions)
    except LearnerError as error:
        report.fail("gradient", title, f"{exercise.name}: {error}" + (
            "\n" + brief_traceback(error.error, path) if error.error is not None else ""))
        raise _Stop from None
    except Exception as error:
        report.fail("gradient", title, f"raised {type(error).__name__}: {error}\n" + brief_traceback(error, path))
        raise _Stop from None
    if found is None:
        report.ok("gradient check: none (an update rule has no backward pass); float64 values agree")
        return
    label, checks = found
    for check in checks:
        error = _gradient_error(check)
        if check.analytic.dtype != np.float64:
            report.fail("gradient", title, f"on input: {indented(label)}\nfloat64 in, {check.analytic.dtype} out for "
                        f"{check.name}: keep the input's dtype (no astype(np.float32) inside your function)")
            raise _Stop
        if check.analytic.shape != check.numerical.shape or error >= GRADIENT_TOLERANCE:
            whose = "your" if check.source == "yours" else check.source
            details = (f"on input: {indented(label)}\n{check.name}: relative error {error:.2e} "
                       f"(a correct backward pass gives about 1e-9; tolerance {GRADIENT_TOLERANCE:g}) "
                       f"between {whose} gradient and central differences\n")
            if check.analytic.shape == check.numerical.shape:
                details += first_difference(check.name, check.analytic, check.numerical, other="numerical")
            report.fail("gradient", title, details)
            raise _Stop
    report.ok(f"{title}: {', '.join(c.name for c in checks)} agree{'s' if len(checks) == 1 else ''}")


def _gradient_error(check):
    """Largest difference relative to the largest gradient entry (as minicnn.gradcheck reports it)."""
    if check.analytic.shape != check.numerical.shape:
        return float("inf")
    analytic, numerical = check.analytic.astype(np.float64), check.numerical
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numerical).max(initial=0.0), gradcheck.GRADIENT_FLOOR)
    return float(np.abs(analytic - numerical).max(initial=0.0) / scale)


def check(exercise, functions, path=None):
    """Run the six stages on `functions` (a module or a namespace with the exercise's functions).

    path: the learner's file, to show only its frames in tracebacks. Returns a Report.
    """
    report = Report(exercise.name)
    try:
        missing = [name for name in exercise.functions if not callable(getattr(functions, name, None))]
        if missing:
            where = f"{Path(path).name} defines" if path else "the functions given define"
            report.fail("defined", "the functions are defined",
                        f"{where} no function {', '.join(missing)}; the exercise asks for "
                        f"{', '.join(exercise.functions)} (`python -m minicnn.exercises start {exercise.name}` "
                        "writes a template)")
            raise _Stop
        hand_made, drawn = exercise.hand_made(np.float32), exercise.drawn(np.float32)
        names = f"{', '.join(exercise.functions)} run{'s' if len(exercise.functions) == 1 else ''}"
        try:
            call(exercise, functions, hand_made[0])
        except LearnerError as error:
            report.fail("runs", names, _error_details(exercise, hand_made[0], error, path))
            raise _Stop from None
        report.ok(f"defined; {names}")
        results = _run_all(exercise, functions, hand_made + drawn, report, path)
        report.ok(f"output shapes and dtypes ({', '.join(results[0][2])}) on {len(results)} inputs")
        _compare_values(exercise, results[:len(hand_made)], "hand-made values", "values on hand-made inputs", report)
        _compare_values(exercise, results[len(hand_made):], "drawn values", "values on drawn inputs", report)
        _gradient_stage(exercise, functions, report, path)
    except _Stop:
        pass
    return report
