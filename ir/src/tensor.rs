//! A plain CPU tensor: the currency of the CPU reference and of tensor files.

use crate::Shape;
use num_traits::Float;

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor<T> {
    pub shape: Shape,
    pub data: Vec<T>,
}

impl<T: Float> Tensor<T> {
    pub fn zeros(shape: &[usize]) -> Self {
        Tensor {
            shape: shape.to_vec(),
            data: vec![T::zero(); crate::numel(shape)],
        }
    }
    pub fn new(shape: &[usize], data: Vec<T>) -> Self {
        assert_eq!(
            crate::numel(shape),
            data.len(),
            "tensor data does not match its shape"
        );
        Tensor {
            shape: shape.to_vec(),
            data,
        }
    }
    /// A tensor of `shape` whose element at 4-D coordinates of the left-padded shape (see
    /// [`crate::shape4`]) is `at(n, c, h, w)`.
    pub fn from_fn(shape: &[usize], at: impl Fn(usize, usize, usize, usize) -> T) -> Self {
        let [n, c, h, w] = crate::shape4(shape);
        let mut data = Vec::with_capacity(crate::numel(shape));
        for i0 in 0..n {
            for i1 in 0..c {
                for i2 in 0..h {
                    for i3 in 0..w {
                        data.push(at(i0, i1, i2, i3));
                    }
                }
            }
        }
        Tensor::new(shape, data)
    }
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&x| U::from(x).unwrap()).collect(),
        }
    }
    /// Element at 4-D coordinates of the left-padded shape (see [`crate::shape4`]).
    pub fn at4(&self, n: usize, c: usize, h: usize, w: usize) -> T {
        let [_, cc, hh, ww] = crate::shape4(&self.shape);
        self.data[((n * cc + c) * hh + h) * ww + w]
    }
}
