"""The gradient-check command (python -m minicnn.gradcheck) and its kink detection, on values."""
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minicnn import activations, backend, gradcheck, losses, optimizers
from minicnn.lab import lab_model
from minicnn.layers import BatchNormalization, Conv2D, Dense, Flatten, LeakyReLU, MaxPooling2D
from minicnn.models import Sequential

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--image-size", "8", "--max-elements", "8"]     # the lab's layers on 8x8 images: a few seconds
ROW = re.compile(r"^(\S.*?|\s+)\s{2,}(x|kernel|bias|gamma|beta)\s+(\([\d, ]*\))\s+(\d+)\s+(\S+)\s+(ok|FAIL|kink)"
                 r"(  WARNING: .*)?$")
PER_LAYER = "each layer on its own"
LAB_ARRAYS = 11    # the input and a kernel and a bias for each of the 5 layers with weights


def table_rows(out):
    """[(array, shape, checked, error, status)] parsed from the whole-model table (the first)."""
    return [(m[2], m[3], int(m[4]), float(m[5]), m[6]) for m in map(ROW.match, out.split(PER_LAYER)[0].splitlines())
            if m]


def own_rows(out):
    """{'name (Type)': {array: status}} parsed from the per-layer table."""
    rows, layer = {}, None
    for line in out.split(PER_LAYER)[1].splitlines():
        m = ROW.match(line)
        if m:
            layer = m[1] if m[1].strip() else layer
            rows.setdefault(layer, {})[m[2]] = m[6]
    return rows


def warnings_by_layer(out):
    """{layer name: (count, total)} from the WARNING notes of the table."""
    found = re.findall(r"^(\S+) \(\w+\)\s+-\s+WARNING: (\d+) of (\d+) ", out, flags=re.M)
    return {name: (int(count), int(total)) for name, count, total in found}


def test_the_lab_baseline_passes_with_every_error_below_1e_6(capsys):
    status = gradcheck.main(SMALL)
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert status == 0
    assert len(rows) == LAB_ARRAYS
    assert [r[0] for r in rows] == ["x"] + ["kernel", "bias"] * 5
    assert all(error < 1e-6 and status == "ok" for _, _, _, error, status in rows), out
    assert ("kernel", "(3, 3, 32, 64)", 8) == rows[3][:3]
    assert ("bias", "(10,)", 8) == rows[-1][:3]
    assert "float64" in out and "ok: all 11 arrays agree" in out
    assert backend.floatx() == "float32"        # the command put the default float type back


def planted_kink_model(path):
    """The lab's baseline on 8x8 images whose filter 5 is all zeros: its pre-activations are exactly 0."""
    backend.set_random_seed(0)
    model = gradcheck.lab_baseline(image_size=8)
    model.layers[0].params["kernel"][..., 5] = 0
    model.layers[0].params["bias"][5] = 0
    model.save(path)
    return model


def test_a_planted_kink_triggers_the_warning(tmp_path, capsys):
    names = [layer.name for layer in planted_kink_model(tmp_path / "kink.h5py").layers]
    gradcheck.main(["--model", str(tmp_path / "kink.h5py"), "--batch", "2", "--max-elements", "4"])
    out = capsys.readouterr().out
    found = warnings_by_layer(out)
    # filter 5 is 0 at every pixel of both 8x8 images; its 2x2 pooling windows are all ties
    assert found[names[1]] == (2 * 8 * 8, 2 * 8 * 8 * 32)
    assert found[names[2]] == (2 * 4 * 4, 2 * 4 * 4 * 32)
    assert "near a kink" in out


def test_a_kink_explains_a_failing_check(float64):
    """At z = 0 exactly, central differences see the mean of LeakyReLU's two slopes, not its derivative."""
    x = np.array([[0.0, 1.0, -1.0]])
    layer = LeakyReLU(alpha=0.1)
    errors = gradcheck.check_layer(layer, x)
    assert errors["x"] > 0.1
    model = Sequential([LeakyReLU(alpha=0.1, input_shape=(3,)), Dense(2, activation="softmax")])
    model.compile(loss="categorical_crossentropy")
    kinks = gradcheck.find_kinks(model, x)
    assert list(kinks) == [model.layers[0].name]
    assert (kinks[model.layers[0].name].count, kinks[model.layers[0].name].total) == (1, 3)


