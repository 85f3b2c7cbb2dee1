#!/usr/bin/env python3
"""IRD-GAN (docs/spec.md, models/ird_gan.ron) in JAX: the CPU peer that `benches/run` times irdc against.

The same network as irdc's model file, NCHW, with irdc's parameter names and layouts (conv OIHW,
transposed conv IOHW), so weights written by `irdc run --save-weights` or a training checkpoint
load as they are: generator `head_conv.weight`, `ird.3.inception.i2.conv.weight`, ...; critic
`conv1.weight`, `layer2.conv.weight`, ...; VGG19 torchvision's `features.0.weight`, ...

Subcommands (each prints one JSON line on stdout):
  forward     the generator on an input file; writes the output, times `--repeat` runs after a
              warm-up (which compiles)
  train-step  five critic steps (WGAN-GP) and one generator step (adversarial + perceptual + L1)
              with Adam (beta1 0.5, beta2 0.999), one jitted function; times `--repeat` steps
  deblur      one-shot: read a PNG, run the generator (jit included), write a PNG
  stream      a folder of PNGs through one jitted generator; when each frame was written
  critic-loss the WGAN-GP critic loss and its gradients for given inputs, to check this reference
              against `irdc grad --graph critic_loss`
"""

import argparse
import json
import sys
import time


