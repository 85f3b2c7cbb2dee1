//! Sources: constants written in the model file and parameter initialisers.

use super::properties::Properties;
use crate::{Shape, Tensor};
use num_traits::Float;

/// How a parameter is initialised when no weights file is given (docs/spec.md: weights N(0, 0.02), biases 0).
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    Normal { std: f64 },
    Zeros,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    pub shape: Shape,
    pub values: Vec<f64>,
}

impl Const {
    pub const PROPERTIES: Properties = Properties::NONE;

    pub fn cpu<T: Float>(&self) -> Tensor<T> {
        Tensor::new(
            &self.shape,
            self.values.iter().map(|&v| T::from(v).unwrap()).collect(),
        )
    }
}
