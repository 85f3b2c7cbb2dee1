"""benches/quality's data: the held-out and training photos from scikit-image, blurred pairs made
with `irdc blur`, and the copies of the model files the bench trains (with the parameters it
sets). Imported by benches/quality, which documents the whole bench."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = {"DeblurGAN": ROOT / "models" / "deblurgan.ron", "IRD-GAN": ROOT / "models" / "ird_gan.ron",
          "NAFNet": ROOT / "models" / "nafnet.ron", "U-Net": ROOT / "models" / "unet.ron"}

# skimage.data photos that ship in the wheel (checked with scikit-image 0.26: no download).
# `cat` is `chelsea` again and is left out; the motorcycle pair is one scene, kept on one side.
TRAIN_PHOTOS = ["rocket", "hubble_deep_field", "immunohistochemistry", "motorcycle_left",
                "motorcycle_right", "retina", "camera", "coins", "clock", "moon", "grass",
                "gravel", "brick"]
TEST_PHOTOS = ["astronaut", "coffee", "chelsea"]


def say(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- photos


def photo(name):
    """A skimage.data photo as uint8 HxWx3."""
    import numpy as np
    from skimage import data

    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        img = left if name == "motorcycle_left" else right
    else:
        img = getattr(data, name)()
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.dtype != np.uint8:
        raise SystemExit(f"skimage.data.{name}: dtype {img.dtype}, expected uint8")
    return img[..., :3]


def shrink(img, f):
    """Box-filter downscale by the integer f (the image cut to a multiple of f), uint8 out."""
    import numpy as np

    h, w = img.shape[0] // f * f, img.shape[1] // f * f
    x = img[:h, :w].astype(np.float64).reshape(h // f, f, w // f, f, -1).mean(axis=(1, 3))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def read_png(path):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def write_png(path, img):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def tiles(img, t):
    """Top-left corners of the non-overlapping t x t tiles of img, the grid centred."""
    h, w = img.shape[:2]
    ny, nx = h // t, w // t
    if not ny or not nx:
        sys.exit(f"a test photo is {w}x{h} after the downscale, under --test-tile {t}")
    y0, x0 = (h - ny * t) // 2, (w - nx * t) // 2
    return [(y0 + i * t, x0 + j * t) for i in range(ny) for j in range(nx)]


def make_data(a, irdc, run):
    """OUT/data/train (sharp photos, shrunk) and OUT/data/test/<seed>/{blur,sharp}: GoPro layout."""
    import shutil

    data = a.out / "data"
    if data.exists():
        shutil.rmtree(data)
    assert not set(TRAIN_PHOTOS) & set(TEST_PHOTOS)
    f = a.downscale
    train = data / "train"
    sizes = {}
    for name in TRAIN_PHOTOS:
        img = shrink(photo(name), f)
        if min(img.shape[:2]) < a.crop:
            say(f"  note: {name} is {img.shape[1]}x{img.shape[0]} after the downscale, under the "
                f"crop; irdc reflect-pads it")
        write_png(train / f"{name}.png", img)
        sizes[name] = [img.shape[1], img.shape[0]]
    # irdc train holds out the last tenth of a sharp folder (sorted) for its sample images: give
    # it centre crops of training photos named to sort last, so every photo above is trained on.
    n = len(TRAIN_PHOTOS)
    k = 1
    while (n + k + 9) // 10 != k:
        k += 1
    for i in range(k):
        img = read_png(train / f"{TRAIN_PHOTOS[i]}.png")
        h, w = img.shape[:2]
        c = min(a.crop, h, w)
        y, x = (h - c) // 2, (w - c) // 2
        write_png(train / f"zz_sample_{i}.png", img[y:y + c, x:x + c])
    # The test photos at full size, blurred by irdc blur (docs/spec.md's 60-pixel trajectories), then
    # both images shrunk like the training photos.
    native = data / "test_photos"
    for name in TEST_PHOTOS:
        write_png(native / f"{name}.png", photo(name))
    test = data / "test"
    seeds = [1000 + 10 * a.seed + j for j in range(a.test_kernels)]
    t, pairs = a.test_tile, 0
    for s in seeds:
        raw = data / "blur_full_size" / f"seed_{s}"
        run([irdc, "blur", "--sharp", native, "--out", raw, "--seed", s], f"blur_seed_{s}")
        made = raw / native.name
        names = (made / "names.txt").read_text().split()
        listing = []
        for file, src in zip(names[0::2], names[1::2]):
            for sub in ("blur", "sharp"):
                img = shrink(read_png(made / sub / file), f)
                for j, (y, x) in enumerate(tiles(img, t)):
                    tile = f"{Path(file).stem}_{j:02d}.png"
                    write_png(test / f"kernels_seed_{s}" / sub / tile, img[y:y + t, x:x + t])
                    if sub == "blur":
                        listing.append(f"{tile} {src} y={y} x={x}")
            sizes[Path(src).stem] = [img.shape[1], img.shape[0]]
        (test / f"kernels_seed_{s}" / "names.txt").write_text("\n".join(listing) + "\n")
        pairs += len(listing)
    say(f"data: {n} training photos; {len(TEST_PHOTOS)} test photos x {len(seeds)} kernels, "
        f"cut into {pairs} test pairs of {t}x{t} (downscale {f})")
    import skimage

    photos = {"train": TRAIN_PHOTOS, "test": TEST_PHOTOS, "sizes": sizes,
              "test_kernel_seeds": seeds, "test_pairs": pairs, "train_sample_files": k,
              "scikit_image": skimage.__version__, "made_with": data_settings(a)}
    (data / "photos.json").write_text(json.dumps(photos, indent=2) + "\n")
    return photos


def data_settings(a):
    return {"downscale": a.downscale, "test_kernels": a.test_kernels, "test_tile": a.test_tile,
            "seed": a.seed}


def reuse_data(a):
    """The photos.json of OUT/data made earlier (--reuse-data), checked against the settings."""
    path = a.out / "data" / "photos.json"
    if not path.is_file():
        sys.exit(f"--reuse-data: no {path}; make it with --prepare-only (or a run) first")
    photos = json.loads(path.read_text())
    if photos["made_with"] != data_settings(a):
        sys.exit(f"--reuse-data: {path} was made with {photos['made_with']}, not "
                 f"{data_settings(a)}; give the same --downscale, --test-kernels, --test-tile "
                 f"and --seed")
    return photos


# ---------------------------------------------------------------------------- models


def patch(text, old, new, what):
    if text.count(old) != 1:
        sys.exit(f"benches/quality: {what}: expected the text {old!r} once in the model file; "
                 f"the model changed, update the script's patch")
    return text.replace(old, new)


def model_copies(out):
    """The two model files as trained here (see the module comment); {label: path}."""
    d = out / "models"
    d.mkdir(parents=True, exist_ok=True)
    ird = MODELS["IRD-GAN"].read_text()
    ird = patch(ird, "    params: {\n", "    params: {\n        seed: 0,  // benches/quality: the "
                "training seed as a parameter\n", "IRD-GAN params")
    ird = patch(ird, "        seed: 0,\n        sample_every", "        seed: seed,\n        "
                "sample_every", "IRD-GAN training seed")
    dg = MODELS["DeblurGAN"].read_text()
    dg = patch(dg, "        per_weight: 100,\n", "        per_weight: 100,\n"
               "        // benches/quality: L1 and L2 terms (0: DeblurGAN's own loss), the batch, "
               "the seed and the warm-up as parameters\n        l1_weight: 0,\n"
               "        l2_weight: 0,\n        batch: 1,\n        seed: 0,\n        warmup: 0,\n",
               "DeblurGAN params")
    pixel = ("                diff: Sub(a: sharp, b: out),\n"
             "                abs_diff: Abs(in: diff),\n"
             "                l1: Mean(in: abs_diff),\n"
             "                sq_diff: Square(in: diff),\n"
             "                l2: Mean(in: sq_diff),\n"
             "                l1_w: Affine(in: l1, scale: l1_weight, shift: 0),\n"
             "                l2_w: Affine(in: l2, scale: l2_weight, shift: 0),\n"
             "                pixel_w: Add(a: l1_w, b: l2_w),\n")
    dg = patch(dg, "                loss: Add(a: adversarial, b: perceptual_w),\n",
               pixel + "                partial: Add(a: adversarial, b: perceptual_w),\n"
               "                loss: Add(a: partial, b: pixel_w),\n", "DeblurGAN generator_loss")
    # content_loss as ird_gan.ron's: generator_loss without its adversarial term or the critic.
    dg = patch(dg, "            outputs: { loss: loss },\n        ),\n    },\n",
               "            outputs: { loss: loss },\n        ),\n\n"
               "        // benches/quality: the content loss alone (no critic), as ird_gan.ron's\n"
               "        content_loss: Graph(\n"
               "            inputs: { blurred: [1, 3, H, W], sharp: [1, 3, H, W] },\n"
               "            nodes: {\n"
               "                out: Call(graph: generator, blurred: blurred),\n"
               "                f_out: Call(graph: vgg19, image: out),\n"
               "                f_sharp: Call(graph: vgg19, image: sharp),\n"
               "                f_diff: Sub(a: f_out, b: f_sharp),\n"
               "                f_sq: Square(in: f_diff),\n"
               "                perceptual: Mean(in: f_sq),\n"
               "                perceptual_w: Affine(in: perceptual, scale: per_weight, shift: 0),\n"
               + pixel +
               "                loss: Add(a: perceptual_w, b: pixel_w),\n"
               "            },\n"
               "            outputs: { loss: loss },\n"
               "        ),\n    },\n", "DeblurGAN content_loss")
    dg = patch(dg, "        ema: ema,", "        content_loss: content_loss,        // benches/quality\n"
               "        warmup: warmup,                    // benches/quality\n        ema: ema,",
               "DeblurGAN training recipes")
    dg = patch(dg, "        batch: 1,                          // DeblurGAN: batch 1\n",
               "        batch: batch,                      // DeblurGAN: batch 1 (a parameter here)\n",
               "DeblurGAN batch")
    dg = patch(dg, "        seed: 0,\n        sample_every", "        seed: seed,\n        "
               "sample_every", "DeblurGAN training seed")
    paths = {"DeblurGAN": d / "deblurgan_bench.ron", "IRD-GAN": d / "ird_gan_bench.ron"}
    paths["DeblurGAN"].write_text(dg)
    paths["IRD-GAN"].write_text(ird)
    # The supervised models are trained as written (seed, batch, width are their parameters).
    for name, file in (("NAFNet", "nafnet_bench.ron"), ("U-Net", "unet_bench.ron")):
        paths[name] = d / file
        paths[name].write_text(MODELS[name].read_text())
    return paths
