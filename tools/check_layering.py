#!/usr/bin/env python3
"""check_layering.py - fails when a lib/ folder calls a folder above it.

The library is layered (docs/design.md): each folder may call only folders of
a lower rank, plus its own. The one exception is the autograd engine, which
may call exactly the ops declared in lib/autograd/engine_ops.h. The calls are
read from `nm` of the static library, whose object files are named after
their source path (lib_ops_unary.c.o), so the check sees what the linker
sees, whatever the headers say.

usage: check_layering.py LIBTAPEGRAD.a ENGINE_OPS_H
       check_layering.py --self-test ENGINE_OPS_H
"""
import re
import subprocess
import sys

# Lower rank = lower layer. Folders of one rank may not call each other.
RANKS = {
    "core": 0,
    "thread": 1,
    "kernels": 2,
    "tensor": 3,
    "autograd": 4,
    "ops": 5,
    "gradcheck": 6, "nn": 6, "optim": 6,
    "io": 7,
    "train": 8,
}


def folder_of(obj):
    m = re.match(r"lib_([a-z]+)_", obj)
    return m.group(1) if m else None


def engine_allowed(header):
    with open(header) as f:
        return set(re.findall(r"\b(tg_\w+)\s*\(", f.read()))


def violations(nm_lines, allowed):
    defined, used = {}, []
    for line in nm_lines:
        # archive:object:  value type name   or   archive:object:  U name
        m = re.match(r"^[^:]*:([^:]+):\s*(?:[0-9a-fA-F]+\s+)?([A-Za-z])\s+(\S+)$", line.strip())
        if not m:
            continue
        obj, kind, sym = m.groups()
        folder = folder_of(obj)
        if folder is None:
            continue
        if kind == "U":
            used.append((folder, obj, sym))
        elif kind.isupper():
            defined[sym] = folder
    bad = []
    for folder, obj, sym in used:
        home = defined.get(sym)
        if home is None or home == folder:
            continue
        if folder not in RANKS or home not in RANKS:
            bad.append(f"{obj}: {sym} from lib/{home}: folder missing from RANKS")
            continue
        if folder == "autograd" and home == "ops" and sym in allowed:
            continue
        if RANKS[home] >= RANKS[folder]:
            bad.append(f"{obj} (lib/{folder}) calls {sym} of lib/{home}, which is not below it")
    return bad


def self_test(header):
    allowed = engine_allowed(header)
    good = ["libtapegrad.a:lib_ops_unary.c.o:0000000000000000 T tg_relu",
            "libtapegrad.a:lib_autograd_tape.c.o:0000000000000010 T tg__apply",
            "libtapegrad.a:lib_ops_unary.c.o:                 U tg__apply",
            "libtapegrad.a:lib_ops_reduce.c.o:0000000000000000 T tg_sum",
            "libtapegrad.a:lib_autograd_sum_to.c.o:                 U tg_sum"]
    upward = good + ["libtapegrad.a:lib_tensor_tensor.c.o:                 U tg_relu"]
    engine_extra = good + ["libtapegrad.a:lib_autograd_backward.c.o:                 U tg_relu"]
    assert "tg_sum" in allowed and "tg_relu" not in allowed, allowed
    assert violations(good, allowed) == []
    assert len(violations(upward, allowed)) == 1
    assert len(violations(engine_extra, allowed)) == 1
    print("self-test: an upward call and an op outside engine_ops.h are both caught")
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        return self_test(argv[2])
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    out = subprocess.run(["nm", "-A", argv[1]], check=True, capture_output=True, text=True)
    bad = violations(out.stdout.splitlines(), engine_allowed(argv[2]))
    for b in bad:
        print(b)
    n_objs = len({l.split(":")[1] for l in out.stdout.splitlines() if l.count(":") >= 2})
    print(f"{len(bad)} upward references in {n_objs} objects")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
