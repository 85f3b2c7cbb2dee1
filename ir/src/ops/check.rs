//! Checks shared by the shape rules, so that every op words the same mistake the same way:
//! "<op>: expected <what>, found <what was given>".

/// The number of inputs is exactly `n`; `names` lists them for the message (`x, weight, bias`).
pub(crate) fn arity(op: &str, inputs: &[&[usize]], n: usize, names: &str) -> Result<(), String> {
    if inputs.len() == n {
        return Ok(());
    }
    let s = if n == 1 { "" } else { "s" };
    Err(format!(
        "{op}: expected {n} input{s} ({names}), found {}",
        inputs.len()
    ))
}

/// A rank-4 shape, e.g. `rank4("conv2d", "an input", "[N, C, H, W]", x)`.
pub(crate) fn rank4(
    op: &str,
    what: &str,
    layout: &str,
    shape: &[usize],
) -> Result<[usize; 4], String> {
    match shape {
        &[a, b, c, d] => Ok([a, b, c, d]),
        _ => Err(format!(
            "{op}: expected {what} of rank 4 {layout}, found {shape:?}"
        )),
    }
}

/// A shape of rank 1 to 4 (the ranks layouts and kernels index).
pub(crate) fn rank1to4(op: &str, shape: &[usize]) -> Result<(), String> {
    if (1..=4).contains(&shape.len()) {
        Ok(())
    } else {
        Err(format!(
            "{op}: expected a shape of rank 1 to 4, found {shape:?}"
        ))
    }
}

/// A stride (or kernel size) of at least 1.
pub(crate) fn positive(op: &str, what: &str, v: usize) -> Result<(), String> {
    if v >= 1 {
        Ok(())
    } else {
        Err(format!("{op}: expected a {what} >= 1, found {v}"))
    }
}

/// A normalisation's eps: finite in f32 and >= 0.
pub(crate) fn eps(op: &str, eps: f64) -> Result<(), String> {
    if !(eps >= 0.0 && (eps as f32).is_finite()) {
        return Err(format!("{op}: expected a finite eps >= 0, found {eps:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(
            arity("relu", &[&[1], &[1]], 1, "x").unwrap_err(),
            "relu: expected 1 input (x), found 2"
        );
        assert!(arity("add", &[&[1], &[1]], 2, "a, b").is_ok());
        assert_eq!(
            rank4("conv2d", "an input", "[N, C, H, W]", &[3, 8, 8]).unwrap_err(),
            "conv2d: expected an input of rank 4 [N, C, H, W], found [3, 8, 8]"
        );
        assert_eq!(
            rank4("x", "an input", "", &[1, 2, 3, 4]).unwrap(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            rank1to4("add", &[]).unwrap_err(),
            "add: expected a shape of rank 1 to 4, found []"
        );
        assert_eq!(
            positive("max_pool2d", "stride", 0).unwrap_err(),
            "max_pool2d: expected a stride >= 1, found 0"
        );
    }
}
