//! The elementwise table against known values, shapes and broadcasting, and each op's
//! gradient against finite differences.

use super::*;

/// Parse and validate `fn f(x, a, b) -> f32 { return EXPR; }` with naga, beside the helpers
/// kernels get ([`ERF_WGSL`]).
fn wgsl_ok(expr: &str) -> Result<(), String> {
    let src = format!("{ERF_WGSL}\nfn f(x: f32, a: f32, b: f32) -> f32 {{ return {expr}; }}");
    let module = naga::front::wgsl::parse_str(&src)
        .map_err(|e| format!("{expr}: {}", e.emit_to_string(&src)))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .map_err(|e| format!("{expr}: {e:?}"))?;
    Ok(())
}

#[test]
fn wgsl_of_every_op_is_valid() {
    for u in Unary::examples() {
        wgsl_ok(&u.wgsl("x")).unwrap();
        wgsl_ok(&u.wgsl("a - b")).unwrap();
    }
    for b in Binary::ALL {
        wgsl_ok(&b.wgsl("a", "b")).unwrap();
        wgsl_ok(&b.wgsl("x - a", "-b")).unwrap();
    }
    // Composition: an op's expression is a valid argument of another.
    wgsl_ok(
        &Unary::Neg.wgsl(
            &Binary::Sub.wgsl(
                &Unary::Affine {
                    scale: 2.0,
                    shift: -1.0,
                }
                .wgsl("x"),
                "b",
            ),
        ),
    )
    .unwrap();
    // The check itself catches what WGSL rejects: an f64 suffix, an integer in f32 context.
    assert!(wgsl_ok("max(x, 0.2f64)").is_err());
    assert!(wgsl_ok("x - -1.0").is_ok() && wgsl_ok("x--1.0").is_err());
}

#[test]
fn wgsl_text() {
    assert_eq!(Unary::Relu.wgsl("x"), "max(x, 0.0)");
    assert_eq!(Unary::Neg.wgsl("a - b"), "(-(a - b))");
    assert_eq!(
        Unary::LeakyRelu { slope: 0.2 }.wgsl("v"),
        "select(v * 0.2, v, v > 0.0)"
    );
    assert_eq!(Binary::Sub.wgsl("a", "b + 1.0"), "(a - (b + 1.0))");
    assert_eq!(Unary::Step.wgsl("x"), "select(0.0, 1.0, x > 0.0)");
    assert_eq!(
        Unary::InRange {
            min: -1.0,
            max: 1.0
        }
        .wgsl("a - b"),
        "select(0.0, 1.0, (a - b) >= (-1.0) && (a - b) <= 1.0)"
    );
    assert_eq!(Unary::Recip.wgsl("x"), "(1.0 / x)");
    assert_eq!(wgsl_f32(0.2), "0.2");
    assert_eq!(wgsl_f32(1e-5), "1e-5");
    assert_eq!(wgsl_f32(1.0), "1.0");
    assert_eq!(wgsl_f32(-0.0), "0.0");
    assert_eq!(wgsl_f32(-2.5), "(-2.5)");
    assert_eq!(wgsl_f32(1e20), "1e20");
    for v in [0.2, 1e-5, 1.0, -2.5, 1e20, 3.0e-40, 123456.789] {
        wgsl_ok(&format!("x * {}", wgsl_f32(v))).unwrap();
    }
}

