//! Seeded parameter initialisation (docs/spec.md: weights N(0, 0.02), biases 0). ChaCha keeps the
//! stream the same on every platform and version, so a seed names one set of weights.

use crate::ops::Init;
use crate::{Graph, Op, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

/// Initialise every parameter of `graph` from `seed`, in node order, by name.
pub fn init_params(graph: &Graph, seed: u64) -> Vec<(String, Tensor<f32>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for (_, node) in graph.params() {
        let Op::Param { init } = &node.op else {
            unreachable!()
        };
        let n = crate::numel(&node.shape);
        let data = match init {
            Init::Zeros => vec![0.0f32; n],
            Init::Fill { value } => vec![*value as f32; n],
            Init::Uniform { bound } => {
                let d = Uniform::new_inclusive(-*bound, *bound)
                    .expect("a finite bound: the front end keeps fan_in >= 1");
                (0..n).map(|_| d.sample(&mut rng) as f32).collect()
            }
            Init::Normal { std } => {
                let d = Normal::new(0.0, *std).expect("a finite, non-negative std");
                (0..n).map(|_| d.sample(&mut rng) as f32).collect()
            }
        };
        out.push((node.name.clone(), Tensor::new(&node.shape, data)));
    }
    out
}
