"""benches/run's cases of whole `irdc deblur` processes (issue 21): a stream of frames, the first
frame's cold and warm start, a folder of images of many sizes, and big photos under a memory
cap. Each runs irdc and the peer as
processes of their own and measures them from outside: wall time, and max RSS from wait4."""

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# `irdc deblur`'s line as each image is written: `[3/8] in.png (1280x720) -> out/in.png in 0.52 s`.
IMAGE_LINE = re.compile(r"^\[(\d+)/(\d+)\] ")
# The noise lavapipe prints on a machine without a session bus.
NOISE = "XDG_RUNTIME_DIR"
ERROR_LINE = re.compile(r"(^|[\s\]])(error|[\w.]*Error):|bad_alloc")


@dataclass
class Proc:
    """A finished process: wall seconds, max RSS in bytes, exit status, its stdout, and its
    stderr's lines, each with the seconds since the start at which it arrived."""
    seconds: float
    max_rss: int
    rc: int
    stdout: str
    lines: list = field(default_factory=list)

    def error(self):
        """What the process died of: its first error line (irdc's `error: ...`, Python's
        `...Error: ...`, C++'s bad_alloc), else its last line, else its exit status."""
        text = [l.strip() for _, l in self.lines if NOISE not in l and l.strip()]
        errors = [l for l in text if ERROR_LINE.search(l)]
        return (errors or text[-1:] or [f"exit status {self.rc}"])[0]


def measured(cmd, cwd, env=None, cap_bytes=None):
    """Run a command as its own process and measure it. With `cap_bytes`, its address space is
    limited to that (RLIMIT_AS), so running out of memory fails this process, not the machine."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        p = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env, stdout=out,
                             stderr=subprocess.PIPE, text=True,
                             preexec_fn=limit if cap_bytes else None)
        lines = [(time.perf_counter() - started, l.rstrip("\n")) for l in p.stderr]
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - started
        p.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        out.seek(0)
        # ru_maxrss is in KiB on Linux.
        return Proc(seconds, usage.ru_maxrss * 1024, p.returncode, out.read(), lines)


def shown(cmd, root):
    """A command as a line to paste, with paths under the repository relative to it."""
    def one(c):
        c = str(c)
        return c[len(str(root)) + 1:] if c.startswith(f"{root}/") else c
    return " ".join(one(c) for c in cmd)


def checked(proc, cmd, what):
    if proc.rc != 0:
        sys.exit(f"{what} failed ({' '.join(str(c) for c in cmd)}):\n{proc.error()}")
    return proc


def gb(n):
    return f"{n / 1e9:.2f} GB"


def steady_fps(done):
    """Frames per second after the first frame: (K - 1) frames between the first frame's and the
    last frame's completion, so the first frame's compilation and the process's start-up are out."""
    if len(done) < 2 or done[-1] <= done[0]:
        return float("nan")
    return (len(done) - 1) / (done[-1] - done[0])


def max_level_diff(dir_a, dir_b, names):
    """The largest difference, in 8-bit levels, between same-named PNGs of two folders."""
    import numpy as np
    from PIL import Image

    def px(p):
        return np.asarray(Image.open(p).convert("RGB"), dtype=np.int16)

    return max(int(np.abs(px(dir_a / n) - px(dir_b / n)).max()) for n in names)


def size(text):
    w, h = (int(v) for v in text.split("x"))
    return w, h


