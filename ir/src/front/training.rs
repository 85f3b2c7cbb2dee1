//! The `training:` section, typed: which graphs train, the optimizer, the schedule, the data and
//! how often to sample and checkpoint (docs/spec.md "Training"). Every field has docs/spec.md's default, so
//! `training: Training()` is the paper's setup; a mistake names the file, line and column.
//!
//! ```ron
//! training: Training(
//!     generator: generator, critic: critic,                  // graphs (these are the defaults)
//!     critic_loss: critic_loss, generator_loss: generator_loss,
//!     critic_steps: 5,
//!     optimizer: Adam(lr: 1e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8),
//!     schedule: Schedule(epochs: 300, decay_after: 0.5),     // or steps: N instead of epochs
//!     batch: 1, crop: 256, seed: 0,
//!     sample_every: 500, checkpoint_every: 1000,
//!     data: Procedural,                                      // or Folder(path: ".."), GoPro(root: "..")
//!     // Recipes, all off by default (docs/spec.md's paper has none of them):
//!     warmup: 0,                  // first generator steps on `content_loss` alone, no critic
//!     content_loss: content_loss, // blurred, sharp -> loss: warm-up and critic-free training
//!     ema: 0.999,                 // moving average of the generator's weights (absent: off)
//!     // critic: None,            // no critic at all: the generator trains on its content loss
//!     // Validation on whole held-out images (PSNR/SSIM, best.safetensors):
//!     validate_every: 500, val_images: 8, val_size: 128, // val_data: "GOPRO_Large",
//! ),
//! ```

use super::error::{Diag, FrontError, R};
use super::expr::Env;
use super::fields::{self, expected, Fields};
use super::recipes::{recipe_defaults, recipes};
use super::syntax::{Kind, Value};
use super::Model;

/// The training section with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSpec {
    pub generator: String,
    /// The critic's graph; `None` (`critic: None`, or no graph `critic` and no `critic` field):
    /// no critic, the generator trains on its content loss alone ([`TrainingSpec::content_step_loss`]).
    pub critic: Option<String>,
    pub critic_loss: String,
    pub generator_loss: String,
    /// A content-only loss (`blurred, sharp -> loss`, no critic) for warm-up and critic-free
    /// training; default: the model's graph `content_loss` when it has one.
    pub content_loss: Option<String>,
    /// The first `warmup` generator steps train on `content_loss` only; the critic waits.
    pub warmup: usize,
    /// Decay of an exponential moving average of the generator's weights (`None`: none).
    pub ema: Option<f64>,
    /// Validate on whole held-out images every this many generator steps (and at the end).
    pub validate_every: usize,
    /// Held-out images in the validation set.
    pub val_images: usize,
    /// Side of the procedural validation images (other data are validated at their own size).
    pub val_size: usize,
    /// A folder of validation pairs: GoPro's root (its `test/`), a split, or one sequence
    /// (`blur/`, `sharp/`); `None`: a seeded slice of the training data's held-out split.
    pub val_data: Option<String>,
    /// Critic updates per generator update.
    pub critic_steps: usize,
    pub adam: AdamSpec,
    pub length: Length,
    /// Fraction of the run at a constant learning rate; after it the rate falls linearly to 0.
    pub decay_after: f64,
    pub batch: usize,
    pub crop: usize,
    pub seed: u64,
    /// Write a sample triptych every this many generator steps.
    pub sample_every: usize,
    /// Write a checkpoint every this many generator steps (and at the end).
    pub checkpoint_every: usize,
    pub data: DataDefault,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamSpec {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

/// How long to train, in generator steps or in epochs (passes over the training set).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Length {
    Steps(usize),
    Epochs(usize),
}

/// Where training pairs come from when the command line does not say.
#[derive(Debug, Clone, PartialEq)]
pub enum DataDefault {
    /// Procedural images blurred by the synthetic motion blur: needs no files.
    Procedural,
    /// A folder of sharp images, blurred on the fly.
    Folder(String),
    /// A GoPro_Large root (`train/`, `test/`).
    GoPro(String),
}

