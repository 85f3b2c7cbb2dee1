//! The command line's rough edges, found by trying bad input: a closed pipe, output printed
//! before a later failure, an image size a graph cannot take, an error said twice.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn irdc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irdc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("irdc-edges-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn a_closed_pipe_ends_check_quietly() {
    // `irdc check MODEL | head -c 1`: the reader goes away after one byte.
    let mut child = Command::new(env!("CARGO_BIN_EXE_irdc"))
        .args(["check", "models/ird_gan.ron", "--set", "N=8"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err, "");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        // Done before the pipe closed, or ended by SIGPIPE as other tools are.
        assert!(
            o.status.success() || o.status.signal() == Some(13),
            "{:?}",
            o.status
        );
    }
}

#[test]
fn check_says_ok_only_when_every_graph_builds() {
    let model = scratch("second_graph_fails.ron");
    std::fs::write(
        &model,
        r#"Model(
    graphs: {
        good: Graph(inputs: { x: [1, 3, 8, 8] }, nodes: { y: Relu(in: x) }, outputs: { y: y }),
        bad: Graph(
            inputs: { x: [1, 3, 8, 8], z: [1, 3, 4, 4] },
            nodes: { y: Add(a: x, b: z) },
            outputs: { y: y },
        ),
    },
)"#,
    )
    .unwrap();
    let o = irdc(&["check", model.to_str().unwrap()]);
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
    assert_eq!(
        stderr(&o).trim_end(),
        format!(
            "{}:6:25: error: in bad.y: add: shapes [1, 3, 8, 8] and [1, 3, 4, 4] do not broadcast",
            model.display()
        )
    );
}

#[test]
fn a_size_the_generator_cannot_take_says_which_it_can() {
    let o = irdc(&[
        "plan",
        "models/ird_gan.ron",
        "--set",
        "N=8",
        "--graph",
        "generator",
        "--input",
        "blurred=1x3x62x62",
    ]);
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o).trim_end(),
        "models/ird_gan.ron:132:23: error: graph generator takes heights and widths that are \
         multiples of 4: `blurred` is 62x62 (try 60x60 or 64x64); at the size given: in \
         generator.skip: add: shapes [1, 3, 62, 62] and [1, 3, 64, 64] do not broadcast"
    );
}

#[test]
fn an_error_from_inside_training_is_said_once() {
    // The training section's graphs are built by the trainer, which wraps the model's error.
    let out = scratch("run62");
    let o = irdc(&[
        "train",
        "models/ird_gan.ron",
        "--set",
        "N=8",
        "--set",
        "ndf=8",
        "--set",
        "per_weight=0",
        "--set",
        "H=62",
        "--set",
        "W=62",
        "--steps",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(
        err.trim_end().ends_with(
            "models/ird_gan.ron:132:23: error: graph generator takes heights and widths that \
             are multiples of 4: `blurred` is 62x62 (try 60x60 or 64x64); at the size given: in \
             generator.skip: add: shapes [1, 3, 62, 62] and [1, 3, 64, 64] do not broadcast"
        ),
        "{err}"
    );
}
