//! An irdc built without the `mpi` feature, started by an MPI launcher (which it knows by the
//! launcher's environment), refuses to run rather than train alone in each of K processes into
//! the same run directory (docs/mpi.md).
#![cfg(not(feature = "mpi"))]

use std::process::Command;

#[test]
fn a_build_without_mpi_refuses_to_run_under_mpirun() {
    let dir = std::env::temp_dir().join(format!("irdc-mpi-off-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join("in.png");
    image::RgbImage::new(8, 8).save(&image).unwrap();
    let out = dir.join("out");
    for (var, value) in [("OMPI_COMM_WORLD_SIZE", "2"), ("PMI_SIZE", "2")] {
        for command in ["train", "deblur"] {
            let args: Vec<&str> = match command {
                "train" => vec![
                    "train",
                    "models/ird_gan.ron",
                    "--out",
                    out.to_str().unwrap(),
                ],
                _ => vec![
                    "deblur",
                    "--checkpoint",
                    "none.safetensors",
                    image.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                ],
            };
            let o = Command::new(env!("CARGO_BIN_EXE_irdc"))
                .args(&args)
                .env(var, value)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{command} with {var}: {err}");
            assert!(
                err.contains("started by mpirun, but this irdc was built without MPI: build it with `cargo build --release --features mpi`"),
                "{command} with {var}: {err}"
            );
        }
    }
    assert!(!out.exists(), "a run directory was made");
}
