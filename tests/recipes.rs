//! The training section's recipes each learn: a tiny IRD-GAN (N = 4, ndf = 4, 16x16 crops, no
//! perceptual loss, one critic step), trained from a fixed seed through the trainer API as
//! tests/learning.rs does, must bring the generator's L1 error on held-out procedural pairs at
//! least 10% below the untrained one, with a warm-up on the content loss, with no critic at all,
//! and with the moving average of its weights (what `generate` then uses). And the run keeps
//! `best.safetensors` at the step of the best validation PSNR, whose weights give that PSNR.

use runtime::data::{self, DataSpec, Split};
use runtime::train::{run, Event, RunOptions, Trainer, Validator};
use std::collections::HashMap;

const SETS: [(&str, &str); 5] = [
    ("N", "4"),
    ("ndf", "4"),
    ("per_weight", "0"),
    ("H", "16"),
    ("W", "16"),
];
const STEPS: u64 = 25;
const LR: f64 = 3e-3;
const HELD_OUT: u64 = 8;

fn model_source(edits: &[(&str, &str)]) -> String {
    let mut s = std::fs::read_to_string("models/ird_gan.ron")
        .unwrap()
        .replace("critic_steps: 5", "critic_steps: 1");
    for (from, to) in edits {
        assert!(s.contains(from), "models/ird_gan.ron has no `{from}`");
        s = s.replace(from, to);
    }
    s
}

