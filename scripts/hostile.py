#!/usr/bin/env python3
"""Runs the release binary on hostile and careless inputs and prints a Markdown table: exit code, peak RSS of
the process (from wait4), wall time and the first line of its message. Fails (exit 1) on a panic (exit 101), a
timeout (hang) or a peak above 300 MB.

    python3 scripts/hostile.py [BIN] [DATA_ROOT]   # defaults: target/release/foolmap ../shared/data

Needs Python 3 with Pillow; the pickle cases use only the standard library.
"""
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/foolmap")
ROOT = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "../shared/data")
CAP_MB = 300
TIMEOUT = 60

from PIL import Image  # noqa: E402

T = tempfile.mkdtemp(prefix="foolmap-hostile-")


def p(name):
    return os.path.join(T, name)


def write(name, data):
    with open(p(name), "wb") as f:
        f.write(data)
    return p(name)


def png(name, w, h, mode="RGB"):
    Image.new(mode, (w, h)).save(p(name))
    return p(name)


def png_with_dims(name, w, h):
    """A valid 1x1 PNG whose IHDR claims w x h (CRC fixed), so the header lies."""
    import zlib
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    b = bytearray(buf.getvalue())
    b[16:24] = struct.pack(">II", w, h)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
    return write(name, bytes(b))


def safetensors(name, tensors, header_extra=None, raw_header=None):
    """tensors: {name: (dtype, shape, bytes)}"""
    header, data, off = {}, b"", 0
    for k, (dt, shape, blob) in tensors.items():
        header[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(blob)]}
        data += blob
        off += len(blob)
    if header_extra:
        header.update(header_extra)
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    return write(name, struct.pack("<Q", len(h)) + h + data)


class Global:
    """A pickle GLOBAL opcode for module.name (never executed by foolmap)."""

    def __init__(self, module, name, arg):
        self.module, self.name, self.arg = module, name, arg

    def __reduce__(self):
        return (_Fn(self.module, self.name), (self.arg,))


class _Fn:
    def __init__(self, module, name):
        self.__module__, self.__qualname__ = module, name

    def __call__(self, *a):
        pass


def evil_pickle(module, name):
    out = io.BytesIO()

    class P(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, Global):
                return (eval_target, (obj.module, obj.name, obj.arg))
            return NotImplemented

    # Hand-written protocol-2 pickle: GLOBAL module name, arg, TUPLE1, REDUCE.
    body = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n"
    body += b"X" + struct.pack("<I", 8) + b"touch /x" + b"\x85R."
    return body


def eval_target(*a):
    pass


def th_legacy(name, payload):
    # A legacy torch.save starts with the magic number pickle; foolmap must refuse the GLOBAL before any call.
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    return write(name, magic + payload)


def pth_zip(name, payload):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")
    return write(name, buf.getvalue())


def toml(name, text):
    return write(name, text.encode())


CASES = []


def case(what, args, env=None):
    CASES.append((what, args, env))


