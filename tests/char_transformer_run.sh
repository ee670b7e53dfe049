#!/bin/sh
# A short char_transformer run on the shipped text (found next to the program),
# saved, then sampled from the saved model in a second process: the same
# validation loss and the same text both times.
# Usage: char_transformer_run.sh EXE SCRATCH_FILE
set -eu
rm -f "$2"
small="--context 16 --width 16 --heads 2 --blocks 1 --sample 40"
first=$("$1" --epochs 1 --steps 5 --batch 4 $small --save "$2")
echo "$first"
again=$("$1" --load "$2" $small)
echo "$again"
rm -f "$2"
tail_of() { echo "$1" | sed -n '/^validation loss/,$p'; }
[ "$(tail_of "$first" | grep -v '^saved')" = "$(tail_of "$again")" ]
