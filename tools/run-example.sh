#!/usr/bin/env bash
# Builds tapegrad (release build) and trains the MNIST CNN example on the
# digits shipped in examples/data/mnist-10k. Installs meson, ninja and
# pkg-config first when they are missing. Extra arguments go to mnist_cnn,
# e.g. tools/run-example.sh --epochs 1 or --data /usr/share/datasets/fashion-mnist
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh
tg_install_deps
if [ ! -f build-release/build.ninja ]; then
    meson setup build-release --buildtype=release -Dtests=disabled >/dev/null
fi
ninja -C build-release >/dev/null
exec ./build-release/examples/mnist_cnn/mnist_cnn "$@"
