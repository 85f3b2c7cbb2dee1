//! Instance normalisation in two parts, which the compiler lowers `InstanceNorm` into after
//! autodiff (so that the normalisation itself, an elementwise op, can fuse into its readers):
//! `InstanceNormStats(x)` -> `[N, C, 1, 2]`, each plane's mean and 1 / sqrt(var + eps), and
//! `InstanceNormApply(x, stats)` -> `(x - mean) * rstd`. Autodiff never sees them, so they have
//! no vector-Jacobian product: differentiate the graph before lowering it.
//! `PlaneStat(stats)` -> `[N, C, 1, 1]` reads one of the two numbers back, so that a
//! backward pass's own plane mean and 1 / sqrt(var + eps) of the same x need no reduction
//! (`compiler::lower`), and `PlaneMeans(a, b)` takes two plane means in one pass
//! (`compiler::plane_means`).

use super::check;
use super::properties::Properties;
use super::properties::{elements, Flops};
use super::reach::{Reach, Spatial};
use super::vjp::VjpResult;
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

/// inputs: stats [N, C, 1, K] -> [N, C, 1, 1]: number `index` of each plane's K, e.g. the mean
/// (0) or 1 / sqrt(var + eps) (1) of an `InstanceNormStats`, or one of the means of a
/// `PlaneMeans`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneStat {
    pub index: usize,
}

/// inputs: a, b [N, C, H, W] -> [N, C, 1, 2]: the mean of each plane of a, and of b. An
/// instance norm's gradient takes mean(g) and mean(g * y) over the same planes: one pass.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneMeans;

fn compile_time_only(op: &str) -> VjpResult {
    Err(format!(
        "{op}: not differentiable: a compile-time op (differentiate the graph before lowering \
         instance_norm)"
    ))
}

impl InstanceNormStats {
    pub const PROPERTIES: Properties = Properties {
        reduces_planes: true,
        ..Properties::INTERNAL
    };

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

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> VjpResult {
        compile_time_only("instance_norm_stats")
    }
}

impl InstanceNormApply {
    pub const PROPERTIES: Properties = Properties {
        elementwise: true,
        internal: true,
        ..Properties::NONE
    };

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

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> VjpResult {
        compile_time_only("instance_norm_apply")
    }
}

impl PlaneStat {
    pub const PROPERTIES: Properties = Properties {
        elementwise: true,
        internal: true,
        ..Properties::NONE
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "plane_stat";
        check::arity(OP, inputs, 1, "stats")?;
        match inputs[0] {
            &[n, c, 1, k] if self.index < k => Ok(vec![n, c, 1, 1]),
            s => Err(format!(
                "{OP}: expected stats of shape [N, C, 1, K] with K > {}, found {s:?}",
                self.index
            )),
        }
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let k = shape4(&inputs[0].shape)[3];
        let data = inputs[0].data.chunks(k).map(|s| s[self.index]);
        Tensor::new(out_shape, data.collect())
    }

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> VjpResult {
        compile_time_only("plane_stat")
    }
}

impl PlaneMeans {
    pub const PROPERTIES: Properties = Properties {
        reduces_planes: true,
        ..Properties::INTERNAL
    };

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        const OP: &str = "plane_means";
        check::arity(OP, inputs, 2, "a, b")?;
        let [n, c, _, _] = check::rank4(OP, "an input", "[N, C, H, W]", inputs[0])?;
        if inputs[1] != inputs[0] {
            return Err(format!(
                "{OP}: expected b of a's shape {:?}, found {:?}",
                inputs[0], inputs[1]
            ));
        }
        Ok(vec![n, c, 1, 2])
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let [_, _, h, w] = shape4(&inputs[0].shape);
        let plane = h * w;
        let mut y = Tensor::zeros(out_shape);
        if plane == 0 {
            return y;
        }
        let count = T::from(plane).unwrap_or_else(T::nan);
        let mean = |xs: &[T]| xs.iter().fold(T::zero(), |s, &v| s + v) / count;
        let planes = inputs[0]
            .data
            .chunks(plane)
            .zip(inputs[1].data.chunks(plane));
        for ((a, b), ys) in planes.zip(y.data.chunks_mut(2)) {
            ys[0] = mean(a);
            ys[1] = mean(b);
        }
        y
    }

    pub fn vjp(&self, _: &mut Graph, _: NodeId, _: NodeId) -> VjpResult {
        compile_time_only("plane_means")
    }
}

impl Flops for InstanceNormStats {
    fn flops(&self, inputs: &[&[usize]], _out: &[usize]) -> u64 {
        3 * elements(inputs.first().copied().unwrap_or_default())
    }
}

impl Flops for InstanceNormApply {
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        2 * elements(out)
    }
}

impl Flops for PlaneStat {}

impl Flops for PlaneMeans {
    fn flops(&self, inputs: &[&[usize]], _out: &[usize]) -> u64 {
        2 * elements(inputs.first().copied().unwrap_or_default())
    }
}

impl Spatial for InstanceNormStats {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Planes
    }
}

impl Spatial for InstanceNormApply {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Pixel
    }
}

impl Spatial for PlaneStat {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Pixel
    }
}

impl Spatial for PlaneMeans {
    fn reach(&self, _inputs: &[&[usize]]) -> Reach {
        Reach::Planes
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
    fn a_stat_reads_one_number_per_plane_and_plane_means_two() {
        let x = Tensor::new(&[1, 2, 1, 2], vec![1.0f64, 3.0, 5.0, 5.0]);
        let stats = InstanceNormStats { eps: 0.0 }.cpu(&[&x], &[1, 2, 1, 2]);
        let mean = PlaneStat { index: 0 };
        let rstd = PlaneStat { index: 1 };
        assert_eq!(mean.shape(&[&[1, 2, 1, 2]]), Ok(vec![1, 2, 1, 1]));
        assert_eq!(mean.cpu(&[&stats], &[1, 2, 1, 1]).data, vec![2.0, 5.0]);
        assert_eq!(rstd.cpu(&[&stats], &[1, 2, 1, 1]).data[0], 1.0);
        assert_eq!(
            rstd.shape(&[&[1, 2, 1, 1]]).unwrap_err(),
            "plane_stat: expected stats of shape [N, C, 1, K] with K > 1, found [1, 2, 1, 1]"
        );
        let b = Tensor::new(&[1, 2, 1, 2], vec![0.0f64, 4.0, -1.0, -3.0]);
        let means = PlaneMeans.cpu(&[&x, &b], &[1, 2, 1, 2]);
        assert_eq!(means.data, vec![2.0, 2.0, 5.0, -2.0]);
        assert_eq!(
            PlaneMeans
                .shape(&[&[1, 2, 1, 2], &[1, 2, 2, 1]])
                .unwrap_err(),
            "plane_means: expected b of a's shape [1, 2, 1, 2], found [1, 2, 2, 1]"
        );
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