#[test]
fn unary_meaning() {
    let cases: &[(Unary, f64, f64)] = &[
        // The activations against values from PyTorch / scipy.special.
        (Unary::Sigmoid, 0.0, 0.5),
        (Unary::Sigmoid, -800.0, 0.0),
        (Unary::Silu, 1.0, 0.731_058_578_630_004_9),
        (Unary::Softplus, 0.0, std::f64::consts::LN_2),
        (Unary::Softplus, 800.0, 800.0),
        (Unary::Erf, 0.5, 0.520_499_877_813_046_5),
        (Unary::Gelu, 1.0, 0.841_344_746_068_542_9),
        (Unary::Gelu, -1.0, -0.158_655_253_931_457_05),
        (Unary::GeluTanh, 1.0, 0.841_191_990_608_276_8),
        (Unary::Relu, -2.0, 0.0),
        (Unary::Relu, 3.0, 3.0),
        (Unary::LeakyRelu { slope: 0.2 }, -2.0, -0.4),
        (Unary::LeakyRelu { slope: 0.2 }, 3.0, 3.0),
        (Unary::Tanh, 0.5, 0.5f64.tanh()),
        (
            Unary::Clamp {
                min: -1.0,
                max: 1.0,
            },
            1.5,
            1.0,
        ),
        (
            Unary::Clamp {
                min: -1.0,
                max: 1.0,
            },
            -1.5,
            -1.0,
        ),
        (
            Unary::Clamp {
                min: -1.0,
                max: 1.0,
            },
            0.3,
            0.3,
        ),
        (Unary::Abs, -2.0, 2.0),
        (Unary::Neg, 2.0, -2.0),
        (Unary::Sqrt, 9.0, 3.0),
        (Unary::Square, -3.0, 9.0),
        (Unary::Exp, 1.0, std::f64::consts::E),
        (Unary::Log, std::f64::consts::E, 1.0),
        (Unary::Step, 0.5, 1.0),
        (Unary::Step, 0.0, 0.0),
        (Unary::Step, -0.5, 0.0),
        (Unary::LeakyStep { slope: 0.2 }, 0.5, 1.0),
        (Unary::LeakyStep { slope: 0.2 }, 0.0, 0.2),
        (Unary::LeakyStep { slope: 0.2 }, -3.0, 0.2),
        (Unary::Sign, -2.0, -1.0),
        (Unary::Sign, 0.0, 0.0),
        (Unary::Sign, 3.0, 1.0),
        (
            Unary::InRange {
                min: -1.0,
                max: 1.0,
            },
            1.0,
            1.0,
        ),
        (
            Unary::InRange {
                min: -1.0,
                max: 1.0,
            },
            -1.0,
            1.0,
        ),
        (
            Unary::InRange {
                min: -1.0,
                max: 1.0,
            },
            1.5,
            0.0,
        ),
        (
            Unary::InRange {
                min: -1.0,
                max: 1.0,
            },
            -1.5,
            0.0,
        ),
        (Unary::Recip, 4.0, 0.25),
        (
            Unary::Affine {
                scale: 0.5,
                shift: 0.5,
            },
            -1.0,
            0.0,
        ),
    ];
    for (op, x, want) in cases {
        let got = op.apply(*x);
        // Exact but for the activations' last bits.
        assert!(
            (got - want).abs() <= 1e-15 * want.abs().max(1.0),
            "{op:?}({x}) = {got}, not {want}"
        );
    }
    let x = Tensor::new(&[2, 2], vec![-1.0f32, 0.5, -0.25, 2.0]);
    assert_eq!(
        Unary::Relu.cpu(&[&x], &x.shape).data,
        vec![0.0, 0.5, 0.0, 2.0]
    );
}

#[test]
fn binary_meaning() {
    let ops = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Max,
        Binary::Min,
    ];
    let want = [5.0, -1.0, 6.0, 2.0 / 3.0, 3.0, 2.0];
    for (op, w) in ops.iter().zip(want) {
        assert_eq!(op.apply(2.0, 3.0), w, "{}", op.name());
    }
    assert_eq!(ops.len(), Binary::ALL.len());
}

