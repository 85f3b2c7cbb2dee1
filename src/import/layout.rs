//! The ONNX ops that move elements: DepthToSpace and SpaceToDepth (irdc's PixelShuffle and
//! PixelUnshuffle where their channel orders agree), Resize by a whole factor, and Reshape and
//! Flatten to shapes known when importing.

use super::graph::{list, Builder};
use super::layers::{known_input, known_ints};
use super::ops::{lacks, Node, Refusal, Step};

fn blocksize(n: &Node) -> Result<usize, Refusal> {
    match n.a.int("blocksize", 0)? {
        r if r >= 1 => Ok(r as usize),
        r => Err(anyhow::anyhow!("has blocksize {r}").into()),
    }
}

/// DepthToSpace in CRD mode is PyTorch's pixel shuffle; DCR mode (ONNX's default) reads the
/// channels block first.
pub fn depth_to_space(b: &mut Builder, n: &Node) -> Step {
    n.only(&["blocksize", "mode"])?;
    match n.a.string("mode", "DCR")?.as_str() {
        "CRD" => {}
        other => return lacks(format!("in {other} mode (irdc's PixelShuffle is CRD)")),
    }
    let factor = blocksize(n)?;
    shuffle(b, n, "PixelShuffle", factor)
}

/// SpaceToDepth orders its output channels block first, irdc's PixelUnshuffle (PyTorch's)
/// channel first: the two agree where the input has one channel.
pub fn space_to_depth(b: &mut Builder, n: &Node) -> Step {
    n.only(&["blocksize"])?;
    let factor = blocksize(n)?;
    let (x, _) = b.operand(n.first()?)?;
    match b.shape(&x)?.as_slice() {
        [_, 1, _, _] => shuffle(b, n, "PixelUnshuffle", factor),
        s => lacks(format!(
            "of an input of shape {s:?} (ONNX orders the channels block first, irdc channel \
             first: they agree for one channel)"
        )),
    }
}

fn shuffle(b: &mut Builder, n: &Node, op: &str, factor: usize) -> Step {
    let (x, rank) = b.operand(n.first()?)?;
    let id = n.ident(b);
    b.push(&id, op, &[("in", x), ("factor", factor.to_string())]);
    n.defines(b, id, rank);
    Ok(())
}

/// Resize (opset 11 on) of height and width by one whole factor, as irdc's nearest and bilinear
/// (align_corners false) compute it.
pub fn resize(b: &mut Builder, n: &Node) -> Step {
    if b.opset < 11 {
        return lacks(format!("of opset {} (irdc imports it from 11)", b.opset));
    }
    n.only(&[
        "mode",
        "coordinate_transformation_mode",
        "nearest_mode",
        "cubic_coeff_a",
        "exclude_outside",
        "extrapolation_value",
        "antialias",
        "keep_aspect_ratio_policy",
    ])?;
    let mode = resize_mode(n)?;
    for (attr, default) in [("exclude_outside", 0), ("antialias", 0)] {
        if n.a.int(attr, default)? != default {
            return lacks(format!("with {attr} {}", n.a.int(attr, default)?));
        }
    }
    let policy = n.a.string("keep_aspect_ratio_policy", "stretch")?;
    if policy != "stretch" {
        return lacks(format!("with keep_aspect_ratio_policy {policy}"));
    }
    let (x, rank) = b.operand(n.first()?)?;
    let factors = resize_factors(b, n, &x)?;
    let factor = match factors.as_slice() {
        &[n_, c, h, w] if n_ == 1.0 && c == 1.0 && h == w && h.fract() == 0.0 && h >= 1.0 => {
            h as usize
        }
        _ => {
            return lacks(format!(
                "by {factors:?} (irdc resizes height and width of NCHW by one whole factor)"
            ))
        }
    };
    let id = n.ident(b);
    let fields = [
        ("in", x),
        ("factor", factor.to_string()),
        ("mode", format!("\"{mode}\"")),
    ];
    b.push(&id, "Resize", &fields);
    n.defines(b, id, rank);
    Ok(())
}

