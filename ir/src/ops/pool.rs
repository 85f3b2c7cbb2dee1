//! Max pooling; padding counts as -infinity.

use super::check;
use crate::{shape4, Shape, Tensor};
use num_traits::Float;

#[derive(Debug, Clone, PartialEq)]
pub struct MaxPool2d {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

impl MaxPool2d {
    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "max_pool2d";
        check::arity(OP, inputs, 1, "x")?;
        check::positive(OP, "kernel", self.kernel)?;
        check::positive(OP, "stride", self.stride)?;
        let [n, c, h, w] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        let (k, s, p) = (self.kernel, self.stride, self.pad);
        // PyTorch's rule; it also makes every window hold at least one real value.
        if p > k / 2 {
            return Err(format!(
                "{OP}: expected pad <= kernel / 2, found pad {p} with kernel {k}"
            ));
        }
        let out = |size: usize| (size + 2 * p >= k).then(|| (size + 2 * p - k) / s + 1);
        match (out(h), out(w)) {
            (Some(oh), Some(ow)) => Ok(vec![n, c, oh, ow]),
            _ => Err(format!(
                "{OP}: output would be empty: input {h}x{w}, kernel {k}, pad {p}"
            )),
        }
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let x = inputs[0];
        let [_, _, h, w] = shape4(&x.shape);
        let [n, c, oh, ow] = shape4(out_shape);
        let (k, s, p) = (self.kernel, self.stride, self.pad);
        let mut data = Vec::with_capacity(crate::numel(out_shape));
        for b in 0..n {
            for ch in 0..c {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut m = T::neg_infinity();
                        for ki in 0..k {
                            for kj in 0..k {
                                let (Some(hi), Some(wi)) =
                                    ((i * s + ki).checked_sub(p), (j * s + kj).checked_sub(p))
                                else {
                                    continue;
                                };
                                if hi < h && wi < w {
                                    m = m.max(x.at4(b, ch, hi, wi));
                                }
                            }
                        }
                        data.push(m);
                    }
                }
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
        // The inception branch of SPEC.md: 3x3, stride 1, pad 1 keeps H and W.
        let p = MaxPool2d {
            kernel: 3,
            stride: 1,
            pad: 1,
        };
        assert_eq!(p.shape(&[&[1, 8, 16, 16]]), Ok(vec![1, 8, 16, 16]));
        assert_eq!(
            MaxPool2d {
                kernel: 2,
                stride: 2,
                pad: 0
            }
            .shape(&[&[1, 8, 7, 6]]),
            Ok(vec![1, 8, 3, 3])
        );
        assert_eq!(
            MaxPool2d {
                kernel: 3,
                stride: 1,
                pad: 2
            }
            .shape(&[&[1, 8, 16, 16]])
            .unwrap_err(),
            "max_pool2d: expected pad <= kernel / 2, found pad 2 with kernel 3"
        );
        assert_eq!(
            MaxPool2d {
                kernel: 5,
                stride: 1,
                pad: 0
            }
            .shape(&[&[1, 8, 2, 9]])
            .unwrap_err(),
            "max_pool2d: output would be empty: input 2x9, kernel 5, pad 0"
        );
        assert_eq!(
            MaxPool2d {
                kernel: 3,
                stride: 0,
                pad: 0
            }
            .shape(&[&[1, 8, 4, 4]])
            .unwrap_err(),
            "max_pool2d: expected a stride >= 1, found 0"
        );
        assert_eq!(
            p.shape(&[&[8, 4, 4]]).unwrap_err(),
            "max_pool2d: expected an input of rank 4 [N, C, H, W], found [8, 4, 4]"
        );
    }

    #[test]
    fn padding_is_minus_infinity() {
        // All values negative, so a zero padding would show up as 0 at the borders.
        let x = Tensor::new(&[1, 1, 3, 3], (1..=9).map(|v| -f64::from(v)).collect());
        let p = MaxPool2d {
            kernel: 3,
            stride: 1,
            pad: 1,
        };
        let y = p.cpu(&[&x], &p.shape(&[&x.shape]).unwrap());
        assert_eq!(
            y.data,
            vec![-1.0, -1.0, -2.0, -1.0, -1.0, -2.0, -4.0, -4.0, -5.0]
        );
    }

    #[test]
    fn strided() {
        let x = Tensor::new(&[1, 1, 4, 4], (1..=16u8).map(f32::from).collect::<Vec<_>>());
        let p = MaxPool2d {
            kernel: 2,
            stride: 2,
            pad: 0,
        };
        assert_eq!(p.cpu(&[&x], &[1, 1, 2, 2]).data, vec![6.0, 8.0, 14.0, 16.0]);
        // Stride 2 with pad 1 on 1..16: windows start at -1 and 1.
        let p = MaxPool2d {
            kernel: 3,
            stride: 2,
            pad: 1,
        };
        assert_eq!(
            p.cpu(&[&x], &p.shape(&[&x.shape]).unwrap()).data,
            vec![6.0, 8.0, 14.0, 16.0]
        );
    }
}