def lazy_jax():
    """Import JAX only when a subcommand runs, so --help works without it."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    jax.config.update("jax_default_matmul_precision", "highest")
    return jax, jnp, lax


# ---------------------------------------------------------------------------- the network


def build(jax, jnp, lax):
    """The network's functions over parameter dicts named as irdc names them."""

    def conv(p, name, x, stride=1, pad=None):
        w = p[name + ".weight"]
        k = w.shape[2]
        pad = k // 2 if pad is None else pad
        y = lax.conv_general_dilated(
            x, w, (stride, stride), [(pad, pad), (pad, pad)],
            dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y + p[name + ".bias"][None, :, None, None]

    def conv_t(p, name, x, stride=2, pad=1, out_pad=1):
        # PyTorch's ConvTranspose2d: the IOHW weight, flipped, as a conv of the input dilated by
        # the stride, padded k-1-pad before and k-1-pad+out_pad after.
        w = p[name + ".weight"]
        k = w.shape[2]
        w = jnp.flip(jnp.transpose(w, (1, 0, 2, 3)), (2, 3))
        lo, hi = k - 1 - pad, k - 1 - pad + out_pad
        y = lax.conv_general_dilated(
            x, w, (1, 1), [(lo, hi), (lo, hi)], lhs_dilation=(stride, stride),
            dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y + p[name + ".bias"][None, :, None, None]

    def inorm(x, eps=1e-5):
        mean = x.mean(axis=(2, 3), keepdims=True)
        var = ((x - mean) ** 2).mean(axis=(2, 3), keepdims=True)
        return (x - mean) * lax.rsqrt(var + eps)

    relu = jax.nn.relu

    def cbr(p, name, x, stride=1):
        return relu(inorm(conv(p, name + ".conv", x, stride)))

    def reflect(x, n):
        return jnp.pad(x, ((0, 0), (0, 0), (n, n), (n, n)), mode="reflect")

    def max_pool(x, k, stride, pad):
        return lax.reduce_window(
            x, -jnp.inf, lax.max, (1, 1, k, k), (1, 1, stride, stride),
            [(0, 0), (0, 0), (pad, pad), (pad, pad)])

    def dropout(x, key, p):
        if key is None:
            return x
        keep = jax.random.bernoulli(key, 1.0 - p, x.shape)
        return jnp.where(keep, x / (1.0 - p), 0.0)

    def generator(p, x, key=None, blocks=9, drop=0.2):
        h = relu(inorm(conv(p, "head_conv", reflect(x, 3), pad=0)))
        h = cbr(p, "down1", h, 2)
        h = cbr(p, "down2", h, 2)
        for k in range(blocks):
            n = f"ird.{k}"
            b = conv(p, n + ".b", relu(inorm(h)))
            i = n + ".inception"
            i1 = cbr(p, i + ".i1", b)
            i2 = cbr(p, i + ".i2", cbr(p, i + ".i2a", b))
            i3 = cbr(p, i + ".i3", cbr(p, i + ".i3b", cbr(p, i + ".i3a", b)))
            i4 = cbr(p, i + ".i4", max_pool(b, 3, 1, 1))
            r = jnp.concatenate([i1, i2, i3, i4], axis=1) + b
            sub = None if key is None else jax.random.fold_in(key, k)
            y = dropout(conv(p, n + ".conv", r), sub, drop)
            h = jnp.concatenate([h, y], axis=1)
        h = cbr(p, "trans1", h)
        h = cbr(p, "trans2", h)
        h = relu(inorm(conv_t(p, "up1.conv", h)))
        h = relu(inorm(conv_t(p, "up2.conv", h)))
        t = jnp.tanh(conv(p, "tail_conv", reflect(h, 3), pad=0))
        return jnp.clip(x + t, -1.0, 1.0)

    def critic(p, x):
        lrelu = lambda v: jax.nn.leaky_relu(v, 0.2)  # noqa: E731
        h = lrelu(conv(p, "conv1", x, 2, 2))
        for name, stride in (("layer2", 2), ("layer3", 2), ("layer4", 1)):
            h = lrelu(inorm(conv(p, name + ".conv", h, stride, 2)))
        return conv(p, "score", h, 1, 2)

    mean = jnp.array([0.485, 0.456, 0.406])[None, :, None, None]
    std = jnp.array([0.229, 0.224, 0.225])[None, :, None, None]

    def vgg19(p, x):
        """torchvision's VGG19 features[0..=14] (conv3_3 before its ReLU) on [-1, 1] images."""
        h = ((x * 0.5 + 0.5) - mean) / std
        for i in (0, 2, "pool", 5, 7, "pool", 10, 12, 14):
            if i == "pool":
                h = max_pool(h, 2, 2, 0)
            else:
                h = conv(p, f"features.{i}", h)
                if i != 14:
                    h = relu(h)
        return h

    return generator, critic, vgg19


# ---------------------------------------------------------------------------- losses and training


def losses(jax, jnp, generator, critic, vgg19, gp_weight, per_weight, l1_weight):
    def critic_loss(cp, fake, sharp, alpha):
        wasserstein = critic(cp, fake).mean() - critic(cp, sharp).mean()
        mixed = fake + alpha * (sharp - fake)
        slope = jax.grad(lambda x: critic(cp, x).sum())(mixed)
        norm = jnp.sqrt((slope ** 2).sum(axis=(1, 2, 3)))
        return wasserstein + gp_weight * ((norm - 1.0) ** 2).mean()

    def generator_loss(gp, cp, vp, blurred, sharp, key):
        out = generator(gp, blurred, key)
        adversarial = -critic(cp, out).mean()
        loss = adversarial + l1_weight * jnp.abs(sharp - out).mean()
        if per_weight != 0:
            loss = loss + per_weight * ((vgg19(vp, out) - vgg19(vp, sharp)) ** 2).mean()
        return loss

    return critic_loss, generator_loss


def adam(jax, jnp, lr, beta1=0.5, beta2=0.999, eps=1e-8):
    """Adam, bias-corrected as torch.optim.Adam (and irdc's trainer)."""

    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return {"m": zeros, "v": zeros, "t": jnp.zeros((), jnp.float32)}

    def update(params, grads, state):
        t = state["t"] + 1
        m = jax.tree_util.tree_map(lambda m, g: beta1 * m + (1 - beta1) * g, state["m"], grads)
        v = jax.tree_util.tree_map(lambda v, g: beta2 * v + (1 - beta2) * g * g, state["v"], grads)
        c1, c2 = 1 - beta1 ** t, 1 - beta2 ** t
        params = jax.tree_util.tree_map(
            lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v)
        return params, {"m": m, "v": v, "t": t}

    return init, update


def train_step_fn(jax, jnp, net, args):
    generator, critic, vgg19 = net
    critic_loss, generator_loss = losses(
        jax, jnp, generator, critic, vgg19, args.gp_weight, args.per_weight, args.l1_weight)
    init, update = adam(jax, jnp, args.lr)

    def step(gp, cp, vp, g_state, c_state, blurred, sharp, alphas, key):
        # The critic steps reuse one batch and one G(b), with no gradient into G (docs/spec.md).
        fake = jax.lax.stop_gradient(generator(gp, blurred, jax.random.fold_in(key, 0)))
        c_losses = []
        for alpha in alphas:
            loss, grads = jax.value_and_grad(critic_loss)(cp, fake, sharp, alpha)
            cp, c_state = update(cp, grads, c_state)
            c_losses.append(loss)
        g_loss, grads = jax.value_and_grad(generator_loss)(
            gp, cp, vp, blurred, sharp, jax.random.fold_in(key, 1))
        gp, g_state = update(gp, grads, g_state)
        return gp, cp, g_state, c_state, jnp.stack(c_losses), g_loss

    return jax.jit(step), init


# ---------------------------------------------------------------------------- files


def load(path, prefix=""):
    """A safetensors file as float32 arrays; with `prefix`, only those names, prefix removed."""
    import numpy as np
    from safetensors.numpy import load_file

    out = {}
    for name, t in load_file(path).items():
        if name.startswith(prefix):
            out[name[len(prefix):]] = np.asarray(t, dtype=np.float32)
    return out


def timed(fn, repeat, block):
    """Seconds of each of `repeat` calls of fn() after one warm-up call (which compiles)."""
    block(fn())
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        block(fn())
        runs.append(time.perf_counter() - t)
    return runs


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


# ---------------------------------------------------------------------------- commands


def cmd_forward(args):
    jax, jnp, lax = lazy_jax()
    import numpy as np
    from safetensors.numpy import save_file

    generator, _, _ = build(jax, jnp, lax)
    params = {k: jnp.asarray(v) for k, v in load(args.weights).items()}
    x = jnp.asarray(load(args.input)[args.input_name])
    fwd = jax.jit(generator)
    runs = timed(lambda: fwd(params, x), args.repeat, jax.block_until_ready)
    if args.output:
        save_file({"sharp": np.asarray(fwd(params, x))}, args.output)
    return {"case": "forward", "shape": list(x.shape), "runs_s": runs, "seconds": median(runs)}


def cmd_train_step(args):
    jax, jnp, lax = lazy_jax()
    import numpy as np

    net = build(jax, jnp, lax)
    step, init = train_step_fn(jax, jnp, net, args)
    gp = {k: jnp.asarray(v) for k, v in load(args.weights, "generator.").items()}
    cp = {k: jnp.asarray(v) for k, v in load(args.weights, "critic.").items()}
    vp = {k: jnp.asarray(v) for k, v in load(args.vgg19).items()} if args.vgg19 else {}
    data = load(args.input)
    blurred, sharp = jnp.asarray(data["blurred"]), jnp.asarray(data["sharp"])
    rng = np.random.default_rng(args.seed)
    state = [gp, cp, init(gp), init(cp)]
    key = jax.random.PRNGKey(args.seed)
    losses_seen = []

    def one():
        alphas = jnp.asarray(rng.random((args.critic_steps, blurred.shape[0], 1, 1, 1), np.float32))
        g, c, gs, cs, c_losses, g_loss = step(
            state[0], state[1], vp, state[2], state[3], blurred, sharp, alphas, key)
        state[:] = [g, c, gs, cs]
        losses_seen.append((c_losses, g_loss))
        return g_loss

    runs = timed(one, args.repeat, jax.block_until_ready)
    finite = all(bool(jnp.isfinite(c).all() and jnp.isfinite(g)) for c, g in losses_seen)
    return {"case": "train-step", "shape": list(blurred.shape), "runs_s": runs,
            "seconds": median(runs), "losses_finite": finite,
            "last_generator_loss": float(losses_seen[-1][1])}


def read_png(jnp, path):
    """A PNG as the generator's input: 1x3xHxW in [-1, 1], reflect-padded on the bottom and right
    to the generator's multiple of 4 (as `irdc deblur` does); with its H and W to crop back to."""
    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    x = jnp.asarray(img.transpose(2, 0, 1)[None] / 127.5 - 1.0)
    h, w = x.shape[2], x.shape[3]
    xp = jnp.pad(x, ((0, 0), (0, 0), (0, (-h) % 4), (0, (-w) % 4)), mode="reflect")
    return xp, h, w


def write_png(y, h, w, path):
    """The generator's output, cropped to HxW, as an 8-bit PNG."""
    import numpy as np
    from PIL import Image

    y = np.asarray(y)[0, :, :h, :w]
    out = np.clip(np.rint((y.transpose(1, 2, 0) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    Image.fromarray(out).save(path)


def cmd_deblur(args):
    started = time.perf_counter()
    jax, jnp, lax = lazy_jax()

    generator, _, _ = build(jax, jnp, lax)
    params = {k: jnp.asarray(v) for k, v in load(args.weights, args.prefix).items()}
    xp, h, w = read_png(jnp, args.input)
    write_png(jax.jit(generator)(params, xp), h, w, args.output)
    return {"case": "deblur", "shape": [1, 3, h, w], "seconds": time.perf_counter() - started}


def cmd_stream(args):
    """Every PNG of a folder in name order, one after another through one jitted generator: the
    first frame compiles it. Each frame's time counts reading, conversion, the forward and
    writing; `done_s` is when each frame was written, from the start of the first."""
    jax, jnp, lax = lazy_jax()
    from pathlib import Path

    generator, _, _ = build(jax, jnp, lax)
    params = {k: jnp.asarray(v) for k, v in load(args.weights, args.prefix).items()}
    fwd = jax.jit(generator)
    frames = sorted(Path(args.input_dir).glob("*.png"))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    started, done = time.perf_counter(), []
    for f in frames:
        xp, h, w = read_png(jnp, f)
        write_png(fwd(params, xp), h, w, out / f.name)
        done.append(time.perf_counter() - started)
    return {"case": "stream", "frames": len(frames), "done_s": done, "seconds": done[-1]}


def cmd_critic_loss(args):
    jax, jnp, lax = lazy_jax()
    import numpy as np
    from safetensors.numpy import save_file

    generator, critic, vgg19 = build(jax, jnp, lax)
    critic_loss, _ = losses(jax, jnp, generator, critic, vgg19, args.gp_weight, 0.0, 0.0)
    cp = {k: jnp.asarray(v) for k, v in load(args.weights, "critic.").items()}
    d = {k: jnp.asarray(v) for k, v in load(args.input).items()}
    loss, grads = jax.value_and_grad(critic_loss)(cp, d["fake"], d["sharp"], d["alpha"])
    out = {"loss": np.asarray(loss).reshape(())}
    out.update({"critic." + k: np.asarray(v) for k, v in grads.items()})
    save_file(out, args.output)
    return {"case": "critic-loss", "loss": float(loss)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    f = sub.add_parser("forward", help="time the generator forward")
    f.add_argument("--weights", required=True, help="generator parameters (irdc's names)")
    f.add_argument("--input", required=True, help="safetensors holding the input")
    f.add_argument("--input-name", default="blurred")
    f.add_argument("--output", help="write the output here (tensor `sharp`)")
    f.add_argument("--repeat", type=int, default=3)
    f.set_defaults(run=cmd_forward)

    t = sub.add_parser("train-step", help="time a training step (5 critic + 1 generator step)")
    t.add_argument("--weights", required=True,
                   help="generator.* and critic.* parameters (an irdc training checkpoint)")
    t.add_argument("--vgg19", help="VGG19 features (torchvision names); needed if --per-weight != 0")
    t.add_argument("--input", required=True, help="safetensors holding `blurred` and `sharp`")
    t.add_argument("--repeat", type=int, default=3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--critic-steps", type=int, default=5)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--gp-weight", type=float, default=10.0)
    t.add_argument("--per-weight", type=float, default=100.0)
    t.add_argument("--l1-weight", type=float, default=170.0)
    t.set_defaults(run=cmd_train_step)

    d = sub.add_parser("deblur", help="one-shot deblur of a PNG (jit included)")
    d.add_argument("--weights", required=True)
    d.add_argument("--prefix", default="generator.", help="name prefix of the generator's tensors")
    d.add_argument("--input", required=True)
    d.add_argument("--output", required=True)
    d.set_defaults(run=cmd_deblur)

    st = sub.add_parser("stream", help="deblur a folder's PNGs through one jitted generator")
    st.add_argument("--weights", required=True)
    st.add_argument("--prefix", default="generator.", help="name prefix of the generator's tensors")
    st.add_argument("--input-dir", required=True)
    st.add_argument("--output-dir", required=True)
    st.set_defaults(run=cmd_stream)

    c = sub.add_parser("critic-loss", help="the critic loss and its gradients, for checking")
    c.add_argument("--weights", required=True, help="critic.* parameters")
    c.add_argument("--input", required=True, help="safetensors holding fake, sharp, alpha")
    c.add_argument("--output", required=True)
    c.add_argument("--gp-weight", type=float, default=10.0)
    c.set_defaults(run=cmd_critic_loss)

    args = ap.parse_args(argv)
    if args.command == "train-step" and args.per_weight != 0 and not args.vgg19:
        ap.error("train-step: --per-weight is not 0, so --vgg19 FILE is needed")
    print(json.dumps(args.run(args)))


if __name__ == "__main__":
    sys.exit(main())
