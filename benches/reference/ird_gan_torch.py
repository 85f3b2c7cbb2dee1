#!/usr/bin/env python3
"""IRD-GAN (docs/spec.md, models/ird_gan.ron) in PyTorch: the GPU peer that `benches/run --gpu` times
irdc against on an NVIDIA machine (it runs on the CPU too, for checking).

The same network as irdc's model file and as ird_gan_jax.py, with irdc's parameter names and
layouts, so irdc's weight files load by name. Subcommands print one JSON line on stdout:
  forward     the generator on an input file; writes the output, times `--repeat` runs after a
              warm-up, with the device synchronised around each
  train-step  five critic steps (WGAN-GP) and one generator step (adversarial + perceptual + L1)
              with Adam (beta1 0.5, beta2 0.999); times `--repeat` steps
  deblur      one-shot: read a PNG, run the generator, write a PNG (start-up included)
`--tf32` allows TF32 matmuls and convolutions; `--amp` runs under bfloat16 autocast. Without them
everything is float32 with TF32 off (the row comparable to irdc's float32).
"""

import argparse
import json
import sys
import time


# ---------------------------------------------------------------------------- the network


def build(torch):
    F = torch.nn.functional

    def conv(p, name, x, stride=1, pad=None):
        w = p[name + ".weight"]
        pad = w.shape[2] // 2 if pad is None else pad
        return F.conv2d(x, w, p[name + ".bias"], stride, pad)

    def conv_t(p, name, x):
        # ConvT 3x3 stride 2 pad 1 output-pad 1, weight IOHW as irdc stores it (docs/spec.md step 5).
        return F.conv_transpose2d(x, p[name + ".weight"], p[name + ".bias"], 2, 1, 1)

    def inorm(x):
        return F.instance_norm(x, eps=1e-5)  # biased variance, no affine, instance statistics

    def cbr(p, name, x, stride=1):
        return F.relu(inorm(conv(p, name + ".conv", x, stride)))

    def generator(p, x, training=False, blocks=9, drop=0.2):
        h = F.relu(inorm(conv(p, "head_conv", F.pad(x, (3, 3, 3, 3), mode="reflect"), pad=0)))
        h = cbr(p, "down1", h, 2)
        h = cbr(p, "down2", h, 2)
        for k in range(blocks):
            n = f"ird.{k}"
            b = conv(p, n + ".b", F.relu(inorm(h)))
            i = n + ".inception"
            i1 = cbr(p, i + ".i1", b)
            i2 = cbr(p, i + ".i2", cbr(p, i + ".i2a", b))
            i3 = cbr(p, i + ".i3", cbr(p, i + ".i3b", cbr(p, i + ".i3a", b)))
            i4 = cbr(p, i + ".i4", F.max_pool2d(b, 3, 1, 1))
            r = torch.cat([i1, i2, i3, i4], 1) + b
            y = F.dropout(conv(p, n + ".conv", r), drop, training)
            h = torch.cat([h, y], 1)
        h = cbr(p, "trans1", h)
        h = cbr(p, "trans2", h)
        h = F.relu(inorm(conv_t(p, "up1.conv", h)))
        h = F.relu(inorm(conv_t(p, "up2.conv", h)))
        t = torch.tanh(conv(p, "tail_conv", F.pad(h, (3, 3, 3, 3), mode="reflect"), pad=0))
        return torch.clamp(x + t, -1.0, 1.0)

    def critic(p, x):
        h = F.leaky_relu(conv(p, "conv1", x, 2, 2), 0.2)
        for name, stride in (("layer2", 2), ("layer3", 2), ("layer4", 1)):
            h = F.leaky_relu(inorm(conv(p, name + ".conv", h, stride, 2)), 0.2)
        return conv(p, "score", h, 1, 2)

    def vgg19(p, x):
        """torchvision's VGG19 features[0..=14] (conv3_3 before its ReLU) on [-1, 1] images."""
        mean = torch.tensor([0.485, 0.456, 0.406], device=x.device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=x.device).view(1, 3, 1, 1)
        h = ((x * 0.5 + 0.5) - mean) / std
        for i in (0, 2, "pool", 5, 7, "pool", 10, 12, 14):
            if i == "pool":
                h = F.max_pool2d(h, 2)
            else:
                h = conv(p, f"features.{i}", h)
                if i != 14:
                    h = F.relu(h)
        return h

    return generator, critic, vgg19


# ---------------------------------------------------------------------------- files and timing


def load(torch, path, device, prefix=""):
    from safetensors.torch import load_file

    return {n[len(prefix):]: t.to(device=device, dtype=torch.float32)
            for n, t in load_file(path).items() if n.startswith(prefix)}


def setup(args):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = True
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return torch, device


def autocast(torch, device, amp):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)


def timed(torch, device, fn, repeat):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()
    sync()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        runs.append(time.perf_counter() - t)
    return runs


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def row(args, device, case, shape, runs):
    mode = "fp32" + (" tf32" if args.tf32 else "") + (" amp-bf16" if args.amp else "")
    return {"case": case, "device": str(device), "mode": mode, "shape": shape,
            "runs_s": runs, "seconds": median(runs)}


# ---------------------------------------------------------------------------- commands