impl Default for TrainingSpec {
    fn default() -> Self {
        TrainingSpec {
            generator: "generator".into(),
            critic: Some("critic".into()),
            critic_loss: "critic_loss".into(),
            generator_loss: "generator_loss".into(),
            content_loss: None,
            warmup: 0,
            ema: None,
            validate_every: 500,
            val_images: 8,
            val_size: 128,
            val_data: None,
            critic_steps: 5,
            adam: AdamSpec {
                lr: 1e-4,
                beta1: 0.5,
                beta2: 0.999,
                eps: 1e-8,
            },
            length: Length::Epochs(300),
            decay_after: 0.5,
            batch: 1,
            crop: 256,
            seed: 0,
            sample_every: 500,
            checkpoint_every: 1000,
            data: DataDefault::Procedural,
        }
    }
}

impl TrainingSpec {
    /// Whether a parameter of a loss graph (named as there) belongs to no network the training
    /// trains: neither the generator's nor the critic's (a perceptual loss's VGG19, say). Its
    /// values never change during training.
    pub fn is_frozen(&self, param: &str) -> bool {
        let of = |net: &str| param.strip_prefix(net).is_some_and(|r| r.starts_with('.'));
        !of(&self.generator) && !self.critic.as_deref().is_some_and(of)
    }

    /// The parameters of `graph` that [`TrainingSpec::is_frozen`] says are frozen.
    pub fn frozen_params(&self, graph: &crate::Graph) -> std::collections::BTreeSet<String> {
        (graph.nodes.iter())
            .filter(|n| matches!(n.op, crate::Op::Param { .. }) && self.is_frozen(&n.name))
            .map(|n| n.name.clone())
            .collect()
    }

    /// The name prefix of the parameters the step of loss graph `graph` trains (`critic.` for
    /// the critic's loss, `generator.` for the generator's); `None` for any other graph.
    pub fn trained_prefix(&self, graph: &str) -> Option<String> {
        match (graph, &self.critic) {
            (g, Some(c)) if g == self.critic_loss => Some(format!("{c}.")),
            (g, _) if g == self.generator_loss || self.content_loss.as_deref() == Some(g) => {
                Some(format!("{}.", self.generator))
            }
            _ => None,
        }
    }

    /// The loss graph of a content step (a warm-up step, or every step without a critic):
    /// `content_loss`, or without a critic and without one, `generator_loss`. `None` when no
    /// step trains on a content loss.
    pub fn content_step_loss(&self) -> Option<&str> {
        match (&self.critic, self.warmup) {
            (None, _) => Some(self.content_loss.as_deref().unwrap_or(&self.generator_loss)),
            (Some(_), 0) => None,
            (Some(_), _) => self.content_loss.as_deref(),
        }
    }
}

impl Model {
    /// The typed `training:` section (docs/spec.md's defaults where it is absent or silent). Graph
    /// names are checked against the model's graphs.
    pub fn training_spec(&self) -> Result<TrainingSpec, FrontError> {
        let graphs = self.graph_names();
        let Some(v) = self.training() else {
            let mut t = TrainingSpec::default();
            recipe_defaults(&mut t, &graphs, false);
            return Ok(t);
        };
        read(v, &self.parts.params, &graphs).map_err(|d| d.into_error(&self.file))
    }
}

