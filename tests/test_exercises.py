"""minicnn.exercises: every reference passes, every planted mistake is caught with its hint, the
templates are where a learner starts, the learner's functions really run inside --train, and the
command line behaves (exit status 0 pass, 1 fail, 2 usage error)."""
import inspect
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import REPO, SCRIPT_TIMEOUT_S, needs_fashion_mnist
from minicnn import exercises
from minicnn.exercises import cli, training
from minicnn.exercises.checking import check

MISTAKES = [(name, mistake) for name, exercise in exercises.EXERCISES.items() for mistake in exercise.mistakes]


def folded(report):
    """The report's text with its line wrapping undone (white space folded to single spaces)."""
    return " ".join(report.text().split())


def test_the_issue_asks_for_these_exercises():
    assert set(exercises.EXERCISES) >= {"leaky_relu", "dense_backward", "softmax_cross_entropy_gradient", "im2col",
                                        "col2im", "conv2d_backward", "maxpool_forward", "maxpool_backward",
                                        "dropout_forward", "adam_step"}


@pytest.mark.parametrize("name", exercises.EXERCISES)
def test_the_reference_passes_every_stage(name):
    exercise = exercises.get(name)
    report = check(exercise, exercise.reference_functions())
    assert report.passed, report.text()
    assert report.text().count("[ok]") == 5     # defined and runs, shapes, hand-made, drawn, gradient


@pytest.mark.parametrize("name, mistake", MISTAKES, ids=[f"{n}: {m.name}" for n, m in MISTAKES])
def test_a_planted_mistake_fails_with_its_hint(name, mistake):
    exercise = exercises.get(name)
    report = check(exercise, exercise.with_mistake(mistake))
    assert not report.passed
    assert f"HINT ({mistake.name}): {mistake.hint}" in folded(report)


@pytest.mark.parametrize("name", exercises.EXERCISES)
def test_every_exercise_plants_a_mistake_and_has_a_template(name):
    exercise = exercises.get(name)
    assert exercise.mistakes
    template = load_module(exercise.template_path())
    for function in exercise.functions:
        written = inspect.signature(getattr(template, function)).parameters
        reference = inspect.signature(exercise.reference[function]).parameters
        assert len(written) == len(reference), function
        assert getattr(template, function).__doc__, f"{function}: the template explains shapes and maths"
    report = check(exercise, template)
    assert report.stage == "runs" and "still the template" in report.text()


def load_module(path):
    module, problem = cli.load(Path(path))
    assert problem is None, problem
    return module


# --- what a report says ---------------------------------------------------------------------------------
def test_a_report_names_the_input_the_first_wrong_element_and_both_values():
    exercise = exercises.get("conv2d_backward")
    [mistake] = [m for m in exercise.mistakes if m.name == "kernel not transposed"]
    text = folded(check(exercise, exercise.with_mistake(mistake)))
    assert "values on hand-made inputs" in text and "on input: x = 1, ..., 9 in shape (1, 3, 3, 1)" in text
    assert "dx differs first at dx[0, 0, 1, 0]: yours 1.2, expected 0.7" in text
    assert "(8 of 9 entries differ" in text
    assert "stage: hand-made values" in text


def test_float32_must_stay_float32():
    from minicnn.kernels import reference
    learner = SimpleNamespace(im2col=lambda x, window: reference.im2col(x.astype(np.float64), window))
    report = exercises.check("im2col", learner)
    assert report.stage == "shapes and dtypes"
    assert "col has dtype float64, expected float32" in report.text()


def test_float64_must_stay_float64_in_the_gradient_check():
    from minicnn.kernels import reference
    learner = SimpleNamespace(col2im=lambda col, window: reference.col2im(col.astype(np.float32), window))
    report = exercises.check("col2im", learner)
    assert report.stage == "gradient"
    assert "float64 in, float32 out for dx" in report.text()


def test_a_wrong_gradient_is_reported_against_central_differences():
    from minicnn.kernels import reference

    def leaky_relu_backward(dy, z, negative_slope):       # right at float32 tolerance, wrong for the gradient
        return reference.leaky_relu_backward(dy, z, negative_slope) * (1 + 1e-5)
    learner = SimpleNamespace(leaky_relu_forward=reference.leaky_relu_forward, leaky_relu_backward=leaky_relu_backward)
    report = exercises.check("leaky_relu", learner)
    assert report.stage == "gradient"
    assert "relative error 1.00e-05" in report.text() and "numerical" in report.text()


def test_a_missing_function_and_a_wrong_return_are_named():
    report = exercises.check("leaky_relu", SimpleNamespace(leaky_relu_forward=lambda z, s: z))
    assert report.stage == "defined" and "no function leaky_relu_backward" in report.text()
    report = exercises.check("dense_backward", SimpleNamespace(dense_backward=lambda dz, x, kernel: (dz, x)))
    assert report.stage == "runs"
    assert "returned 2 values; it should return 3 arrays: (dx, d_kernel, d_bias)" in folded(report)


