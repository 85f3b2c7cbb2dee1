//! Sources: constants written in the model file and parameter initialisers.

use super::properties::Flops;
use super::properties::Properties;
use super::reach::{Reach, Spatial};
use super::vjp::VjpResult;
use crate::{Graph, NodeId, Shape, Tensor};
use num_traits::Float;

/// How a parameter is initialised when no weights file is given (docs/spec.md: weights N(0, 0.02), biases 0).
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    Normal {
        std: f64,
    },
    Zeros,
    /// Every element `value` (a LayerNorm's weight starts at 1).
    Fill {
        value: f64,
    },
    /// Uniform on [-bound, bound] (PyTorch's default for convolutions).
    Uniform {
        bound: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    pub shape: Shape,
    pub values: Vec<f64>,
}

impl Const {
    pub const PROPERTIES: Properties = Properties::NONE;

    /// Its declared shape (a constant has no inputs).
    pub fn shape(&self, _inputs: &[&[usize]]) -> Result<Shape, String> {
        Ok(self.shape.clone())
    }

    pub fn cpu<T: Float>(&self, _inputs: &[&Tensor<T>], _out_shape: &[usize]) -> Tensor<T> {
        Tensor::new(
            &self.shape,
            self.values.iter().map(|&v| T::from(v).unwrap()).collect(),
        )
    }

    /// No inputs, so no gradients to push.
    pub fn vjp(&self, _g: &mut Graph, _node: NodeId, _grad: NodeId) -> VjpResult {
        Ok(vec![])
    }
}

impl Flops for Const {}

impl Spatial for Const {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Pixel
    }
}