def test_find_kinks_counts_near_zero_pre_activations_and_near_ties(float64):
    eps = gradcheck.DEFAULT_EPS
    radius = gradcheck.KINK_RADIUS * eps
    model = Sequential([MaxPooling2D(2, input_shape=(2, 4, 1)), Flatten(), Dense(3, activation="relu")])
    model.compile(loss="categorical_crossentropy")
    model.layers[2].set_weights([np.zeros((2, 3)), np.array([0.0, 0.5 * radius, 1.0])])  # z = bias
    x = np.array([[[1.0, 1.0 + 1.5 * radius, 3.0, 3.0 + 2.5 * radius],
                   [0.0, 0.0, 0.0, 0.0]]])[..., None]          # gaps: 1.5 radius (a near-tie), 2.5 radius (not)
    kinks = gradcheck.find_kinks(model, x, eps)
    pool, dense = kinks[model.layers[0].name], kinks[model.layers[2].name]
    assert (pool.count, pool.total) == (1, 2)
    assert (dense.count, dense.total) == (2, 3)   # z = 0 and z = 0.5 radius
    assert "pre-activations" in str(dense) and "near-tie" in str(pool)


def test_pool_gaps_ignore_the_padding():
    layer = MaxPooling2D(2, padding="same")
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)      # 3x3 -> 2x2 windows, padded at the bottom/right
    layer.build((None, 3, 3, 1))
    gaps = gradcheck.pool_gaps(layer, x).ravel()
    np.testing.assert_allclose(gaps[:3], [5 - 4, 6 - 3, 8 - 7])     # {1,2,4,5}, {3,6}, {7,8}
    assert gaps[3] >= 1                                # {9}: no second value, the padding never counts


