//! Concatenation along channels (axis 1 of the rank-4 shape). Planned as one region by the compiler.

use super::check;
use crate::{shape4, Shape, Tensor};
use num_traits::Float;

#[derive(Debug, Clone, PartialEq)]
pub struct Concat {
    // no attributes: the axis is always the channel axis
}

impl Concat {
    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "concat";
        let Some(first) = inputs.first() else {
            return Err(format!("{OP}: expected at least one input, found none"));
        };
        let [n, mut c, h, w] = check::rank4(OP, "inputs", "[N, C, H, W]", first)?;
        for (k, s) in inputs.iter().enumerate().skip(1) {
            let [n2, c2, h2, w2] = check::rank4(OP, "inputs", "[N, C, H, W]", s)?;
            if (n2, h2, w2) != (n, h, w) {
                return Err(format!(
                    "{OP}: expected inputs with the N, H, W of the first input {first:?}, found input {k} {s:?}"
                ));
            }
            c += c2;
        }
        Ok(vec![n, c, h, w])
    }

    /// Each sample's output is its inputs' channel blocks one after the other.
    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let [n, _, _, _] = shape4(out_shape);
        let mut data = Vec::with_capacity(crate::numel(out_shape));
        for b in 0..n {
            for x in inputs {
                let per_sample = crate::numel(&x.shape) / n;
                data.extend_from_slice(&x.data[b * per_sample..(b + 1) * per_sample]);
            }
        }
        Tensor::new(out_shape, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let c = Concat {};
        assert_eq!(
            c.shape(&[&[2, 4, 8, 8], &[2, 1, 8, 8], &[2, 3, 8, 8]]),
            Ok(vec![2, 8, 8, 8])
        );
        assert_eq!(c.shape(&[&[2, 4, 8, 8]]), Ok(vec![2, 4, 8, 8]));
        assert_eq!(
            c.shape(&[]).unwrap_err(),
            "concat: expected at least one input, found none"
        );
        assert_eq!(
            c.shape(&[&[1, 4, 8, 8], &[1, 4, 4, 4]]).unwrap_err(),
            "concat: expected inputs with the N, H, W of the first input [1, 4, 8, 8], found input 1 [1, 4, 4, 4]"
        );
        assert_eq!(
            c.shape(&[&[1, 4, 8, 8], &[4, 8, 8]]).unwrap_err(),
            "concat: expected inputs of rank 4 [N, C, H, W], found [4, 8, 8]"
        );
    }

    #[test]
    fn interleaves_per_sample() {
        // Two samples: sample 0 takes a's first channel then b's two, and so on.
        let a = Tensor::new(&[2, 1, 1, 2], vec![1.0f64, 2.0, 3.0, 4.0]);
        let b = Tensor::new(
            &[2, 2, 1, 2],
            vec![5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
        );
        let y = Concat {}.cpu(&[&a, &b], &[2, 3, 1, 2]);
        assert_eq!(
            y.data,
            vec![1.0, 2.0, 5.0, 6.0, 7.0, 8.0, 3.0, 4.0, 9.0, 10.0, 11.0, 12.0]
        );
    }
}