/// irdc's mode for the node's mode, coordinates and rounding where they agree for every whole
/// factor f: nearest reads pixel i / f rounded down, which the half-pixel coordinate
/// (i + 0.5) / f - 0.5 rounds to as well (it lies within half a pixel of it); bilinear reads
/// the half-pixel coordinate (pytorch_half_pixel differs only for an output of size 1).
fn resize_mode(n: &Node) -> Result<&'static str, Refusal> {
    let coords = n.a.string("coordinate_transformation_mode", "half_pixel")?;
    let half = matches!(coords.as_str(), "half_pixel" | "pytorch_half_pixel");
    match n.a.string("mode", "nearest")?.as_str() {
        "nearest" => {
            let rounding = n.a.string("nearest_mode", "round_prefer_floor")?;
            match (coords.as_str(), rounding.as_str()) {
                ("asymmetric", "floor") => Ok("nearest"),
                (_, "round_prefer_floor" | "round_prefer_ceil") if half => Ok("nearest"),
                (c, r) => lacks(format!("nearest with {c} coordinates and {r} rounding")),
            }
        }
        "linear" if half => Ok("bilinear"),
        "linear" => lacks(format!("linear with {coords} coordinates")),
        other => lacks(format!("in {other} mode")),
    }
}

/// The factor of each axis: the scales, or the sizes over the input's.
fn resize_factors(b: &Builder, n: &Node, x: &str) -> Result<Vec<f64>, Refusal> {
    // Before opset 13 an unused scales input is an empty tensor rather than left out.
    if n.input(2).is_some() {
        let scales = known_input(b, n, 2, "scales")?;
        if !scales.values.is_empty() {
            return Ok(scales.values.clone());
        }
    }
    if n.input(3).is_none() {
        return Err(anyhow::anyhow!("has neither scales nor sizes").into());
    }
    let sizes = known_ints(&*known_input(b, n, 3, "sizes")?);
    let from = b.shape(x)?;
    if sizes.len() != from.len() {
        return Err(anyhow::anyhow!("has sizes {sizes:?} for an input of shape {from:?}").into());
    }
    Ok((sizes.iter().zip(&from))
        .map(|(&s, &f)| s as f64 / f as f64)
        .collect())
}

/// Reshape to a constant shape: 0 copies the input's size (unless `allowzero`), -1 is what the
/// other sizes leave.
pub fn reshape(b: &mut Builder, n: &Node) -> Step {
    n.only(&["allowzero"])?;
    let raw = known_ints(&*known_input(b, n, 1, "shape")?);
    if n.a.int("allowzero", 0)? != 0 && raw.contains(&0) {
        return lacks("with allowzero 1 and a size 0");
    }
    let (x, _) = b.operand(n.first()?)?;
    let from = b.shape(&x)?;
    let mut shape = Vec::new();
    for (i, &d) in raw.iter().enumerate() {
        shape.push(match d {
            0 => *(from.get(i)).ok_or_else(|| anyhow::anyhow!("copies size {i} of {from:?}"))?,
            -1 => 1,
            d if d > 0 => d as usize,
            _ => return Err(anyhow::anyhow!("has shape {raw:?}").into()),
        });
    }
    let total: usize = from.iter().product();
    let given: usize = shape.iter().product();
    let open: Vec<usize> = (0..raw.len()).filter(|&i| raw[i] == -1).collect();
    match open.as_slice() {
        [i] if given > 0 && total.is_multiple_of(given) => shape[*i] = total / given,
        [] if given == total => {}
        _ => return Err(anyhow::anyhow!("reshapes {from:?} to {raw:?}").into()),
    }
    reshaped(b, n, x, &shape)
}

/// Flatten to a matrix: the sizes before `axis` make its rows, the others its columns.
pub fn flatten(b: &mut Builder, n: &Node) -> Step {
    n.only(&["axis"])?;
    let (x, _) = b.operand(n.first()?)?;
    let from = b.shape(&x)?;
    let axis = n.a.int("axis", 1)?;
    let r = from.len() as i64;
    let at = match axis {
        a if (0..=r).contains(&a) => a as usize,
        a if (-r..0).contains(&a) => (a + r) as usize,
        a => return Err(anyhow::anyhow!("has axis {a} for an input of rank {r}").into()),
    };
    let rows = from[..at].iter().product();
    let cols = from[at..].iter().product();
    reshaped(b, n, x, &[rows, cols])
}

fn reshaped(b: &mut Builder, n: &Node, x: String, shape: &[usize]) -> Step {
    if !(1..=4).contains(&shape.len()) {
        return lacks(format!(
            "to shape {shape:?} (irdc's tensors have rank 1 to 4)"
        ));
    }
    let id = n.ident(b);
    b.push(&id, "Reshape", &[("in", x), ("shape", list(shape))]);
    n.defines(b, id, shape.len());
    Ok(())
}