fn model(edits: &[(&str, &str)]) -> ir::front::Model {
    let sets: Vec<(String, String)> = (SETS.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ir::front::parse(&model_source(edits), "models/ird_gan.ron", &sets).unwrap()
}

/// Mean absolute error of G(blurred) against sharp over the first `HELD_OUT` held-out pairs.
fn held_out_l1(trainer: &Trainer, test: &dyn data::Source) -> f64 {
    let mut sum = 0.0;
    let mut count = 0usize;
    for i in 0..HELD_OUT {
        let pair = test.pair(i).unwrap();
        let out = trainer.generate(&pair.blurred.data).unwrap();
        sum += (out.iter().zip(&pair.sharp.data))
            .map(|(a, b)| (a - b).abs() as f64)
            .sum::<f64>();
        count += out.len();
    }
    sum / count as f64
}

/// Train `STEPS` steps with the model edited by `edits`; the held-out L1 before and after, and
/// how many critic steps each step made.
fn learn(edits: &[(&str, &str)], check: impl Fn(&Trainer)) -> (f64, f64, Vec<usize>) {
    let model = model(edits);
    let spec = model.training_spec().unwrap();
    let gpu = runtime::Gpu::new().unwrap();
    let mut trainer = Trainer::new(&gpu, &model, &spec, &HashMap::new()).unwrap();
    check(&trainer);
    let procedural = DataSpec::Procedural {
        size: 16,
        noise: 0.0,
        blur_scale: 1.0,
    };
    let train = data::open(&procedural, Split::Train, Some(16), spec.seed).unwrap();
    let test = data::open(&procedural, Split::Test, Some(16), spec.seed).unwrap();
    let before = held_out_l1(&trainer, test.as_ref());
    let mut critic_steps = Vec::new();
    for step in 0..STEPS {
        let pair = train.pair(step).unwrap();
        let alphas = match trainer.is_content_step(step) {
            true => vec![],
            false => vec![vec![0.5]],
        };
        let losses =
            (trainer.step(step, &pair.blurred.data, &pair.sharp.data, &alphas, LR)).unwrap();
        assert!(losses.non_finite().is_none(), "step {step}: {losses:?}");
        critic_steps.push(losses.critic.len());
    }
    let after = held_out_l1(&trainer, test.as_ref());
    eprintln!("{edits:?}: held-out L1 {before:.4} before, {after:.4} after {STEPS} steps");
    assert!(
        after < 0.9 * before,
        "{edits:?}: held-out L1 {before:.4} -> {after:.4}: expected at least 10% lower"
    );
    (before, after, critic_steps)
}

#[test]
fn a_warm_up_on_the_content_loss_learns_then_the_critic_joins() {
    let (_, _, critic) = learn(&[("warmup: 0,", "warmup: 15,")], |t| {
        assert!(t.has_critic());
    });
    assert_eq!(critic, [vec![0; 15], vec![1; 10]].concat());
}

#[test]
fn without_a_critic_the_content_loss_alone_learns() {
    let (_, _, critic) = learn(&[("critic: critic,", "critic: None,")], |t| {
        assert!(!t.has_critic());
        assert_eq!(t.counts()[1], 0, "no critic parameters");
        assert_eq!(t.part_names(), ["l1"]);
    });
    assert_eq!(critic, vec![0; STEPS as usize]);
}

#[test]
fn the_moving_average_of_the_weights_learns_too() {
    let (_, _, critic) = learn(&[("ema: 0,", "ema: 0.8,")], |t| {
        assert_eq!(t.spec.ema, Some(0.8));
    });
    assert_eq!(critic, vec![1; STEPS as usize]);
}

#[test]
fn best_checkpoint_is_the_step_of_the_best_validation_psnr() {
    let dir = std::env::temp_dir().join(format!("irdc-recipes-best-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let edits = [
        ("critic: critic,", "critic: None,"),
        ("validate_every: 500", "validate_every: 1"),
        ("val_size: 128", "val_size: 16"),
        ("val_images: 8", "val_images: 2"),
    ];
    let data = DataSpec::Procedural {
        size: 16,
        noise: 0.0,
        blur_scale: 1.0,
    };
    let opts = RunOptions {
        model_source: model_source(&edits),
        model_path: "models/ird_gan.ron".into(),
        sets: (SETS.iter())
            .map(|(k, v)| format!("{k}={v}"))
            .chain(["lr=0.01".to_string()])
            .collect(),
        data: data.clone(),
        out: dir.clone(),
        total_steps: 6,
        resume: false,
        frozen: HashMap::new(),
        debug_nan_at: None,
        stop_after: None,
        validation: Default::default(),
    };
    let gpu = runtime::Gpu::new().unwrap();
    let mut improved = Vec::new();
    run(&gpu, &opts, &mut |e| {
        if let Event::Validated { step, best, .. } = e {
            if best.is_some() {
                improved.push(step);
            }
        }
    })
    .unwrap();
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let psnr: Vec<f64> = (csv.lines().skip(1))
        .map(|l| l.split(',').nth(col("val_psnr")).unwrap().parse().unwrap())
        .collect();
    assert_eq!(psnr.len(), 6, "{csv}");
    // The first step of the highest PSNR; a line for every step that improved on all before it.
    let best_step = (1..=6).fold(1, |b, s| if psnr[s - 1] > psnr[b - 1] { s } else { b }) as u64;
    let mut record = f64::NEG_INFINITY;
    let want: Vec<u64> = (1..=6u64)
        .filter(|&s| {
            let better = psnr[s as usize - 1] > record;
            record = record.max(psnr[s as usize - 1]);
            better
        })
        .collect();
    assert_eq!(improved, want, "{csv}");
    let best = dir.join("best.safetensors");
    let meta = runtime::checkpoint::metadata(&best).unwrap();
    assert_eq!(meta["step"], best_step.to_string(), "{csv}");
    assert_eq!(
        meta["val_psnr"].parse::<f64>().unwrap(),
        psnr[best_step as usize - 1]
    );

    // Its weights give that PSNR again, on the same validation set.
    let (tensors, _) = runtime::checkpoint::load(&best).unwrap();
    let model = model(&edits);
    let spec = model.training_spec().unwrap();
    let mut trainer = Trainer::new(&gpu, &model, &spec, &HashMap::new()).unwrap();
    trainer.load_state(&tensors).unwrap();
    let pairs = runtime::train::validate::validation_pairs(&data, &spec, None, 2).unwrap();
    let (scores, _) = Validator::new(&trainer, &model, pairs)
        .unwrap()
        .run(&trainer)
        .unwrap();
    assert_eq!(scores.psnr, psnr[best_step as usize - 1]);
    let _ = std::fs::remove_dir_all(&dir);
}
