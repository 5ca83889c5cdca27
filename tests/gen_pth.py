#!/usr/bin/env python3
"""Writes the small PyTorch-format test checkpoints in tests/data (run once; outputs committed).

No PyTorch is available where foolmap is developed, so this writes the two `torch.save` container
formats byte for byte as torch does, with Python's own pickle:
  * tiny_resnet.pth         the zip format of torch >= 1.6 (archive/data.pkl + archive/data/<key>)
  * tiny_resnet_legacy.th   the legacy pre-1.6 stream (magic, protocol, sys_info, pickle, keys,
                            raw storages), nested as {'state_dict': {'module.<key>': tensor}, ...}
                            like akamaster's checkpoints
  * tiny_resnet.safetensors the same tensors, for comparison
The tensors are those of foolmap's `cifar_resnet(n=1, width=4)` (keys as in the data README),
drawn from a fixed seed, plus a `num_batches_tracked` int64 buffer per BatchNorm.
"""
import collections, io, json, pickle, random, struct, sys, types, zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data"


# Stand-ins registered under torch's names so that pickle writes the same GLOBAL opcodes as torch.
_torch, _utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
FloatStorage = type("FloatStorage", (), {"__module__": "torch"})
LongStorage = type("LongStorage", (), {"__module__": "torch"})


def _rebuild_tensor_v2(*args):
    raise RuntimeError("stand-in")


_rebuild_tensor_v2.__module__ = "torch._utils"
_torch.FloatStorage, _torch.LongStorage, _torch._utils = FloatStorage, LongStorage, _utils
_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
sys.modules.setdefault("torch", _torch)
sys.modules.setdefault("torch._utils", _utils)


class Tensor:
    def __init__(self, key, shape, values, long=False):
        self.key, self.shape, self.values, self.long = key, shape, values, long

    def __reduce_ex__(self, protocol):
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        return (_rebuild_tensor_v2, (StorageRef(self), 0, tuple(self.shape), tuple(stride), False, collections.OrderedDict()))


class StorageRef:
    def __init__(self, t):
        self.t = t


def tensors():
    rng = random.Random(1234)
    out = collections.OrderedDict()

    def add(k, shape, scale=0.3):
        n = 1
        for d in shape:
            n *= d
        out[k] = Tensor(k, shape, [rng.gauss(0, scale) for _ in range(n)])

    def bn(p, c):
        add(p + ".weight", [c])
        add(p + ".bias", [c])
        add(p + ".running_mean", [c], 0.1)
        out[p + ".running_var"] = Tensor(p + ".running_var", [c], [rng.uniform(0.5, 1.5) for _ in range(c)])
        out[p + ".num_batches_tracked"] = Tensor(p + ".num_batches_tracked", [], [7], long=True)

    w = 4
    add("conv1.weight", [w, 3, 3, 3])
    bn("bn1", w)
    cin = w
    for l in range(3):
        planes = w << l
        name = f"layer{l + 1}.0"
        add(name + ".conv1.weight", [planes, cin, 3, 3])
        bn(name + ".bn1", planes)
        add(name + ".conv2.weight", [planes, planes, 3, 3])
        bn(name + ".bn2", planes)
        cin = planes
    add("linear.weight", [10, cin])
    add("linear.bias", [10])
    return out


def raw(t):
    return struct.pack("<%d%s" % (len(t.values), "q" if t.long else "f"), *t.values)


def dump(obj, persistent):
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=2)
    if persistent is not None:
        p.persistent_id = persistent
    p.dump(obj)
    return buf.getvalue()


def write_zip(ts, path):
    keys = {}

    def pid(obj):
        if isinstance(obj, StorageRef):
            key = str(len(keys))
            keys[key] = obj.t
            return ("storage", LongStorage if obj.t.long else FloatStorage, key, "cpu", len(obj.t.values))
        return None

    data = dump(ts, pid)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data)
        z.writestr("archive/byteorder", "little")
        for k, t in keys.items():
            z.writestr(f"archive/data/{k}", raw(t))
        z.writestr("archive/version", "3\n")


def write_legacy(ts, path):
    keys = collections.OrderedDict()

    def pid(obj):
        if isinstance(obj, StorageRef):
            key = str(100 + len(keys))
            keys[key] = obj.t
            return ("storage", LongStorage if obj.t.long else FloatStorage, key, "cpu", len(obj.t.values), None)
        return None

    nested = {"best_prec1": 91.73, "state_dict": collections.OrderedDict(("module." + k, v) for k, v in ts.items())}
    out = io.BytesIO()
    out.write(dump(0x1950A86A20F9469CFC6C, None))
    out.write(dump(1001, None))
    out.write(dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, None))
    out.write(dump(nested, pid))
    out.write(dump(sorted(keys), None))
    for k in sorted(keys):
        t = keys[k]
        out.write(struct.pack("<q", len(t.values)))
        out.write(raw(t))
    path.write_bytes(out.getvalue())


def write_safetensors(ts, path):
    header, blobs, off = {}, [], 0
    for k, t in ts.items():
        if t.long:
            continue
        b = raw(t)
        header[k] = {"dtype": "F32", "shape": t.shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    ts = tensors()
    write_zip(ts, OUT / "tiny_resnet.pth")
    write_legacy(ts, OUT / "tiny_resnet_legacy.th")
    write_safetensors(ts, OUT / "tiny_resnet.safetensors")
    print("wrote", *sorted(p.name for p in OUT.iterdir()), file=sys.stderr)