def test_a_saved_float32_model_is_checked_as_a_float64_copy(tmp_path):
    model = lab_model(input_shape=(8, 8, 1))
    model.save(tmp_path / "m.h5py")
    copy = gradcheck.as_float64(model)
    assert all(w.dtype == np.float64 for w in copy.get_weights())
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a.astype(np.float64), b)
    assert [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
    assert isinstance(copy.loss, losses.CategoricalCrossentropy)
    x = np.random.default_rng(0).random((3, 8, 8, 1))
    np.testing.assert_allclose(copy.predict(x), model.predict(x), rtol=1e-4, atol=1e-6)
    assert backend.floatx() == "float32"


@pytest.mark.parametrize("kind", ["dropout", "sparse_batchnorm"])
def test_saved_models_with_dropout_or_batchnorm_pass(kind, tmp_path, capsys):
    if kind == "dropout":
        model = lab_model(dropout=True, input_shape=(8, 8, 1))     # masks are fixed by the command
    else:   # the conv bias before BatchNormalization has gradient exactly 0: noise must not fail it
        model = Sequential([Conv2D(4, 3, input_shape=(6, 6, 2)), BatchNormalization(), LeakyReLU(alpha=0.2),
                            Flatten(), Dense(5, activation="softmax")])
        model.compile(optimizer=optimizers.SGD(), loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "m.h5py")
    status = gradcheck.main(["--model", str(tmp_path / "m.h5py"), "--max-elements", "6", "--seed", "3"])
    rows = table_rows(capsys.readouterr().out)
    assert status == 0 and len(rows) == 1 + sum(len(layer.params) for layer in model.layers)
    assert max(error for _, _, _, error, _ in rows) < 1e-6


@pytest.mark.parametrize("argv", [["--batch", "0"], ["--max-elements", "-1"], ["--image-size", "0"],
                                  ["--model", "no/such/model.h5py"]])
def test_bad_options_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        gradcheck.parse_args(argv)
    assert "error" in capsys.readouterr().err


def test_python_dash_m_runs_the_command():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    done = subprocess.run([sys.executable, "-m", "minicnn.gradcheck", "--image-size", "4", "--max-elements", "3"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(table_rows(done.stdout)) == LAB_ARRAYS


# --- a wrong backward pass, named ------------------------------------------------------------
def test_a_patched_backward_fails_the_command_and_is_named(monkeypatch, capsys):
    """The issue's case: LeakyReLU's backward returns dy. Fit would fuse the LeakyReLU layers away;
    the command checks them, fails, and names them in the per-layer table."""
    monkeypatch.setattr(activations.LeakyReLU, "backward", lambda self, dy, z, y: dy)
    status = gradcheck.main(SMALL)
    out = capsys.readouterr().out
    assert status == 1 and "FAIL: " in out
    rows = own_rows(out)
    wrong = [layer for layer, statuses in rows.items() if "FAIL" in statuses.values()]
    assert len(rows) == 13 and len(wrong) == 4 and all(layer.endswith(" (LeakyReLU)") for layer in wrong)
    assert f"the backward passes of {', '.join(wrong)} are wrong" in out
    assert "kink:" not in out                        # the failures are not blamed on a kink
    status = gradcheck.main(SMALL + ["--fused"])     # the plan does not fuse the patched layers either
    assert status == 1


def test_per_layer_shows_every_layer_and_fused_says_so(capsys):
    assert gradcheck.main(SMALL + ["--per-layer", "--fused"]) == 0
    out = capsys.readouterr().out
    rows = own_rows(out)
    types = [label.split(" (")[1][:-1] for label in rows]
    assert types == [type(layer).__name__ for layer in lab_model(input_shape=(8, 8, 1)).layers]
    assert all(set(statuses.values()) == {"ok"} for statuses in rows.values())
    assert all(set(statuses) == {"x", "kernel", "bias"} for label, statuses in rows.items() if "(Conv2D)" in label)
    assert "run the plan as fit runs it, with its fused steps (--fused)" in out
    assert "and so does every layer on its own" in out


def kink_at_seed_0(path):
    """A model whose hidden relu unit 0 has pre-activation exactly 0 on the first image of the batch
    that the command draws with --seed 0, and not on the batch of --seed 1."""
    backend.set_random_seed(0)
    model = Sequential([Flatten(input_shape=(2, 2, 1)), Dense(3, activation="relu", name="hidden"),
                        Dense(2, activation="softmax", name="out")])
    model.compile(loss="categorical_crossentropy")
    x, _ = gradcheck.random_batch(model, 2, np.random.default_rng(0))
    kernel, bias = model.layers[1].get_weights()
    bias[0] = -(x.reshape(2, 4)[0].astype(np.float32) @ kernel[:, 0])
    model.layers[1].set_weights([kernel, bias])
    model.save(path)


def test_a_failure_at_a_kink_that_moves_away_is_the_kink(tmp_path, capsys):
    kink_at_seed_0(tmp_path / "kink.h5")
    status = gradcheck.main(["--model", str(tmp_path / "kink.h5"), "--max-elements", "0"])
    out = capsys.readouterr().out
    statuses = [row[4] for row in table_rows(out)]
    assert statuses == ["kink", "kink", "kink", "ok", "ok"], out          # x, dense's kernel and bias feed the kink
    assert status == 0
    assert "passed on another batch (--seed 1)" in out and "it was the kink, not a bug" in out


def test_a_failure_that_feeds_no_kink_is_not_blamed_on_one(tmp_path, capsys, monkeypatch):
    """The same model, its last layer's backward wrong: those arrays feed no kink and simply fail."""
    kink_at_seed_0(tmp_path / "kink.h5")
    backward_linear = Dense.backward_linear

    def wrong(self, dz):
        dx = backward_linear(self, dz)
        if self.activation.name == "softmax":
            self.grads["kernel"] = 2 * self.grads["kernel"]
        return dx
    monkeypatch.setattr(Dense, "backward_linear", wrong)
    status = gradcheck.main(["--model", str(tmp_path / "kink.h5"), "--max-elements", "0"])
    out = capsys.readouterr().out
    assert status == 1
    assert [row[4] for row in table_rows(out)] == ["kink", "kink", "kink", "FAIL", "ok"], out
    blamed_on_the_kink = out.split("kink:")[1].split("\n\n")[0]
    assert "hidden/kernel" in blamed_on_the_kink and "out/" not in blamed_on_the_kink
    assert "the backward pass of out (Dense) is wrong" in out


# --- what the command refuses ------------------------------------------------------------------
@pytest.mark.parametrize("eps", ["nan", "0", "-1e-6", "inf", "-inf", "tiny"])
def test_a_nonsensical_eps_is_refused(eps, capsys):
    with pytest.raises(SystemExit) as stop:
        gradcheck.main([f"--eps={eps}"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --eps: must be a finite number > 0, such as 1e-06; got '{eps}'" in err


def damaged_files(folder):
    """A few damaged model files: {name: path}."""
    model = lab_model(input_shape=(4, 4, 1))
    good = folder / "good.h5"
    model.save(good)
    files = {"garbage": b"not a model at all", "empty": b"", "truncated": good.read_bytes()[:300]}
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.h5"
        paths[name].write_bytes(data)
    paths["bad config"] = folder / "config.h5"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(paths["bad config"], "w") as target:
        for item in source.infolist():
            target.writestr(item, b"{not json" if item.filename == "config.json" else source.read(item))
    return paths


def test_a_damaged_model_file_gives_one_line_and_status_2(tmp_path, capsys):
    for name, path in damaged_files(tmp_path).items():
        status = gradcheck.main(["--model", str(path)])
        captured = capsys.readouterr()
        assert status == 2, name
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("python -m minicnn.gradcheck: error: --model: "), (name, lines)
        assert "Traceback" not in captured.err and captured.out == ""