def main():
    img_ok = png("ok.png", 32, 32)
    case("image: 1 x 12,000 PNG (aspect 12,000:1) → predict squeezenet", ["predict", "--arch", "squeezenet1_0", png("thin.png", 12000, 1)])
    case("image: 1x1 PNG whose header claims 100,000 x 100,000", ["predict", "--arch", "resnet20", png_with_dims("liar.png", 100000, 100000)])
    case("image: 1x1 PNG whose header claims 8,000 x 8,000 (64 Mpx)", ["predict", "--arch", "resnet20", png_with_dims("big.png", 8000, 8000)])
    case("image: truncated PNG (half the bytes)", ["predict", "--arch", "resnet20", write("trunc.png", open(img_ok, "rb").read()[:40])])
    case("image: empty file", ["predict", "--arch", "resnet20", write("empty.png", b"")])
    case("image: text named .png", ["predict", "--arch", "resnet20", write("text.png", b"hello, not an image\n")])
    gif = p("anim.gif")
    Image.new("RGB", (8, 8)).save(gif)
    case("image: GIF (unsupported format)", ["predict", "--arch", "resnet20", gif])
    case("image: 16-bit grayscale PNG", ["predict", "--arch", "resnet20", png("g16.png", 32, 32, "I;16")])
    cmyk = p("cmyk.jpg")
    Image.new("CMYK", (40, 30)).save(cmyk)
    case("image: CMYK JPEG", ["predict", "--arch", "resnet20", cmyk])
    os.mkdir(p("dir.png"))
    case("image: a folder named dir.png", ["predict", "--arch", "resnet20", p("dir.png")])
    case("image: missing file", ["predict", "--arch", "resnet20", p("nothere.png")])
    case("predict --top 0", ["predict", "--arch", "resnet20", "--top", "0", img_ok])

    d = p("data")
    os.makedirs(os.path.join(d, "cat"))
    Image.new("RGB", (32, 32)).save(os.path.join(d, "cat", "a.png"))
    os.mkfifo(os.path.join(d, "cat", "fifo.png"))
    case("data folder with a FIFO named fifo.png → accuracy", ["accuracy", "--arch", "resnet20", "--data", d])
    case("accuracy --limit 0", ["accuracy", "--arch", "resnet20", "--limit", "0"])
    case("accuracy on a missing folder", ["accuracy", "--arch", "resnet20", "--data", p("nodata")])

    w = ["predict", "--arch", "resnet20", "--weights"]
    case("weights: empty file", w + [write("e.safetensors", b""), img_ok])
    case("weights: random bytes", w + [write("r.safetensors", os.urandom(4096)), img_ok])
    case("weights: safetensors header length 2^63", w + [write("h.safetensors", struct.pack("<Q", 1 << 63) + b"{}"), img_ok])
    case("weights: header offsets beyond the file", w + [safetensors("o.safetensors", {}, {"conv1.weight": {"dtype": "F32", "shape": [16, 3, 3, 3], "data_offsets": [0, 1 << 40]}}), img_ok])
    case("weights: header not JSON", w + [safetensors("j.safetensors", {}, raw_header=b"{not json"), img_ok])
    case("weights: shape x dtype != byte length", w + [safetensors("s.safetensors", {"conv1.weight": ("F32", [16, 3, 3, 3], b"\0" * 16)}), img_ok])
    case("weights: tensors of another model (tiny)", w + [safetensors("t.safetensors", {"x": ("F32", [2], b"\0" * 8)}), img_ok])
    case("weights: ResNet-32 file for ResNet-20", w + [os.path.join(ROOT, "weights/resnet32_cifar10.safetensors"), img_ok])
    case("weights: legacy pickle calling os.system", w + [th_legacy("evil.th", evil_pickle("os", "system")), img_ok])
    case("weights: legacy pickle calling posix.system", w + [th_legacy("evil2.th", evil_pickle("posix", "system")), img_ok])
    case("weights: zip .pth calling builtins.eval", w + [pth_zip("evil.pth", evil_pickle("builtins", "eval")), img_ok])
    case("weights: zip .pth with a truncated pickle", w + [pth_zip("cut.pth", b"\x80\x02}q\x00(X"), img_ok])
    case("weights: a folder", w + [T, img_ok])

    f = ["fool", "--quiet", "--steps", "1", "--batch-size", "2", "--out", p("run")]
    case("config: unknown field", ["fool", "--config", toml("u.toml", 'arch = "resnet20"\nsteppes = 3\n')])
    case("config: wrong type", ["fool", "--config", toml("w.toml", 'lambda = "ten"\n')])
    case("config: not TOML", ["fool", "--config", toml("n.toml", "lambda = = 3\n[[\n")])
    case("config: steps = 0", ["fool", "--config", toml("z.toml", "steps = 0\n")])
    case("config: negative learning rate", ["fool", "--config", toml("lr.toml", "lr = -1e-4\n")])
    case("config: lambda = nan", ["fool", "--config", toml("nan.toml", "lambda = nan\n")])
    case("config: c1 = 50 for CIFAR-10", ["fool", "--config", toml("c.toml", 'fooling = "active"\nc1 = 50\n')])
    case("config: train_only an unknown module", ["fool", "--config", toml("m.toml", 'train_only = ["layer9"]\n')])
    case("flag: --steps 18446744073709551615 --batch-size 18446744073709551615", ["fool", "--steps", "18446744073709551615", "--batch-size", "18446744073709551615", "--out", p("r2")])
    case("flag: --then 5:1 (malformed phase)", ["fool", "--then", "5:1", "--out", p("r3")])
    case("flag: phases not increasing", ["fool", "--then", "5:1:1e-4", "--then", "3:1:1e-4", "--out", p("r4")])
    case("flag: unknown fooling type", ["fool", "--fooling", "frame", "--out", p("r5")])
    case("run: one step (reference)", f)
    case("run: the same --out again without --resume", f)
    case("run: --resume of a folder without checkpoint", ["fool", "--resume", "--out", p("r6")])
    case("eval: missing fooled weights", ["eval", "--fooled", p("nothere.safetensors")])
    # A copy: eval appends to evaluations.jsonl beside the weights, and the data root is not ours to write.
    sq = p("squeezenet_copy.safetensors")
    shutil.copy(os.path.join(ROOT, "weights/squeezenet1_0_imagenet.safetensors"), sq)
    case("eval --split report on an ImageNet model (the ImageNet samples' report half)", ["eval", "--arch", "squeezenet1_0", "--fooled", sq, "--split", "report", "--limit", "1"])
    case("table: config with steps not a multiple of keep_every", ["table", "--config", toml("t.toml", 'name="t"\narch="resnet20"\nruns="r"\nresults="s"\nseeds=[1]\nselection_images=1\nreport_interpreters=["grad_cam"]\n[recipe]\nsteps=5\nkeep_every=2\n[[cells]]\nfooling="location"\ninterpreter="grad_cam"\n')])
    case("table: unknown interpreter", ["table", "--config", toml("t2.toml", 'name="t"\narch="resnet20"\nruns="r"\nresults="s"\nseeds=[1]\nselection_images=1\nreport_interpreters=["gradcamm"]\n[recipe]\nsteps=2\nkeep_every=2\n[[cells]]\nfooling="location"\ninterpreter="grad_cam"\n')])
    case("export-web of a file that is not a fooled run", ["export-web", "--fooled", img_ok, "--out", p("dist")])
    case("data fetch with a plain-HTTP base URL", ["data", "fetch", "--dest", p("fetched")], {"FOOLMAP_FETCH_BASE": "http://example.org"})

    rows, bad = [], False
    for i, (what, args, env) in enumerate(CASES, 1):
        e = dict(os.environ, **(env or {}))
        t0 = time.time()
        proc = subprocess.Popen([BIN, "--data-root", ROOT] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, cwd=T)
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            code = "timeout"
        # Peak RSS of that child: ru_maxrss of RUSAGE_CHILDREN grows monotonically, so take it per child via wait4
        # on a re-run would double the cost; /proc is gone after exit. Use resource snapshots instead.
        rss = peak_rss(proc)
        secs = time.time() - t0
        msg = (err.decode(errors="replace").strip().splitlines() or out.decode(errors="replace").strip().splitlines() or [""])
        first = next((l for l in msg if l.strip()), "")[:160].replace("|", "\\|").replace(T, "$T")
        over = rss > CAP_MB
        bad |= code in (101, "timeout") or over
        rows.append(f"| {i} | {what} | {code} | {rss:.0f} | {secs:.1f} | {first} |")
    print("| # | input | exit | peak RSS (MB) | s | message (first line) |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n{len(CASES)} inputs; panics (exit 101): {sum('| 101 |' in r for r in rows)}; "
          f"timeouts: {sum('| timeout |' in r for r in rows)}; above {CAP_MB} MB: "
          f"{sum(float(r.split('|')[4]) > CAP_MB for r in rows)}")
    sys.exit(1 if bad else 0)


_RSS = {}


def peak_rss(proc):
    return _RSS.get(proc.pid, 0.0)


# Popen.wait reaps the child; intercept it to read the child's own rusage with os.wait4.
_orig_try_wait = subprocess.Popen._try_wait


def _try_wait(self, wait_flags):
    try:
        pid, sts, ru = os.wait4(self.pid, wait_flags)
    except ChildProcessError:
        pid, sts = self.pid, 0
    else:
        if pid == self.pid:
            _RSS[pid] = ru.ru_maxrss / 1024.0
    return (pid, sts)


subprocess.Popen._try_wait = _try_wait

if __name__ == "__main__":
    main()
