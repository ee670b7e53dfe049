#!/bin/sh
# Trains examples/mnist_bn_cnn for one short epoch (the first 2,000 training
# digits, tested on the first 1,000 test digits) and checks that evaluation
# mode, with BatchNorm's running statistics, reaches a stated test accuracy
# (the run gives about 0.91), and that the training-mode accuracies are
# printed beside it. Also: more samples than the data holds
# (of either split) is refused with the reason, before anything is trained.
# Usage: bn_cnn.sh MNIST_BN_CNN_EXE
set -eu
if err=$("$1" --train-samples 8001 --verbose 0 2>&1); then
  echo "--train-samples 8001 was accepted"; exit 1
fi
case "$err" in
  *"--train-samples 8001: the training set has 8000 images"*) ;;
  *) echo "unexpected message: $err"; exit 1 ;;
esac
if err=$("$1" --test-samples 2001 --verbose 0 2>&1); then
  echo "--test-samples 2001 was accepted"; exit 1
fi
case "$err" in
  *"--test-samples 2001: the test set has 2000 images"*) ;;
  *) echo "unexpected message: $err"; exit 1 ;;
esac
out=$("$1" --epochs 1 --train-samples 2000 --test-samples 1000 --verbose 0)
echo "$out"
THRESHOLD=0.85
echo "$out" | awk -v t="$THRESHOLD" '
  /^Test loss:/ { ok = ($NF >= t) }
  /evaluation mode \(running statistics\):/ { eval_line = 1 }
  /training mode, one image per batch:/ { one_line = 1 }
  END { if (!ok) print "eval-mode test accuracy below " t; exit ok && eval_line && one_line ? 0 : 1 }'
