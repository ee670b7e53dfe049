#!/bin/sh
# Trains and saves with mnist_train_save, then loads and predicts with
# mnist_predict in a second process: the round trip of examples/mnist_predict.
# Usage: save_load.sh TRAIN_EXE PREDICT_EXE SCRATCH_FILE
set -eu
rm -f "$3"
"$1" --epochs 1 --verbose 0 --model "$3"
out=$("$2" --model="$3")
echo "$out"
rm -f "$3"
# One epoch reaches about 0.9 on the test digits; 0.8 leaves room for rounding.
echo "$out" | awk '/^Test accuracy:/ { ok = ($3 >= 0.8) } END { exit ok ? 0 : 1 }'