def cmd_forward(args):
    torch, device = setup(args)
    from safetensors.torch import save_file

    generator, _, _ = build(torch)
    p = load(torch, args.weights, device)
    x = load(torch, args.input, device)[args.input_name]
    out = {}

    @torch.no_grad()
    def fwd():
        with autocast(torch, device, args.amp):
            out["y"] = generator(p, x)

    runs = timed(torch, device, fwd, args.repeat)
    if args.output:
        save_file({"sharp": out["y"].float().cpu().contiguous()}, args.output)
    return row(args, device, "forward", list(x.shape), runs)


def cmd_train_step(args):
    torch, device = setup(args)
    generator, critic, vgg19 = build(torch)
    gp = load(torch, args.weights, device, "generator.")
    cp = load(torch, args.weights, device, "critic.")
    vp = load(torch, args.vgg19, device) if args.vgg19 else {}
    for t in list(gp.values()) + list(cp.values()):
        t.requires_grad_(True)
    data = load(torch, args.input, device)
    blurred, sharp = data["blurred"], data["sharp"]
    adam = lambda ps: torch.optim.Adam(ps, lr=args.lr, betas=(0.5, 0.999), eps=1e-8)  # noqa: E731
    g_opt, c_opt = adam(list(gp.values())), adam(list(cp.values()))
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    losses = []

    def critic_loss(fake):
        alpha = torch.rand((blurred.shape[0], 1, 1, 1), generator=gen).to(device)
        wasserstein = critic(cp, fake).mean() - critic(cp, sharp).mean()
        mixed = (fake + alpha * (sharp - fake)).requires_grad_(True)
        (slope,) = torch.autograd.grad(critic(cp, mixed).sum(), mixed, create_graph=True)
        norm = slope.flatten(1).norm(dim=1)
        return wasserstein + args.gp_weight * ((norm - 1) ** 2).mean()

    def step():
        with autocast(torch, device, args.amp):
            with torch.no_grad():  # the critic steps reuse one G(b), no gradient into G
                fake = generator(gp, blurred, training=True)
            for _ in range(args.critic_steps):
                c_opt.zero_grad(set_to_none=True)
                loss = critic_loss(fake)
                loss.backward()
                c_opt.step()
            g_opt.zero_grad(set_to_none=True)
            out = generator(gp, blurred, training=True)
            g_loss = -critic(cp, out).mean() + args.l1_weight * (sharp - out).abs().mean()
            if args.per_weight != 0:
                g_loss = g_loss + args.per_weight * ((vgg19(vp, out) - vgg19(vp, sharp)) ** 2).mean()
            g_loss.backward()
            g_opt.step()
        losses.append((loss.detach(), g_loss.detach()))

    runs = timed(torch, device, step, args.repeat)
    r = row(args, device, "train-step", list(blurred.shape), runs)
    r["losses_finite"] = all(bool(torch.isfinite(c) and torch.isfinite(g)) for c, g in losses)
    return r


def cmd_deblur(args):
    started = time.perf_counter()
    torch, device = setup(args)
    import numpy as np
    from PIL import Image

    generator, _, _ = build(torch)
    p = load(torch, args.weights, device, args.prefix)
    img = np.asarray(Image.open(args.input).convert("RGB"), dtype=np.float32)
    x = torch.from_numpy(img.transpose(2, 0, 1)[None] / 127.5 - 1.0).to(device)
    h, w = x.shape[2], x.shape[3]
    x = torch.nn.functional.pad(x, (0, (-w) % 4, 0, (-h) % 4), mode="reflect")
    with torch.no_grad(), autocast(torch, device, args.amp):
        y = generator(p, x)[0, :, :h, :w].float().cpu().numpy()
    out = np.clip(np.rint((y.transpose(1, 2, 0) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    Image.fromarray(out).save(args.output)
    return {"case": "deblur", "device": str(device), "shape": [1, 3, h, w],
            "seconds": time.perf_counter() - started}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", help="cuda or cpu (default: cuda when there is one)")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls and convolutions")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    sub = ap.add_subparsers(dest="command", required=True)

    f = sub.add_parser("forward", help="time the generator forward")
    f.add_argument("--weights", required=True, help="generator parameters (irdc's names)")
    f.add_argument("--input", required=True, help="safetensors holding the input")
    f.add_argument("--input-name", default="blurred")
    f.add_argument("--output", help="write the output here (tensor `sharp`)")
    f.add_argument("--repeat", type=int, default=3)
    f.set_defaults(run=cmd_forward)

    t = sub.add_parser("train-step", help="time a training step (5 critic + 1 generator step)")
    t.add_argument("--weights", required=True, help="generator.* and critic.* parameters")
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

    d = sub.add_parser("deblur", help="one-shot deblur of a PNG")
    d.add_argument("--weights", required=True)
    d.add_argument("--prefix", default="generator.", help="name prefix of the generator's tensors")
    d.add_argument("--input", required=True)
    d.add_argument("--output", required=True)
    d.set_defaults(run=cmd_deblur)

    args = ap.parse_args(argv)
    if args.command == "train-step" and args.per_weight != 0 and not args.vgg19:
        ap.error("train-step: --per-weight is not 0, so --vgg19 FILE is needed")
    print(json.dumps(args.run(args)))


if __name__ == "__main__":
    sys.exit(main())
