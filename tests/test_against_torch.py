"""minicnn against PyTorch on the lab's model: same weights, same batch -> same numbers.

Skipped (visibly) where PyTorch is not installed.
"""
import numpy as np
import pytest

from minicnn import optimizers
from minicnn.lab import lab_model
from minicnn.utils import to_categorical

torch = pytest.importorskip("torch", reason="PyTorch is not installed; the comparison is skipped")


class TorchLab(torch.nn.Module):
    """The lab's baseline in PyTorch (NCHW), 'same' pooling as ceil_mode."""

    def __init__(self):
        super().__init__()
        self.convs = torch.nn.ModuleList([torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.Conv2d(32, 64, 3, padding=1),
                                          torch.nn.Conv2d(64, 128, 3, padding=1)])
        self.dense1, self.dense2 = torch.nn.Linear(2048, 128), torch.nn.Linear(128, 10)

    def forward(self, x):
        for conv in self.convs:
            x = torch.nn.functional.max_pool2d(torch.nn.functional.leaky_relu(conv(x), 0.1), 2, ceil_mode=True)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # flatten in NHWC order, as minicnn does
        return self.dense2(torch.nn.functional.leaky_relu(self.dense1(x), 0.1))

    def load_keras_weights(self, weights):
        """Keras order and shapes -> PyTorch: conv (kh, kw, in, out) -> (out, in, kh, kw), dense transposed."""
        layers = list(self.convs) + [self.dense1, self.dense2]
        with torch.no_grad():
            for layer, kernel, bias in zip(layers, weights[0::2], weights[1::2]):
                kernel = kernel.transpose(3, 2, 0, 1) if kernel.ndim == 4 else kernel.T
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
                layer.bias.copy_(torch.from_numpy(bias))

    def keras_weights(self):
        layers = list(self.convs) + [self.dense1, self.dense2]
        out = []
        for layer in layers:
            kernel = layer.weight.detach().numpy()
            out += [kernel.transpose(2, 3, 1, 0) if kernel.ndim == 4 else kernel.T, layer.bias.detach().numpy()]
        return out


def test_gradients_match_pytorch_in_float64(float64):
    rng = np.random.default_rng(1)
    model = lab_model()
    net = TorchLab().double()
    net.load_keras_weights(model.get_weights())
    x, labels = rng.random((8, 28, 28, 1)), rng.integers(0, 10, 8)
    loss, _, dx = model.compute_gradients(x, to_categorical(labels, 10))
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2)).requires_grad_()
    torch_loss = torch.nn.functional.cross_entropy(net(xt), torch.from_numpy(labels))
    torch_loss.backward()
    assert float(loss) == pytest.approx(torch_loss.item(), rel=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-9, atol=1e-14)
    ours = [layer.grads[key] for layer, key in model.trainable_params()]
    theirs = []
    for layer in list(net.convs) + [net.dense1, net.dense2]:
        grad = layer.weight.grad.numpy()
        theirs += [grad.transpose(2, 3, 1, 0) if grad.ndim == 4 else grad.T, layer.bias.grad.numpy()]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-14)


def test_three_adam_steps_match_pytorch_in_float64(float64):
    """Keras adds epsilon to sqrt(v) before the bias correction, PyTorch after it, so
    the two Adams agree exactly only when epsilon is negligible: both use 1e-30 here."""
    rng = np.random.default_rng(0)
    model = lab_model()
    model.compile(optimizer=optimizers.Adam(epsilon=1e-30), loss="categorical_crossentropy")
    net = TorchLab().double()
    net.load_keras_weights(model.get_weights())
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-30)
    for step in range(3):
        x = rng.random((8, 28, 28, 1))
        labels = rng.integers(0, 10, 8)
        loss = model.train_on_batch(x, to_categorical(labels, 10))
        optimizer.zero_grad()
        torch_loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x.transpose(0, 3, 1, 2))),
                                                       torch.from_numpy(labels))
        torch_loss.backward()
        optimizer.step()
        assert loss == pytest.approx(torch_loss.item(), rel=1e-10), step
    for ours, theirs in zip(model.get_weights(), net.keras_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-10)
