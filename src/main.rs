//! `irdc`: the command line. A thin front over the `ir`, `compiler` and `runtime` crates; each
//! subcommand lives in its own file under `src/cmd/`; `irdc import`'s ONNX reader is `import/`.

mod cmd;
mod import;
mod mpi;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "irdc",
    version,
    about = "A dataflow-graph compiler with its own autodiff, running WGSL on any GPU (or lavapipe)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The built-in default job: train a small IRD-GAN on procedural images for a few minutes, then deblur held-out pairs and print PSNR/SSIM.
    Demo(cmd::demo::Args),
    /// Validate a model file and print a summary of each graph.
    Check(cmd::check::Args),
    /// List a graph's parameters (name, shape, count) and their total.
    Params(cmd::params::Args),
    /// Show the compiled plan of a graph: kernels in order and the memory plan.
    Plan(cmd::plan::Args),
    /// Run a graph on the GPU (or lavapipe) on inputs from a safetensors file.
    Run(cmd::run::Args),
    /// The gradients of a graph's output w.r.t. its parameters and inputs, computed on the GPU.
    Grad(cmd::grad::Args),
    /// Time a graph (or a training step) kernel by kernel: GPU time, FLOPs, bytes, rates.
    Profile(cmd::profile::Args),
    /// Make blurred/sharp pairs (GoPro layout) from a folder of sharp images with the synthetic motion blur.
    Blur(cmd::blur::Args),
    /// Deblur images (files or folders) with a trained checkpoint's generator; PNGs out.
    Deblur(cmd::deblur::Args),
    /// PSNR and SSIM of a checkpoint on a GoPro-style test set, against the blurred inputs.
    Eval(cmd::eval::Args),
    /// Train a model's generator and critic (WGAN-GP) on the GPU, with checkpoints and metrics.
    Train(cmd::train::Args),
    /// An ONNX model as a model file (one graph, `model`) and its initialisers as parameters.
    Import(cmd::import::Args),
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => cmd::demo::main(a),
        Command::Check(a) => cmd::check::main(a),
        Command::Params(a) => cmd::params::main(a),
        Command::Plan(a) => cmd::plan::main(a),
        Command::Run(a) => cmd::run::main(a),
        Command::Grad(a) => cmd::grad::main(a),
        Command::Profile(a) => cmd::profile::main(a),
        Command::Blur(a) => cmd::blur::main(a),
        Command::Deblur(a) => cmd::deblur::main(a),
        Command::Eval(a) => cmd::eval::main(a),
        Command::Train(a) => cmd::train::main(a),
        Command::Import(a) => cmd::import::main(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain on one line, like a compiler's diagnostic: what failed, then why.
            // A model-file error at a position formats itself (`file:line:col: error: ...`),
            // wherever it sits in the chain.
            let text = chain(&e);
            match diagnostic_start(&text) {
                Some(at) => eprintln!("{}{}", &text[at..], prefix_note(&text[..at])),
                None => eprintln!("error: {text}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Where a `file:line:col: error: ` diagnostic starts in `text`, if it holds one.
fn diagnostic_start(text: &str) -> Option<usize> {
    let at = text.find(": error: ")?;
    let head = &text[..at];
    let mut parts = head.rsplitn(3, ':');
    let (col, line) = (parts.next()?, parts.next()?);
    let file = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(col) && digits(line)).then(|| file.rfind(": ").map_or(0, |i| i + 2))
}

/// What the callers added before a diagnostic (`while loading X: `), said after it.
fn prefix_note(before: &str) -> String {
    match before.trim_end_matches(": ") {
        "" => String::new(),
        what => format!(" (while {what})"),
    }
}

/// Writing to a closed pipe (`irdc check MODEL | head`) ends the process quietly, as it does
/// other command-line tools, instead of panicking inside `println!`.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first in `main`, before any thread exists; restores the default action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the message before
/// it already ends with (errors that show their source, such as an I/O error's, would
/// otherwise print it twice).
fn chain(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
