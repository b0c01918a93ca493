#!/usr/bin/env bash
# The main job: install minicnn and the Fashion-MNIST data, then run the whole Keras lab
# (baseline and dropout models, 20 epochs each) and write lab_output/report.md.
# Extra arguments go to examples/fashion_mnist_lab.py, e.g. --quick or --output DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ -z "${MINICNN_DATA:-}" ]; then
  echo "Installing Debian's dataset-fashion-mnist (or set MINICNN_DATA to a folder with the .gz files)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist
fi

python3 -m pip install -q --disable-pip-version-check -e .
python3 examples/fashion_mnist_lab.py --seed 13 "$@"