class Cases:
    """The cases, given a benches/run Bench (its irdc, peers, options, rows, checks and notes)."""

    def __init__(self, b):
        self.b, self.a = b, b.a
        self.root = Path(__file__).resolve().parent.parent
        self.out = b.out

    def run(self, cmd, env=None, cap_bytes=None):
        return measured(cmd, self.root, env, cap_bytes)

    def checkpoint(self):
        """The train case's checkpoint if it ran, else one training step's at the bench's N
        (ndf 8, 32x32, no VGG19: only the generator's width matters to deblurring). Reused while
        the file exists, since its weights do not change what is timed."""
        if getattr(self.b, "checkpoint", None):
            return self.b.checkpoint
        run_dir = self.out / f"checkpoint_N{self.a.n}"
        ckpt = run_dir / "checkpoint.safetensors"
        if ckpt.exists():
            return ckpt
        data = self.out / "checkpoint_data"
        for split in ("train", "test"):
            for kind, seed in (("blur", 11), ("sharp", 12)):
                self.b.write_image(data / split / "seq" / kind / "000000.png", 32, 32, seed)
        cmd = [self.b.irdc, "train", self.b.model, "--set", f"N={self.a.n}", "--set", "ndf=8",
               "--set", "per_weight=0", "--set", "H=32", "--set", "W=32", "--data", data,
               "--out", run_dir, "--overwrite", "--steps", "1"]
        checked(self.run(cmd), cmd, "irdc train (the checkpoint)")
        return ckpt

    def frames(self, folder, k, w, h, seed):
        """K seeded frames of WxH, written once (their contents do not change the time)."""
        names = [f"{i:04d}.png" for i in range(k)]
        for i, name in enumerate(names):
            if not (folder / name).exists():
                self.b.write_image(folder / name, h, w, seed + i)
        return names

    def peer_stream(self, label, peer, ckpt, folder, out):
        """The peer's `stream` of a folder's PNGs into `out`: its command and process."""
        pcmd = peer + ["stream", "--weights", ckpt, "--input-dir", folder, "--output-dir", out]
        return pcmd, checked(self.run(pcmd), pcmd, f"peer stream of {folder.name} ({label})")

    def deblur_cmd(self, ckpt, inputs, out):
        return [self.b.irdc, "deblur", "--checkpoint", ckpt, inputs, "--out", out,
                *self.b.precision]

    # ------------------------------------------------------------------------ the cases

    def stream(self):
        a, b = self.a, self.b
        w, h = size(a.frame)
        ckpt = self.checkpoint()
        folder = self.out / f"stream_{w}x{h}_{a.frames}"  # a folder per K: irdc takes all it holds
        names = self.frames(folder, a.frames, w, h, 100)
        out_irdc = self.out / "stream_irdc"
        cmd = self.deblur_cmd(ckpt, folder, out_irdc)
        p = checked(self.run(cmd), cmd, "irdc deblur (stream)")
        done = [t for t, l in p.lines if IMAGE_LINE.match(l)]
        irdc_fps = steady_fps(done)
        b.note(f"stream {a.frames} frames {w}x{h}, irdc: {irdc_fps:.3f} frames/s after the first "
               f"(its first at {done[0]:.1f} s), whole process {p.seconds:.1f} s, max RSS "
               f"{gb(p.max_rss)}: {shown(cmd, self.root)}")
        peers = []
        for i, (label, peer) in enumerate(b.peer_cmds):
            out_peer = self.out / f"stream_peer{i}"
            pcmd, q = self.peer_stream(label, peer, ckpt, folder, out_peer)
            r = json.loads(q.stdout.strip().splitlines()[-1])
            fps = steady_fps(r["done_s"])
            peers.append((label, {"seconds": 1 / fps}))
            b.note(f"stream {a.frames} frames {w}x{h}, {label}: {fps:.3f} frames/s after the first "
                   f"(its first at {r['done_s'][0]:.1f} s), whole process {q.seconds:.1f} s, max "
                   f"RSS {gb(q.max_rss)}; irdc / {label} frames/s = {irdc_fps / fps:.2f}: "
                   f"{shown(pcmd, self.root)}")
            diff = max_level_diff(out_irdc, out_peer, names)
            self.b.checks.append((f"stream: max |irdc - peer| in 8-bit levels ({label})", diff, 1))
        b.row(f"stream {w}x{h}: s/frame after the first", 1 / irdc_fps, peers)

    def first_frame(self):
        """One frame, whole process, on empty caches (irdc's, Mesa's shader cache) and again on
        the caches the first run filled. JAX keeps no compilation cache, so both its runs are
        cold: the second says how much of its first was the machine's own file cache."""
        a, b = self.a, self.b
        w, h = size(a.frame)
        ckpt = self.checkpoint()
        folder = self.out / f"first_{w}x{h}"
        self.frames(folder, 1, w, h, 200)
        frame = folder / "0000.png"
        caches = Path(tempfile.mkdtemp(prefix="irdc-bench-caches-"))
        env = {k: v for k, v in os.environ.items() if k != "IRDC_CACHE_DIR"}
        env.update(MESA_SHADER_CACHE_DIR=str(caches / "mesa"), XDG_CACHE_HOME=str(caches / "xdg"))
        cmd = self.deblur_cmd(ckpt, frame, self.out / "first_irdc")
        irdc = [checked(self.run(cmd, env), cmd, f"irdc deblur ({start} start)")
                for start in ("cold", "warm")]
        shutil.rmtree(caches)
        line = ("env -u IRDC_CACHE_DIR MESA_SHADER_CACHE_DIR=$C/mesa XDG_CACHE_HOME=$C/xdg "
                f"{shown(cmd, self.root)} (C=$(mktemp -d); the same C twice)")
        for start, p in zip(("cold", "warm"), irdc):
            b.note(f"first frame {w}x{h} {start}, irdc: {p.seconds:.1f} s, "
                   f"max RSS {gb(p.max_rss)}: {line}")
        for label, peer in b.peer_cmds:
            pcmd = peer + ["deblur", "--weights", ckpt, "--input", frame,
                           "--output", self.out / "first_peer.png"]
            runs = [checked(self.run(pcmd), pcmd, f"peer deblur ({label})") for _ in range(2)]
            for start, p, q in zip(("cold", "warm"), irdc, runs):
                b.note(f"first frame {w}x{h} {start}, {label}: {q.seconds:.1f} s, max RSS "
                       f"{gb(q.max_rss)}: {shown(pcmd, self.root)}")
                b.row(f"first frame {w}x{h}, {start} (process)", p.seconds,
                      [(label, {"seconds": q.seconds})])

    def sizes(self):
        """--frames images of as many sizes (the largest --frame, each 16x8 pixels smaller than
        the last), one process each: irdc with kernels specialised to each size and with sizes as
        data, each on empty caches, and the peer, which compiles each shape too."""
        a, b = self.a, self.b
        w, h = size(a.frame)
        ckpt = self.checkpoint()
        folder = self.out / f"sizes_{w}x{h}_{a.frames}"
        names = [f"{i:04d}.png" for i in range(a.frames)]
        for i, name in enumerate(names):
            if not (folder / name).exists():
                b.write_image(folder / name, h - 8 * i, w - 16 * i, 400 + i)
        runs = {}
        for mode in ("specialised", "data"):
            caches = Path(tempfile.mkdtemp(prefix="irdc-bench-caches-"))
            env = {k: v for k, v in os.environ.items() if k != "IRDC_CACHE_DIR"}
            env.update(MESA_SHADER_CACHE_DIR=str(caches / "mesa"),
                       XDG_CACHE_HOME=str(caches / "xdg"))
            cmd = self.deblur_cmd(ckpt, folder, self.out / f"sizes_irdc_{mode}") + ["--sizes", mode]
            p = checked(self.run(cmd, env), cmd, f"irdc deblur (--sizes {mode})")
            shutil.rmtree(caches)
            summary = [l for _, l in p.lines if l.endswith(" pipelines compiled")]
            runs[mode] = p
            b.note(f"{a.frames} images of {a.frames} sizes ({w}x{h} down to {w - 16 * (a.frames - 1)}"
                   f"x{h - 8 * (a.frames - 1)}), irdc --sizes {mode}, empty caches: "
                   f"{p.seconds:.1f} s, max RSS {gb(p.max_rss)}, {summary[-1] if summary else '?'}: "
                   f"env -u IRDC_CACHE_DIR MESA_SHADER_CACHE_DIR=$(mktemp -d) "
                   f"XDG_CACHE_HOME=$(mktemp -d) {shown(cmd, self.root)}")
        diff = max_level_diff(self.out / "sizes_irdc_specialised", self.out / "sizes_irdc_data",
                              names)
        b.checks.append(("sizes: max |specialised - data| in 8-bit levels", diff, 1))
        peers = []
        for i, (label, peer) in enumerate(b.peer_cmds):
            out_peer = self.out / f"sizes_peer{i}"
            pcmd, q = self.peer_stream(label, peer, ckpt, folder, out_peer)
            peers.append((label, {"seconds": q.seconds}))
            b.note(f"{a.frames} images of {a.frames} sizes, {label}: {q.seconds:.1f} s, max RSS "
                   f"{gb(q.max_rss)}: {shown(pcmd, self.root)}")
            diff = max_level_diff(self.out / "sizes_irdc_data", out_peer, names)
            b.checks.append((f"sizes: max |irdc - peer| in 8-bit levels ({label})", diff, 1))
        for mode, p in runs.items():
            b.row(f"{a.frames} sizes, --sizes {mode}, cold (process)", p.seconds, peers)

    def planned(self, w, h):
        """`irdc plan`'s memory line for the generator at WxH as lavapipe runs it, or its error."""
        cmd = [self.b.irdc, "plan", self.b.model, "--set", f"N={self.a.n}", "--graph", "generator",
               "--cpu", "--input", f"blurred=1x3x{h}x{w}", *self.b.precision]
        p = self.run(cmd)
        memory = [l for l in p.stdout.splitlines() if l.startswith("memory:")]
        what = memory[0] if p.rc == 0 and memory else f"failed: {p.error()}"
        self.b.note(f"photo {w}x{h}, irdc plan: {what}: {shown(cmd, self.root)}")

    def bigphoto(self):
        """Each of --photos, one process each side under --mem-cap-gb of address space: time and
        max RSS, or what it failed of. A failure is a figure here, not an error of the bench."""
        a, b = self.a, self.b
        ckpt = self.checkpoint()
        cap = int(a.mem_cap_gb * 1e9)
        for spec in a.photos.split(","):
            w, h = size(spec.strip())
            folder = self.out / f"photo_{w}x{h}"
            self.frames(folder, 1, w, h, 300)
            photo = folder / "0000.png"
            self.planned(w, h)
            sides = [("irdc", self.deblur_cmd(ckpt, photo, self.out / f"photo_irdc_{w}x{h}"))]
            sides += [(label, peer + ["deblur", "--weights", ckpt, "--input", photo,
                                      "--output", self.out / f"photo_peer_{w}x{h}.png"])
                      for label, peer in b.peer_cmds]
            times = {}
            for label, cmd in sides:
                print(f"  photo {w}x{h}: {label} ...", file=sys.stderr, flush=True)
                p = self.run(cmd, cap_bytes=cap)
                line = f"prlimit --as={cap} {shown(cmd, self.root)}"
                if p.rc == 0:
                    times[label] = p.seconds
                    what = f"{p.seconds:.1f} s, max RSS {gb(p.max_rss)}"
                else:
                    what = (f"failed after {p.seconds:.1f} s under a {a.mem_cap_gb:g} GB address "
                            f"space cap (max RSS {gb(p.max_rss)}): {p.error()}")
                b.note(f"photo {w}x{h}, {label}: {what}: {line}")
            if "irdc" in times:
                b.row(f"photo {w}x{h} (process)", times["irdc"],
                      [(label, {"seconds": times[label]}) for label, _ in b.peer_cmds
                       if label in times])
