//! The generator's forward pass, done once a training step. The generator's loss graph inlines
//! G(blurred); compiled with the critic's parameters as late sources (`compiler::Options::late`),
//! its first phase computes G(blurred) before the critic's updates, and that value is the fake
//! the critic steps judge: the forward graph does not run in the adversarial step.
//!
//! Which value of the loss graph is G(blurred) is found, not assumed: a node whose computation
//! is the forward graph's, op for op and shape for shape, on the same generator parameters, the
//! same `blurred` input and the same dropout seed.

use ir::{Graph, NodeId, Op};
use std::collections::HashMap;

/// The name of the output the generator's loss graph gets for G(blurred).
pub const FAKE: &str = "fake";

/// The node of `loss` that computes `forward`'s single output from `loss`'s input `blurred`
/// (what `forward`'s input `forward_in` gets) and the parameters `prefix` + `forward`'s names.
pub fn forward_in_loss(
    loss: &Graph,
    forward: &Graph,
    forward_in: &str,
    prefix: &str,
) -> Option<NodeId> {
    let [(_, out)] = forward.outputs[..] else {
        return None;
    };
    let suffix = format!(".{}", forward.nodes[out].name);
    let mut found = None;
    for (c, node) in loss.nodes.iter().enumerate() {
        if !node.name.ends_with(&suffix) {
            continue;
        }
        let mut m = Matcher {
            loss,
            forward,
            forward_in,
            prefix,
            seen: HashMap::new(),
        };
        if m.same(out, c) {
            // Two copies of G(blurred) would make the choice arbitrary: keep the forward graph.
            if found.is_some() {
                return None;
            }
            found = Some(c);
        }
    }
    found
}

struct Matcher<'a> {
    loss: &'a Graph,
    forward: &'a Graph,
    forward_in: &'a str,
    prefix: &'a str,
    /// Forward node -> the loss node it was matched with.
    seen: HashMap<NodeId, NodeId>,
}

impl Matcher<'_> {
    /// Whether loss node `l` computes what forward node `f` does.
    fn same(&mut self, f: NodeId, l: NodeId) -> bool {
        if let Some(&at) = self.seen.get(&f) {
            return at == l;
        }
        let (forward, loss) = (self.forward, self.loss);
        let (nf, nl) = (&forward.nodes[f], &loss.nodes[l]);
        if nf.shape != nl.shape {
            return false;
        }
        let ok = match (&nf.op, &nl.op) {
            (Op::Input { name: a }, Op::Input { name: b }) => match a == self.forward_in {
                true => b == "blurred",
                false => a == b,
            },
            (Op::Param { .. }, Op::Param { .. }) => {
                nl.name == format!("{}{}", self.prefix, nf.name)
            }
            (a, b) => {
                a == b
                    && nf.inputs.len() == nl.inputs.len()
                    && (nf.inputs.iter().zip(&nl.inputs)).all(|(&i, &j)| self.same(i, j))
            }
        };
        if ok {
            self.seen.insert(f, l);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use crate::train::Trainer;
    use crate::Gpu;
    use std::collections::HashMap;

    /// A tiny IRD-GAN (as `tests/learning.rs`): N = 4, ndf = 4, 16x16, no perceptual loss.
    fn trainer(gpu: &Gpu) -> Trainer {
        let source = include_str!("../../../../models/ird_gan.ron");
        let sets: Vec<(String, String)> = [
            ("N", "4"),
            ("ndf", "4"),
            ("per_weight", "0"),
            ("H", "16"),
            ("W", "16"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let model = ir::front::parse(source, "models/ird_gan.ron", &sets).unwrap();
        let spec = model.training_spec().unwrap();
        Trainer::new(gpu, &model, &spec, &HashMap::new()).unwrap()
    }

    /// The step that takes G(blurred) from the generator step's first phase trains as the step
    /// that runs the forward graph for it: the same losses, step after step.
    #[test]
    fn the_generator_steps_first_phase_gives_the_critic_its_fake() {
        let gpu = Gpu::new().unwrap();
        let mut reusing = trainer(&gpu);
        let mut forward = trainer(&gpu);
        assert!(reusing.adversarial.as_ref().unwrap().fake_in_step.is_some());
        forward.adversarial.as_mut().unwrap().fake_in_step = None;
        let k = reusing.spec.critic_steps;
        let n = 3 * 16 * 16;
        for step in 0..3u64 {
            let image = |seed: f32| -> Vec<f32> {
                (0..n)
                    .map(|i| (i as f32 * 0.37 + seed).sin() * 0.9)
                    .collect()
            };
            let (blurred, sharp) = (image(step as f32), image(step as f32 + 0.5));
            let alphas: Vec<Vec<f32>> = (0..k).map(|i| vec![0.1 + 0.15 * i as f32]).collect();
            let a = reusing.step(step, &blurred, &sharp, &alphas, 1e-3).unwrap();
            let b = forward.step(step, &blurred, &sharp, &alphas, 1e-3).unwrap();
            let all = |l: &crate::train::trainer::StepLosses| {
                let mut v = l.critic.clone();
                v.push(l.generator);
                v.extend(l.parts.iter().map(|p| p.1));
                v
            };
            for (x, y) in all(&a).into_iter().zip(all(&b)) {
                assert!(
                    (x - y).abs() <= 1e-5 * y.abs().max(1.0),
                    "step {step}: {a:?} against {b:?}"
                );
            }
        }
    }
}