fn read(v: &Value, env: &Env, graphs: &[String]) -> R<TrainingSpec> {
    let Some((Some("Training") | None, fs)) = Fields::of(v, true) else {
        return Err(expected(v, "`Training(critic_steps: 5, ..)`"));
    };
    let mut f = Fields::new("Training", v.span, fs);
    let mut t = TrainingSpec::default();
    let graph = |g: &Value, field: &str| -> R<String> {
        let name = fields::ident(g, "a graph name")?;
        if !graphs.iter().any(|n| n == name) {
            return Err(Diag::at(
                g.span,
                format!(
                    "`{field}` names no graph `{name}`; the model has: {}",
                    graphs.join(", ")
                ),
            ));
        }
        Ok(name.to_string())
    };
    if let Some(g) = f.get("generator") {
        t.generator = graph(g, "generator")?;
    }
    let critic = f.get("critic");
    if let Some(c) = critic {
        t.critic = match &c.kind {
            Kind::Ident(n) if n == "None" => None,
            _ => Some(graph(c, "critic")?),
        };
    }
    for (field, slot) in [
        ("critic_loss", &mut t.critic_loss),
        ("generator_loss", &mut t.generator_loss),
    ] {
        if let Some(g) = f.get(field) {
            *slot = graph(g, field)?;
        }
    }
    if let Some(g) = f.get("content_loss") {
        t.content_loss = Some(graph(g, "content_loss")?);
    }
    recipe_defaults(&mut t, graphs, critic.is_some());
    // Whole numbers >= 1, except the seed (>= 0).
    for (field, slot, min) in [
        ("critic_steps", &mut t.critic_steps, 1),
        ("batch", &mut t.batch, 1),
        ("crop", &mut t.crop, 4),
        ("sample_every", &mut t.sample_every, 1),
        ("checkpoint_every", &mut t.checkpoint_every, 1),
    ] {
        if let Some(n) = f.get(field) {
            *slot = fields::whole(n, env, field, min)?;
        }
    }
    if let Some(n) = f.get("seed") {
        t.seed = fields::whole(n, env, "seed", 0)? as u64;
    }
    if let Some(o) = f.get("optimizer") {
        t.adam = adam(o, env)?;
    }
    if let Some(s) = f.get("schedule") {
        (t.length, t.decay_after) = schedule(s, env)?;
    }
    if let Some(d) = f.get("data") {
        t.data = data(d)?;
    }
    recipes(&mut f, &mut t, env)?;
    f.finish()?;
    Ok(t)
}

fn adam(v: &Value, env: &Env) -> R<AdamSpec> {
    let Some((Some("Adam"), fs)) = Fields::of(v, true) else {
        return Err(expected(
            v,
            "`Adam(lr: 1e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8)` (irdc has Adam only)",
        ));
    };
    let mut f = Fields::new("Adam", v.span, fs);
    let mut a = TrainingSpec::default().adam;
    // (field, slot, lowest allowed, whether the lowest itself is allowed, highest excluded):
    // eps 0 would divide 0 by 0 for a parameter whose gradient is still 0.
    for (field, slot, lo, lo_ok, hi) in [
        ("lr", &mut a.lr, 0.0, true, f64::INFINITY),
        ("beta1", &mut a.beta1, 0.0, true, 1.0),
        ("beta2", &mut a.beta2, 0.0, true, 1.0),
        ("eps", &mut a.eps, 0.0, false, f64::INFINITY),
    ] {
        if let Some(n) = f.get(field) {
            let x = fields::num(n, env)?;
            if !((x > lo || (lo_ok && x == lo)) && x < hi) {
                let open = if lo_ok { "[" } else { "(" };
                let range = match (hi.is_finite(), lo_ok) {
                    (true, _) => format!("in {open}{lo}, {hi})"),
                    (false, true) => format!(">= {lo}"),
                    (false, false) => format!("> {lo}"),
                };
                return Err(Diag::at(
                    n.span,
                    format!("Adam `{field}` must be {range}, found {x}"),
                ));
            }
            *slot = x;
        }
    }
    f.finish()?;
    Ok(a)
}

