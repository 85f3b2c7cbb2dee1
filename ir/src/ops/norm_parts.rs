//! Instance normalisation in two parts, which the compiler lowers `InstanceNorm` into after
//! autodiff (so that the normalisation itself, an elementwise op, can fuse into its readers):
//! `InstanceNormStats(x)` -> `[N, C, 1, 2]`, each plane's mean and 1 / sqrt(var + eps), and
//! `InstanceNormApply(x, stats)` -> `(x - mean) * rstd`. Autodiff never sees them, so they have
//! no vector-Jacobian product: differentiate the graph before lowering it.

use super::check;
use super::InstanceNorm;
use crate::{shape4, Graph, NodeId, Shape, Tensor};
use num_traits::Float;

/// inputs: x [N, C, H, W] -> [N, C, 1, 2]: (mean, 1 / sqrt(biased var + eps)) per plane.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceNormStats {
    pub eps: f64,
}

/// inputs: x [N, C, H, W], stats [N, C, 1, 2] -> (x - mean) * rstd.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceNormApply;

fn compile_time_only(op: &str) -> Result<Vec<Option<NodeId>>, String> {
    Err(format!(
        "{op}: not differentiable: a compile-time op (differentiate the graph before lowering \
         instance_norm)"
    ))
}

impl InstanceNormStats {
    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "instance_norm_stats";
        check::arity(OP, inputs, 1, "x")?;
        InstanceNorm { eps: self.eps }
            .shape(inputs)
            .map_err(|e| e.replacen("instance_norm", OP, 1))?;
        let [n, c, _, _] = shape4(inputs[0]);
        Ok(vec![n, c, 1, 2])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let [_, _, h, w] = shape4(&inputs[0].shape);
        let plane = h * w;
        let eps = T::from(self.eps).unwrap_or_else(T::nan);
        let count = T::from(plane).unwrap_or_else(T::nan);
        let mut y = Tensor::zeros(out_shape);
        if plane == 0 {
            return y;
        }
        for (xs, ys) in inputs[0].data.chunks(plane).zip(y.data.chunks_mut(2)) {
            let mean = xs.iter().fold(T::zero(), |s, &v| s + v) / count;
            let var = xs
                .iter()
                .fold(T::zero(), |s, &v| s + (v - mean) * (v - mean))
                / count;
            ys[0] = mean;
            ys[1] = (var + eps).sqrt().recip();
        }
        y
    }

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> Result<Vec<Option<NodeId>>, String> {
        compile_time_only("instance_norm_stats")
    }
}

impl InstanceNormApply {
    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "instance_norm_apply";
        check::arity(OP, inputs, 2, "x, stats")?;
        let [n, c, _, _] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        if inputs[1] != [n, c, 1, 2] {
            return Err(format!(
                "{OP}: expected stats of shape [{n}, {c}, 1, 2], found {:?}",
                inputs[1]
            ));
        }
        Ok(inputs[0].to_vec())
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let [_, _, h, w] = shape4(out_shape);
        let plane = (h * w).max(1);
        let stats = &inputs[1].data;
        let data = inputs[0].data.iter().enumerate().map(|(k, &x)| {
            let p = k / plane;
            (x - stats[2 * p]) * stats[2 * p + 1]
        });
        Tensor::new(out_shape, data.collect())
    }

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> Result<Vec<Option<NodeId>>, String> {
        compile_time_only("instance_norm_apply")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_then_apply_is_instance_norm() {
        let shape = [2, 3, 4, 5];
        let x = Tensor::new(
            &shape,
            (0..120)
                .map(|i| ((i * 37 % 23) as f64) * (1.0 + (i / 20) as f64))
                .collect(),
        );
        let stats_op = InstanceNormStats { eps: 1e-5 };
        let s_shape = stats_op.shape(&[&shape]).unwrap();
        assert_eq!(s_shape, [2, 3, 1, 2]);
        let s = stats_op.cpu(&[&x], &s_shape);
        let y = InstanceNormApply.cpu(&[&x, &s], &shape);
        let want = InstanceNorm { eps: 1e-5 }.cpu(&[&x], &shape);
        for (a, b) in y.data.iter().zip(&want.data) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn shapes_and_no_derivative() {
        assert_eq!(
            InstanceNormApply
                .shape(&[&[1, 4, 8, 8], &[1, 4, 1, 1]])
                .unwrap_err(),
            "instance_norm_apply: expected stats of shape [1, 4, 1, 2], found [1, 4, 1, 1]"
        );
        assert_eq!(
            InstanceNormStats { eps: 1e-5 }
                .shape(&[&[4, 8, 8]])
                .unwrap_err(),
            "instance_norm_stats: expected an input of rank 4 [N, C, H, W], found [4, 8, 8]"
        );
        let mut g = Graph::default();
        let err = InstanceNormApply.vjp(&mut g, 0, 0).unwrap_err();
        assert!(err.starts_with("instance_norm_apply: not differentiable: a compile-time op"));
    }
}
