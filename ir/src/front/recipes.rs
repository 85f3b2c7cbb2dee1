//! The recipe and validation fields of the `training:` section (models/README.md "Training"):
//! `content_loss`, `warmup`, `critic: None`, `ema`, `validate_every`, `val_images`, `val_size`,
//! `val_data`. The recipes are not docs/spec.md's paper, so every one is off by default.

use super::error::{Diag, R};
use super::expr::Env;
use super::fields::{self, expected, Fields};
use super::syntax::Kind;
use super::TrainingSpec;

/// Defaults that depend on the model: no graph `critic` (and no `critic` field) means no critic;
/// a graph `content_loss` is the content loss unless the section names one.
pub(super) fn recipe_defaults(t: &mut TrainingSpec, graphs: &[String], critic_given: bool) {
    let has = |n: &str| graphs.iter().any(|g| g == n);
    if !critic_given && !has("critic") {
        t.critic = None;
    }
    if t.content_loss.is_none() && has("content_loss") {
        t.content_loss = Some("content_loss".into());
    }
}

/// The recipe and validation fields (warm-up, EMA, validation set), checked.
pub(super) fn recipes(f: &mut Fields, t: &mut TrainingSpec, env: &Env) -> R<()> {
    t.validate_every = t.sample_every;
    if let Some(n) = f.get("warmup") {
        t.warmup = fields::whole(n, env, "warmup", 0)?;
        if t.warmup > 0 && t.content_loss.is_none() && t.critic.is_some() {
            return Err(Diag::at(
                n.span,
                "`warmup` trains the generator on a content loss alone: name that graph with \
                 `content_loss: ..` (inputs blurred, sharp; output loss; no critic), or add a graph \
                 `content_loss` to the model",
            ));
        }
    }
    for (field, slot, min) in [
        ("validate_every", &mut t.validate_every, 1),
        ("val_images", &mut t.val_images, 1),
        // SSIM's window is 11x11.
        ("val_size", &mut t.val_size, 16),
    ] {
        if let Some(n) = f.get(field) {
            *slot = fields::whole(n, env, field, min)?;
        }
    }
    if let Some(n) = f.get("ema") {
        let d = fields::num(n, env)?;
        if !(0.0..1.0).contains(&d) {
            return Err(Diag::at(
                n.span,
                format!("`ema` is the decay of the generator's moving average, in (0, 1) (e.g. 0.999), or 0 for none, found {d}"),
            ));
        }
        t.ema = (d > 0.0).then_some(d);
    }
    if let Some(d) = f.get("val_data") {
        match &d.kind {
            Kind::Str(s) => t.val_data = Some(s.clone()),
            _ => return Err(expected(d, "a folder of validation pairs in a string")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::front::parse;

    fn spec(training: &str) -> Result<crate::front::TrainingSpec, String> {
        let src = format!(
            "Model(params: {{ H: 64 }}, graphs: {{ generator: Graph(inputs: {{ x: [1, 3, 8, 8] }}, nodes: {{ y: Relu(in: x) }}, outputs: {{ y: y }}) }},\n training: {training})"
        );
        let m = parse(&src, "t.ron", &[]).map_err(|e| e.to_string())?;
        m.training_spec().map_err(|e| e.to_string())
    }

    #[test]
    fn recipes_and_validation_are_read_and_checked() {
        let t = spec(
            "Training(critic: None, ema: 0.999, sample_every: 50, val_images: 3, val_size: H, \
             val_data: \"gopro\")",
        )
        .unwrap();
        assert_eq!(t.critic, None);
        assert_eq!(t.ema, Some(0.999));
        assert_eq!(t.validate_every, 50, "follows sample_every");
        assert_eq!((t.val_images, t.val_size), (3, 64));
        assert_eq!(t.val_data.as_deref(), Some("gopro"));
        // Without a critic the content steps train on generator_loss unless content_loss is named.
        assert_eq!(t.content_step_loss(), Some("generator_loss"));
        let t = spec("Training(critic: None, content_loss: generator, validate_every: 7)").unwrap();
        assert_eq!(t.content_step_loss(), Some("generator"));
        assert_eq!(t.trained_prefix("generator").as_deref(), Some("generator."));
        assert_eq!(t.validate_every, 7);
        let t = spec("Training(critic: generator, warmup: 10, content_loss: generator)").unwrap();
        assert_eq!((t.warmup, t.content_step_loss()), (10, Some("generator")));
        assert_eq!(
            spec("Training(critic: generator, warmup: 10)").unwrap_err(),
            "t.ron:2:48: error: `warmup` trains the generator on a content loss alone: name that graph with `content_loss: ..` (inputs blurred, sharp; output loss; no critic), or add a graph `content_loss` to the model"
        );
        assert_eq!(
            spec("Training(ema: 1)").unwrap_err(),
            "t.ron:2:26: error: `ema` is the decay of the generator's moving average, in (0, 1) (e.g. 0.999), or 0 for none, found 1"
        );
        assert_eq!(spec("Training(ema: 0)").unwrap().ema, None);
        assert!(spec("Training(val_size: 8)")
            .unwrap_err()
            .contains("val_size"));
        assert!(spec("Training(val_data: gopro)")
            .unwrap_err()
            .contains("expected a folder of validation pairs in a string"));
    }
}
