//! Dropout. With one input `[x]` it is inference: the identity (the compiler removes it). With two
//! inputs `[x, seed]` it is training: element i is kept iff `(hash(seed, salt, i) >> 8) / 2^24 >= p`
//! and kept elements are scaled by 1 / (1 - p). The mask is a pure function of (seed, salt, flat
//! element index), so the backward pass and the GPU kernel draw the same mask without storing it:
//! the same u32 hash is written here twice, in Rust ([`dropout_hash`]) and in WGSL ([`DROPOUT_WGSL`]).
//! `salt` comes from the node's path in the graph that defines it (see [`dropout_salt`]), so a graph
//! drops the same elements whether it is built alone or inlined by a `Call`. A seed of shape [2]
//! also says which sample of the whole batch element 0 belongs to (`[seed, first]`): a data-parallel
//! rank holding samples `first..` of the batch then draws the very masks one process would.

use super::check;
use super::properties::Properties;
use super::properties::{elements, Flops};
use super::reach::{Reach, Spatial};
use super::vjp::VjpResult;
use crate::{Graph, NodeId, Op, Shape, Tensor};
use num_traits::Float;

/// The name of the seed input that a training build adds to a graph with dropout: shape [2],
/// `[seed, first]`, integers below 2^24 stored as f32 (exact): the step's seed and the index in
/// the whole batch of this graph's first sample (0 but in a data-parallel rank). A hand-built
/// graph may give a seed of shape [1]: `first` is then 0.
pub const DROPOUT_SEED: &str = "dropout_seed";

#[derive(Debug, Clone, PartialEq)]
pub struct Dropout {
    pub p: f64,
    /// Distinguishes the masks of the dropouts of one graph that see the same seed.
    pub salt: u32,
}

/// murmur3's 32-bit finaliser: every input bit flips each output bit with probability ~1/2.
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^ (x >> 16)
}

/// The counter-based hash of element `index` of the dropout with `salt` under `seed`.
pub fn dropout_hash(seed: u32, salt: u32, index: u32) -> u32 {
    let key = mix(seed ^ mix(salt.wrapping_add(0x9e37_79b9)));
    mix(mix(index ^ key).wrapping_add(key))
}

/// [`dropout_hash`] in WGSL, word for word (u32 arithmetic wraps in WGSL as `wrapping_*` does here).
pub const DROPOUT_WGSL: &str = "
fn dropout_mix(x0: u32) -> u32 {
    var x = x0;
    x = x ^ (x >> 16u);
    x = x * 0x85ebca6bu;
    x = x ^ (x >> 13u);
    x = x * 0xc2b2ae35u;
    return x ^ (x >> 16u);
}

fn dropout_hash(seed: u32, salt: u32, index: u32) -> u32 {
    let key = dropout_mix(seed ^ dropout_mix(salt + 0x9e3779b9u));
    return dropout_mix(dropout_mix(index ^ key) + key);
}
";

