//! Dropout. In inference (the only mode of a forward graph) it is the identity.

use super::check;
use crate::{Graph, NodeId, Shape, Tensor};
use num_traits::Float;

#[derive(Debug, Clone, PartialEq)]
pub struct Dropout {
    pub p: f64,
}

impl Dropout {
    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        check::arity("dropout", inputs, 1, "x")?;
        check::rank1to4("dropout", inputs[0])?;
        // p = 1 would drop everything and scale by 1/(1-p) = infinity.
        if !(0.0..1.0).contains(&self.p) {
            return Err(format!("dropout: expected 0 <= p < 1, found {:?}", self.p));
        }
        Ok(inputs[0].to_vec())
    }
    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        Tensor::new(out_shape, inputs[0].data.clone())
    }
    /// The identity, as the forward graph is inference.
    pub fn vjp(
        &self,
        _g: &mut Graph,
        _node: NodeId,
        grad: NodeId,
    ) -> Result<Vec<Option<NodeId>>, String> {
        Ok(vec![Some(grad)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_in_inference() {
        let d = Dropout { p: 0.2 };
        assert_eq!(d.shape(&[&[1, 2, 3, 3]]), Ok(vec![1, 2, 3, 3]));
        let x = Tensor::new(&[3], vec![1.0f32, -2.0, 3.0]);
        assert_eq!(d.cpu(&[&x], &[3]), x);
    }

    #[test]
    fn rejects_bad_p() {
        assert_eq!(
            Dropout { p: 1.0 }.shape(&[&[3]]).unwrap_err(),
            "dropout: expected 0 <= p < 1, found 1.0"
        );
        assert_eq!(
            Dropout { p: -0.1 }.shape(&[&[3]]).unwrap_err(),
            "dropout: expected 0 <= p < 1, found -0.1"
        );
        assert_eq!(
            Dropout { p: f64::NAN }.shape(&[&[3]]).unwrap_err(),
            "dropout: expected 0 <= p < 1, found NaN"
        );
        assert_eq!(
            Dropout { p: 0.0 }.shape(&[&[3], &[3]]).unwrap_err(),
            "dropout: expected 1 input (x), found 2"
        );
    }
}