#[test]
fn unary_shapes() {
    assert_eq!(Unary::Relu.shape(&[&[1, 3, 4, 4]]), Ok(vec![1, 3, 4, 4]));
    assert_eq!(Unary::Tanh.shape(&[&[5]]), Ok(vec![5]));
    assert_eq!(
        Unary::Relu.shape(&[]).unwrap_err(),
        "relu: expected 1 input (x), found 0"
    );
    assert_eq!(
        Unary::Clamp {
            min: 1.0,
            max: -1.0
        }
        .shape(&[&[4]])
        .unwrap_err(),
        "clamp: expected min <= max, found min 1.0, max -1.0"
    );
    assert_eq!(
        Unary::LeakyRelu {
            slope: f64::INFINITY
        }
        .shape(&[&[4]])
        .unwrap_err(),
        "leaky_relu: expected a finite f32 slope, found inf"
    );
    assert_eq!(
        Unary::Affine {
            scale: 1e300,
            shift: 0.0
        }
        .shape(&[&[4]])
        .unwrap_err(),
        "affine: expected a finite f32 scale, found 1e300"
    );
}

#[test]
fn broadcasting() {
    let add = Binary::Add;
    assert_eq!(
        add.shape(&[&[1, 32, 8, 8], &[1, 32, 8, 8]]),
        Ok(vec![1, 32, 8, 8])
    );
    assert_eq!(
        add.shape(&[&[1, 32, 8, 8], &[32, 1, 1]]),
        Ok(vec![1, 32, 8, 8])
    );
    assert_eq!(add.shape(&[&[2, 1, 1, 1], &[1]]), Ok(vec![2, 1, 1, 1]));
    assert_eq!(add.shape(&[&[3, 1], &[1, 4]]), Ok(vec![3, 4]));
    assert_eq!(add.shape(&[&[4], &[4]]), Ok(vec![4]));
    assert_eq!(
        add.shape(&[&[1, 32, 8, 8], &[1, 16, 8, 8]]).unwrap_err(),
        "add: shapes [1, 32, 8, 8] and [1, 16, 8, 8] do not broadcast"
    );
    assert_eq!(
        Binary::Mul.shape(&[&[1, 2]]).unwrap_err(),
        "mul: expected 2 inputs (a, b), found 1"
    );
    // [2, 1] - [1, 3]: every row of a against every column of b.
    let a = Tensor::new(&[2, 1], vec![10.0f64, 20.0]);
    let b = Tensor::new(&[1, 3], vec![1.0, 2.0, 3.0]);
    let y = Binary::Sub.cpu(&[&a, &b], &[2, 3]);
    assert_eq!(y.data, vec![9.0, 8.0, 7.0, 19.0, 18.0, 17.0]);
    // A per-channel [C, 1, 1] against [N, C, H, W].
    let x = Tensor::new(&[1, 2, 1, 2], vec![1.0f64, 2.0, 3.0, 4.0]);
    let s = Tensor::new(&[2, 1, 1], vec![10.0, 100.0]);
    assert_eq!(
        Binary::Mul.cpu(&[&x, &s], &[1, 2, 1, 2]).data,
        vec![10.0, 20.0, 300.0, 400.0]
    );
    assert_eq!(
        Binary::Max.cpu(&[&s, &x], &[1, 2, 1, 2]).data,
        vec![10.0, 10.0, 100.0, 100.0]
    );
}

#[test]
fn channel_affine() {
    let op = ChannelAffine {
        scale: vec![2.0, 3.0],
        shift: vec![1.0],
    };
    assert_eq!(op.shape(&[&[1, 2, 1, 2]]), Ok(vec![1, 2, 1, 2]));
    let x = Tensor::new(&[1, 2, 1, 2], vec![1.0f32, 2.0, 3.0, 4.0]);
    assert_eq!(op.cpu(&[&x], &x.shape).data, vec![3.0, 5.0, 10.0, 13.0]);
    assert_eq!(
        op.shape(&[&[1, 3, 4, 4]]).unwrap_err(),
        "channel_affine: expected 3 scale values (one per channel) or 1, found 2"
    );
    assert_eq!(
        op.shape(&[&[2, 4, 4]]).unwrap_err(),
        "channel_affine: expected an input of rank 4 [N, C, H, W], found [2, 4, 4]"
    );
}