/// The salt of a dropout at node path `path` (within the graph that defines it): FNV-1a, 32 bits.
pub fn dropout_salt(path: &str) -> u32 {
    path.bytes()
        .fold(0x811c_9dc5, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

impl Dropout {
    pub const PROPERTIES: Properties = Properties::NONE;

    pub fn shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        if !(1..=2).contains(&inputs.len()) {
            return Err(format!(
                "dropout: expected 1 input (x) or 2 (x, seed), found {}",
                inputs.len()
            ));
        }
        check::rank1to4("dropout", inputs[0])?;
        if let Some(seed) = inputs.get(1) {
            if *seed != [1] && *seed != [2] {
                return Err(format!(
                    "dropout: expected a seed of shape [1] or [2] ([seed, first sample]), found {seed:?}"
                ));
            }
        }
        // p = 1 would drop everything and scale by 1/(1-p) = infinity.
        if !(0.0..1.0).contains(&self.p) {
            return Err(format!("dropout: expected 0 <= p < 1, found {:?}", self.p));
        }
        Ok(inputs[0].to_vec())
    }

    /// Elements whose `hash >> 8` is at least this are kept: `(hash >> 8) / 2^24 >= p` evaluated
    /// exactly (p * 2^24 is exact in f64), the same integer test on the CPU and the GPU.
    pub fn keep_from(&self) -> u32 {
        (self.p * (1u32 << 24) as f64).ceil() as u32
    }

    /// The factor of kept elements, 1 / (1 - p).
    pub fn scale(&self) -> f64 {
        1.0 / (1.0 - self.p)
    }

    /// Whether element `index` is kept under `seed`.
    pub fn keeps(&self, seed: u32, index: u32) -> bool {
        (dropout_hash(seed, self.salt, index) >> 8) >= self.keep_from()
    }

    pub fn cpu<T: Float>(&self, inputs: &[&Tensor<T>], out_shape: &[usize]) -> Tensor<T> {
        let x = &inputs[0].data;
        let Some(seed) = inputs.get(1) else {
            return Tensor::new(out_shape, x.clone());
        };
        // f32s holding integers below 2^24 (`as` saturates anything else, as WGSL's u32()).
        let word = |k: usize| seed.data.get(k).and_then(|v| v.to_f64()).unwrap_or(0.0) as u32;
        let (seed, first) = (word(0), word(1));
        let base = first.wrapping_mul(per_sample(out_shape));
        let scale = T::from(self.scale()).expect("a finite scale");
        let data = (x.iter().enumerate())
            .map(|(i, &v)| {
                if self.keeps(seed, base.wrapping_add(i as u32)) {
                    v * scale
                } else {
                    T::zero()
                }
            })
            .collect();
        Tensor::new(out_shape, data)
    }

    /// Linear in x with a fixed mask: the gradient is the same dropout (same p, salt and seed)
    /// of the incoming gradient; none for the seed. In inference, the identity.
    pub fn vjp(&self, g: &mut Graph, node: NodeId, grad: NodeId) -> VjpResult {
        let inputs = g.nodes[node].inputs.clone();
        let [_, seed] = inputs[..] else {
            return Ok(vec![Some(grad)]);
        };
        let name = format!("grad.{}.dropout", g.nodes[node].name);
        let gx = g.push(name, Op::Dropout(self.clone()), vec![grad, seed])?;
        Ok(vec![Some(gx), None])
    }
}

/// Elements per sample (per index of the first dimension) of a value of `shape`: how far the mask's
/// index moves per sample of the batch before this graph's first.
pub fn per_sample(shape: &[usize]) -> u32 {
    shape.iter().skip(1).product::<usize>() as u32
}

impl Flops for Dropout {
    fn flops(&self, _inputs: &[&[usize]], out: &[usize]) -> u64 {
        elements(out)
    }
}

impl Spatial for Dropout {
    fn reach(&self, inputs: &[&[usize]]) -> Reach {
        // With its seed (training) each element draws its own mask bit from its index, which a
        // tile would renumber; without it, dropout is the identity.
        match inputs.len() {
            1 => Reach::Pixel,
            _ => Reach::Whole,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(p: f64) -> Dropout {
        Dropout { p, salt: 7 }
    }

    #[test]
    fn identity_in_inference() {
        assert_eq!(d(0.2).shape(&[&[1, 2, 3, 3]]), Ok(vec![1, 2, 3, 3]));
        let x = Tensor::new(&[3], vec![1.0f32, -2.0, 3.0]);
        assert_eq!(d(0.2).cpu(&[&x], &[3]), x);
    }

    #[test]
    fn shape_rule_messages() {
        assert_eq!(
            d(1.0).shape(&[&[3]]).unwrap_err(),
            "dropout: expected 0 <= p < 1, found 1.0"
        );
        assert_eq!(
            d(-0.1).shape(&[&[3]]).unwrap_err(),
            "dropout: expected 0 <= p < 1, found -0.1"
        );
        assert_eq!(
            d(f64::NAN).shape(&[&[3]]).unwrap_err(),
            "dropout: expected 0 <= p < 1, found NaN"
        );
        assert_eq!(d(0.5).shape(&[&[2, 3], &[1]]), Ok(vec![2, 3]));
        assert_eq!(
            d(0.5).shape(&[&[3], &[3]]).unwrap_err(),
            "dropout: expected a seed of shape [1] or [2] ([seed, first sample]), found [3]"
        );
        assert_eq!(
            d(0.5).shape(&[&[3], &[1, 1]]).unwrap_err(),
            "dropout: expected a seed of shape [1] or [2] ([seed, first sample]), found [1, 1]"
        );
        assert_eq!(
            d(0.5).shape(&[&[3], &[1], &[1]]).unwrap_err(),
            "dropout: expected 1 input (x) or 2 (x, seed), found 3"
        );
        assert_eq!(
            d(0.5).shape(&[]).unwrap_err(),
            "dropout: expected 1 input (x) or 2 (x, seed), found 0"
        );
    }

    #[test]
    fn threshold_is_exact() {
        assert_eq!(d(0.0).keep_from(), 0);
        assert_eq!(d(0.5).keep_from(), 1 << 23);
        // 0.2 * 2^24 = 3355443.2: kept from 3355444 on, i.e. u / 2^24 >= 0.2 exactly.
        assert_eq!(d(0.2).keep_from(), 3_355_444);
        for p in [0.1, 0.2, 0.3, 0.9, 1.0 - 1e-9] {
            let k = d(p).keep_from() as f64;
            let two24 = (1u32 << 24) as f64;
            assert!((k - 1.0) / two24 < p && k / two24 >= p, "p = {p}: {k}");
        }
    }

    #[test]
    fn salt_is_fnv1a() {
        // FNV-1a 32-bit test vectors.
        assert_eq!(dropout_salt(""), 0x811c_9dc5);
        assert_eq!(dropout_salt("a"), 0xe40c_292c);
        assert_eq!(dropout_salt("foobar"), 0xbf9c_f968);
    }
}