def test_a_crash_shows_the_learners_own_frames(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("def im2col(x, window):\n    return x[window.kh]\n")
    report = check(exercises.get("im2col"), load_module(path), path=path)
    text = report.text()
    assert report.stage == "runs" and "IndexError" in text
    assert str(path) in text and "return x[window.kh]" in text and "checking.py" not in text


# --- --train: the learner's functions run inside the model ---------------------------------------------
@pytest.mark.parametrize("name", exercises.EXERCISES)
def test_the_plugged_functions_are_the_ones_that_train(name):
    """Every function of the exercise is called during a training step, and with minicnn's functions
    plugged in the step gives the same loss as minicnn's plain model."""
    exercise = exercises.get(name)
    calls = {}

    def counted(function_name, function):
        def wrapper(*args, **kwargs):
            calls[function_name] = calls.get(function_name, 0) + 1
            return function(*args, **kwargs)
        return wrapper

    spy = SimpleNamespace(**{n: counted(n, f) for n, f in exercise.reference.items()})
    rng = np.random.default_rng(0)
    x = rng.random((8, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 8)]
    from minicnn import lab
    weights = lab.lab_model(dropout=exercise.model == "dropout").get_weights()
    batches = [np.arange(8), np.arange(8)]
    run = training.train(exercise, spy, x, y, batches, weights, seed=5)
    assert set(calls) == set(exercise.functions), f"not called: {set(exercise.functions) - set(calls)}"
    assert run.problem is None and len(run.losses) == 2
    plain = lab.lab_model(dropout=exercise.model == "dropout")
    plain.set_weights(weights)
    from minicnn import backend
    backend.set_random_seed(5)
    expected = plain.train_step(x, y)[0]
    assert run.losses[0] == pytest.approx(expected, rel=1e-5)


def test_batches_cover_the_images_in_shuffled_passes():
    batches = training.batch_indices(10, steps=7, batch_size=3, seed=1)
    assert len(batches) == 7 and all(len(b) == 3 for b in batches)
    flat = np.concatenate(batches)
    assert sorted(flat[:10]) == list(range(10))
    assert np.array_equal(np.concatenate(training.batch_indices(10, 7, 3, seed=1)), flat)


@needs_fashion_mnist
def test_check_train_on_real_data_writes_both_curves(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text("from minicnn.kernels.reference import im2col\n")
    plot = tmp_path / "curves.png"
    status = cli.main(["check", "im2col", str(path), "--train", "--steps", "4", "--images", "256", "--every", "2",
                       "--plot", str(plot)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "PASS: im2col" in out and "for 4 steps of 64 images (Fashion-MNIST, 256 training images)" in out
    assert "the two runs agree" in out and f"wrote {plot}" in out
    assert plot.read_bytes().startswith(b"\x89PNG")


# --- the command line --------------------------------------------------------------------------------------
def test_list_names_every_exercise(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in exercises.EXERCISES)


def test_start_writes_the_template_and_never_overwrites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["start", "col2im"]) == 0
    written = (tmp_path / "col2im.py").read_text()
    assert written == exercises.get("col2im").template()
    (tmp_path / "col2im.py").write_text("# my work\n")
    assert cli.main(["start", "col2im"]) == 2
    assert (tmp_path / "col2im.py").read_text() == "# my work\n"
    assert "not overwriting" in capsys.readouterr().err
    assert cli.main(["start", "col2im", "--output", "other.py"]) == 0 and (tmp_path / "other.py").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temporary file left


def test_check_exit_status_pass_fail_and_a_syntax_error(tmp_path, capsys):
    good, wrong, broken = tmp_path / "good.py", tmp_path / "wrong.py", tmp_path / "broken.py"
    good.write_text("from minicnn.kernels.reference import col2im\n")
    wrong.write_text("import numpy as np\n\ndef col2im(col, window):\n"
                     "    return np.zeros((col.shape[0], window.h, window.w, 1), col.dtype)\n")
    broken.write_text("def col2im(col, window)\n    return col\n")
    assert cli.main(["check", "col2im", str(good)]) == 0
    assert "PASS: col2im" in capsys.readouterr().out
    assert cli.main(["check", "col2im", str(wrong)]) == 1
    assert "[FAIL] output shapes and dtypes" in capsys.readouterr().out
    assert cli.main(["check", "col2im", str(broken)]) == 1
    assert "syntax error, line 1" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["start", "conv3d"], ["check", "conv3d", "x.py"], ["check", "im2col", "missing.py"],
                                  ["check", "im2col", __file__, "--steps", "0"], ["frobnicate"]])
def test_usage_errors_exit_with_2(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2


def test_python_dash_m_runs_the_command_line(tmp_path):
    (tmp_path / "adam_step.py").write_text(exercises.get("adam_step").template())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    done = subprocess.run([sys.executable, "-m", "minicnn.exercises", "check", "adam_step", "adam_step.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)
    assert done.returncode == 1 and "still the template" in done.stdout, done.stderr