fn schedule(v: &Value, env: &Env) -> R<(Length, f64)> {
    let Some((Some("Schedule") | None, fs)) = Fields::of(v, false) else {
        return Err(expected(v, "`Schedule(epochs: 300, decay_after: 0.5)`"));
    };
    let mut f = Fields::new("Schedule", v.span, fs);
    let length = match (f.get("steps"), f.get("epochs")) {
        (Some(s), None) => Length::Steps(fields::whole(s, env, "steps", 1)?),
        (None, Some(e)) => Length::Epochs(fields::whole(e, env, "epochs", 1)?),
        (Some(_), Some(e)) => {
            return Err(Diag::at(
                e.span,
                "Schedule takes `steps` or `epochs`, not both",
            ))
        }
        (None, None) => TrainingSpec::default().length,
    };
    let mut decay_after = 0.5;
    if let Some(d) = f.get("decay_after") {
        decay_after = fields::num(d, env)?;
        if !(0.0..=1.0).contains(&decay_after) {
            return Err(Diag::at(
                d.span,
                format!("`decay_after` is a fraction of the run in [0, 1], found {decay_after}"),
            ));
        }
    }
    f.finish()?;
    Ok((length, decay_after))
}

fn data(v: &Value) -> R<DataDefault> {
    let want = "`Procedural`, `Folder(path: \"..\")` or `GoPro(root: \"..\")`";
    let Some((Some(name), fs)) = Fields::of(v, true) else {
        return Err(expected(v, want));
    };
    let text = |f: &mut Fields, field: &str| -> R<String> {
        let s = f.req(field)?;
        match &s.kind {
            Kind::Str(s) => Ok(s.clone()),
            _ => Err(expected(s, "a path in a string")),
        }
    };
    let mut f = Fields::new(name, v.span, fs);
    let d = match name {
        "Procedural" => DataDefault::Procedural,
        "Folder" => DataDefault::Folder(text(&mut f, "path")?),
        "GoPro" => DataDefault::GoPro(text(&mut f, "root")?),
        _ => return Err(expected(v, want)),
    };
    f.finish()?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use crate::front::parse;

    fn spec(training: &str) -> Result<super::TrainingSpec, String> {
        let src = format!(
            "Model(params: {{ H: 64 }}, graphs: {{ generator: Graph(inputs: {{ x: [1, 3, 8, 8] }}, nodes: {{ y: Relu(in: x) }}, outputs: {{ y: y }}) }},\n training: {training})"
        );
        let m = parse(&src, "t.ron", &[]).map_err(|e| e.to_string())?;
        m.training_spec().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_specs() {
        let t = spec("Training(critic: generator)").unwrap();
        let want = super::TrainingSpec {
            critic: Some("generator".into()),
            ..Default::default()
        };
        assert_eq!(t, want);
        assert_eq!(t.critic_steps, 5);
        assert_eq!(t.adam.beta1, 0.5);
        // The recipes are off; validation every sample_every steps.
        assert_eq!(
            (t.warmup, t.ema, t.content_loss.as_deref()),
            (0, None, None)
        );
        assert_eq!((t.validate_every, t.val_images, t.val_size), (500, 8, 128));
        assert_eq!(t.content_step_loss(), None);
        // A model without a graph `critic` trains without one, unless the section names one.
        assert_eq!(spec("Training()").unwrap().critic, None);
    }

    #[test]
    fn each_loss_graph_trains_its_own_network() {
        let t = super::TrainingSpec::default();
        assert_eq!(t.trained_prefix("critic_loss").as_deref(), Some("critic."));
        assert_eq!(
            t.trained_prefix("generator_loss").as_deref(),
            Some("generator.")
        );
        assert_eq!(t.trained_prefix("generator"), None);
    }

    #[test]
    fn fields_are_read_with_parameters() {
        let t = spec(
            "Training(crop: H, schedule: Schedule(steps: 10, decay_after: 0.25), seed: 7, \
             optimizer: Adam(lr: 2e-4), data: Folder(path: \"imgs\"))",
        )
        .unwrap();
        assert_eq!(t.crop, 64);
        assert_eq!(t.length, super::Length::Steps(10));
        assert_eq!(t.decay_after, 0.25);
        assert_eq!(t.seed, 7);
        assert_eq!(t.adam.lr, 2e-4);
        assert_eq!(t.adam.beta2, 0.999);
        assert_eq!(t.data, super::DataDefault::Folder("imgs".into()));
    }

    #[test]
    fn mistakes_name_the_place() {
        assert_eq!(
            spec("Training(critic_step: 5)").unwrap_err(),
            "t.ron:2:21: error: Training has no field `critic_step`; expected one of generator, critic, critic_loss, generator_loss, content_loss, critic_steps, batch, crop, sample_every, checkpoint_every, seed, optimizer, schedule, data, warmup, validate_every, val_images, val_size, ema, val_data"
        );
        assert_eq!(
            spec("Training(optimizer: Adam(beta1: 1.5))").unwrap_err(),
            "t.ron:2:44: error: Adam `beta1` must be in [0, 1), found 1.5"
        );
        assert_eq!(
            spec("Training(generator_loss: gl)").unwrap_err(),
            "t.ron:2:37: error: `generator_loss` names no graph `gl`; the model has: generator"
        );
        assert_eq!(
            spec("Training(schedule: Schedule(steps: 3, epochs: 2))").unwrap_err(),
            "t.ron:2:58: error: Schedule takes `steps` or `epochs`, not both"
        );
        assert_eq!(
            spec("Training(data: Cifar)").unwrap_err(),
            "t.ron:2:27: error: expected `Procedural`, `Folder(path: \"..\")` or `GoPro(root: \"..\")`, found `Cifar`"
        );
    }

    /// Every value `irdc train` (and so `irdc check`) refuses, with the range it allows.
    #[test]
    fn each_bad_value_is_refused_with_its_range() {
        #[rustfmt::skip]
        let cases = [
            ("Training(batch: 0)", 28, "`batch` must be a whole number >= 1, found 0"),
            ("Training(crop: 0)", 27, "`crop` must be a whole number >= 4, found 0"),
            ("Training(crop: -16)", 27, "`crop` must be a whole number >= 4, found -16"),
            ("Training(critic_steps: 0)", 35, "`critic_steps` must be a whole number >= 1, found 0"),
            ("Training(sample_every: 0)", 35, "`sample_every` must be a whole number >= 1, found 0"),
            ("Training(checkpoint_every: 0)", 39, "`checkpoint_every` must be a whole number >= 1, found 0"),
            ("Training(batch: 1.5)", 28, "`batch` must be a whole number >= 1, found 1.5"),
            ("Training(seed: -1)", 27, "`seed` must be a whole number >= 0, found -1"),
            ("Training(optimizer: Adam(lr: -1))", 41, "Adam `lr` must be >= 0, found -1"),
            ("Training(optimizer: Adam(eps: 0))", 42, "Adam `eps` must be > 0, found 0"),
            ("Training(optimizer: Adam(eps: -1e-8))", 42, "Adam `eps` must be > 0, found -0.00000001"),
            ("Training(optimizer: Adam(beta1: -0.5))", 44, "Adam `beta1` must be in [0, 1), found -0.5"),
            ("Training(optimizer: Adam(beta2: 1))", 44, "Adam `beta2` must be in [0, 1), found 1"),
            ("Training(schedule: Schedule(steps: 0))", 47, "`steps` must be a whole number >= 1, found 0"),
            ("Training(schedule: Schedule(epochs: 0))", 48, "`epochs` must be a whole number >= 1, found 0"),
            ("Training(schedule: Schedule(decay_after: 2.5))", 53, "`decay_after` is a fraction of the run in [0, 1], found 2.5"),
            ("Training(schedule: Schedule(decay_after: -0.1))", 53, "`decay_after` is a fraction of the run in [0, 1], found -0.1"),
        ];
        for (training, at, message) in cases {
            assert_eq!(
                spec(training).unwrap_err(),
                format!("t.ron:2:{at}: error: {message}"),
                "{training}"
            );
        }
    }
}
