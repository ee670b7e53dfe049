#!/usr/bin/python3
"""Shows that tapegrad's safetensors files work outside tapegrad, both ways.

    safetensors_interop.py ST_EXPORT WORKDIR

ST_EXPORT is the tools/st_export program (built with the library). The script

 1. runs `st_export export WORKDIR`: a small CNN trained for a few steps and
    saved with tg_model_save, a batch of inputs and tapegrad's predictions;
 2. reads those files by the format alone (struct + json + numpy, no
    safetensors package), checks tapegrad's CRC-32 with zlib, runs the same
    network in numpy and compares the predictions with tapegrad's;
 3. if torch is importable, loads the weights into the equivalent torch.nn
    model (Dense weights transposed: tapegrad stores (in, units), nn.Linear
    wants (units, in)) and compares again;
 4. the reverse: writes fresh weights with a reference writer (numpy, laid out
    as the safetensors package lays out files: tensors sorted by dtype size
    and name, header padded with spaces, no CRC), has tapegrad load them with
    tg_model_load and predict, and compares with numpy; with torch, the same
    for a torch.nn model's own weights, compared with torch's predictions.

Exit status 0 when everything agrees, 1 when not, 77 (meson's "skipped")
when numpy is missing.
"""
import json
import os
import struct
import subprocess
import sys
import zlib

try:
    import numpy as np
except ImportError:
    print("numpy is not installed: skipping (apt-get install python3-numpy)")
    sys.exit(77)

DTYPES = {"F32": "<f4", "F64": "<f8"}
LAYERS = ["conv2d", "dense", "dense_1"]  # the parameterised layers of st_export's CNN


def read_safetensors(path):
    """name -> array, and the metadata; from the format's description alone."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    if "tapegrad.crc32" in meta:
        crc = zlib.crc32(body) & 0xFFFFFFFF
        if crc != int(meta["tapegrad.crc32"], 16):
            raise ValueError("%s: CRC-32 %08x, header says %s" % (path, crc, meta["tapegrad.crc32"]))
    tensors = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        arr = np.frombuffer(body[begin:end], dtype=DTYPES[e["dtype"]])
        tensors[name] = arr.reshape(e["shape"])
    return tensors, meta


def write_safetensors(path, tensors, metadata=None):
    """A reference writer: what safetensors.numpy.save_file produces."""
    names = sorted(tensors, key=lambda k: (-tensors[k].dtype.itemsize, k))
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name in names:
        a = np.ascontiguousarray(tensors[name])
        code = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64"}[a.dtype.newbyteorder("<")]
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": code, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def forward_numpy(p, x):
    """st_export's CNN in float64 numpy, from tapegrad-layout weights."""
    x = x.astype(np.float64)
    w, b = p["conv2d.weight"].astype(np.float64), p["conv2d.bias"].astype(np.float64)
    n, _, h, wd = x.shape
    oc, _, kh, kw = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    y = np.zeros((n, oc, oh, ow))
    for i in range(kh):  # cross-correlation, as every framework's conv2d
        for j in range(kw):
            y += np.einsum("nchw,oc->nohw", x[:, :, i:i + oh, j:j + ow], w[:, :, i, j])
    y = np.maximum(y + b[None, :, None, None], 0)
    y = y.reshape(n, oc, oh // 2, 2, ow // 2, 2).max(axis=(3, 5))  # MaxPooling2D 2
    y = y.reshape(n, -1)  # Flatten: C, H, W order, like torch.nn.Flatten
    y = np.maximum(y @ p["dense.weight"] + p["dense.bias"], 0)  # W (in, units)
    z = y @ p["dense_1.weight"] + p["dense_1.bias"]
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def forward_torch(p, x):
    import torch
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(36, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10), torch.nn.Softmax(dim=1))
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))
    model.load_state_dict({
        "0.weight": t(p["conv2d.weight"]), "0.bias": t(p["conv2d.bias"]),
        "4.weight": t(p["dense.weight"].T), "4.bias": t(p["dense.bias"]),
        "6.weight": t(p["dense_1.weight"].T), "6.bias": t(p["dense_1.bias"]),
    })
    with torch.no_grad():
        return model(t(x)).numpy()


def torch_model_to_file(path):
    """A torch.nn model of its own (torch's default init), saved in tapegrad's
    layout by the reference writer; returns the model."""
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(36, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10), torch.nn.Softmax(dim=1))
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    write_safetensors(path, {
        "conv2d.weight": sd["0.weight"], "conv2d.bias": sd["0.bias"],
        "dense.weight": sd["4.weight"].T, "dense.bias": sd["4.bias"],
        "dense_1.weight": sd["6.weight"].T, "dense_1.bias": sd["6.bias"]}, {"format": "pt"})
    return model


def compare(what, got, want, atol=2e-6):
    err = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
    ok = err <= atol
    print("%-44s max |diff| %.3g  %s" % (what, err, "ok" if ok else "MISMATCH (atol %g)" % atol))
    return ok


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    exe, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    subprocess.run([exe, "export", work], check=True)
    params, meta = read_safetensors(os.path.join(work, "model.safetensors"))
    x = read_safetensors(os.path.join(work, "x.safetensors"))[0]["x"]
    preds = read_safetensors(os.path.join(work, "preds.safetensors"))[0]["preds"]
    print("numpy %s read %d tensors: %s" % (np.__version__, len(params), ", ".join(
        "%s %s %s" % (k, v.dtype, tuple(v.shape)) for k, v in params.items())))
    print("metadata: %s" % json.dumps(meta, sort_keys=True))
    ok = compare("tapegrad -> numpy forward (float64)", forward_numpy(params, x), preds)
    ok &= bool(np.all(np.argmax(forward_numpy(params, x), 1) == np.argmax(preds, 1)))
    try:
        import torch
    except ImportError:
        print("torch is not installed: skipping the torch.nn comparison")
    else:
        ok &= compare("tapegrad -> torch %s nn.Sequential" % torch.__version__,
                      forward_torch(params, x), preds)

    # The reverse: weights written by the reference writer, loaded by tapegrad.
    rng = np.random.default_rng(5)
    mine = {k: (rng.standard_normal(v.shape) * 0.3).astype(np.float32) for k, v in params.items()}
    weights = os.path.join(work, "reference.safetensors")
    write_safetensors(weights, mine, {"format": "pt"})
    out = os.path.join(work, "reference_preds.safetensors")
    subprocess.run([exe, "import", weights, os.path.join(work, "x.safetensors"), out], check=True)
    theirs = read_safetensors(out)[0]["preds"]
    ok &= compare("reference writer -> tapegrad forward", theirs, forward_numpy(mine, x))
    try:
        import torch
    except ImportError:
        pass
    else:
        weights = os.path.join(work, "from_torch.safetensors")
        model = torch_model_to_file(weights)
        subprocess.run([exe, "import", weights, os.path.join(work, "x.safetensors"), out],
                       check=True)
        with torch.no_grad():
            want = model(torch.from_numpy(np.array(x))).numpy()
        ok &= compare("torch.nn weights -> tapegrad forward", read_safetensors(out)[0]["preds"],
                      want)
    print("interop: %s" % ("all predictions agree" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
