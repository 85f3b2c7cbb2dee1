//! Streamed runs against whole-image runs, both through the CPU reference: the stages, halos,
//! windows and plane ops must give the whole image's result (exactly up to the order of sums).

use compiler::stream::{self, StageRunner, StreamPlan};
use ir::{Graph, Tensor};
use std::collections::HashMap;

fn model(file: &str, sets: &[(&str, &str)]) -> ir::front::Model {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(file);
    let sets: Vec<(String, String)> = (sets.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ir::front::load(&path, &sets).unwrap()
}

fn build(model: &ir::front::Model, input: &str, h: usize, w: usize) -> Graph {
    let shapes = [(input.to_string(), vec![1, 3, h, w])];
    model
        .build_with("generator", &shapes, &compiler::differentiate::Autodiff)
        .unwrap()
}

/// The CPU reference on each window, with the weights fed by node name.
struct Cpu<'a> {
    plan: &'a StreamPlan,
    params: &'a HashMap<String, Tensor<f32>>,
    windows: usize,
}

impl StageRunner for Cpu<'_> {
    fn run(&mut self, k: usize, inputs: Vec<Tensor<f32>>) -> Result<Vec<Tensor<f32>>, String> {
        let stage = &self.plan.stages[k];
        let mut feeds = self.params.clone();
        for (&u, t) in stage.reads.iter().zip(inputs) {
            feeds.insert(self.plan.graph.nodes[u].name.clone(), t);
        }
        let values = ir::cpu::evaluate(&stage.graph, &feeds)?;
        self.windows += 1;
        Ok(stage
            .graph
            .outputs
            .iter()
            .map(|&(_, o)| values[o].clone())
            .collect())
    }
}

/// Parameters that start at zero (biases, NAFNet's residual scales, which make each block the
/// identity) filled with small values, so that every op shows in the result.
fn nonzero(mut t: Tensor<f32>) -> Tensor<f32> {
    if t.data.iter().all(|&v| v == 0.0) {
        for (i, v) in t.data.iter_mut().enumerate() {
            *v = 0.2 * (i as f32 * 0.7 + 0.3).sin();
        }
    }
    t
}

/// A smooth image with some texture, in [-1, 1].
fn image(h: usize, w: usize) -> Tensor<f32> {
    let data = (0..3 * h * w)
        .map(|i| {
            let (c, y, x) = (i / (h * w), (i / w) % h, i % w);
            ((x as f32 * 0.3 + c as f32).sin() * (y as f32 * 0.17).cos()).clamp(-1.0, 1.0)
        })
        .collect();
    Tensor::new(&[1, 3, h, w], data)
}

/// Plan `model` for `window`, run an `h` x `w` image streamed and whole; the largest difference
/// and how many windows ran.
fn streamed_against_whole(
    model: &ir::front::Model,
    window: [usize; 2],
    (h, w): (usize, usize),
) -> (f32, usize) {
    let input = model.input_shapes("generator").unwrap()[0].0.clone();
    let at_window = build(model, &input, window[0], window[1]);
    let at_double = build(model, &input, 2 * window[0], 2 * window[1]);
    let plan = stream::plan(&at_window, &at_double, window).unwrap();
    let params: HashMap<String, Tensor<f32>> = (ir::init::init_params(&plan.graph, 7).into_iter())
        .map(|(name, t)| (name, nonzero(t)))
        .collect();
    let whole = build(model, &input, h, w);
    let mut feeds = params.clone();
    feeds.insert(input, image(h, w));
    let values = ir::cpu::evaluate(&whole, &feeds).unwrap();
    let expected = &values[whole.outputs[0].1];
    let moved = (expected.data.iter().zip(&image(h, w).data))
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        moved > 1e-2,
        "the network leaves the image as it is: nothing is tested"
    );
    let mut cpu = Cpu {
        plan: &plan,
        params: &params,
        windows: 0,
    };
    let got = stream::run(&plan, image(h, w), &mut cpu, &mut |_, _| {}).unwrap();
    assert_eq!(got.shape, expected.shape);
    let diff = (got.data.iter().zip(&expected.data))
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    (diff, cpu.windows)
}

#[test]
fn ird_gan_streamed_in_windows_equals_the_whole_image() {
    // Windows of 48 with halos up to 20 keep 8 to 40 pixels each: a 72x100 image takes
    // several windows per stage on both axes, edges and inner windows alike.
    let m = model("ird_gan.ron", &[("N", "2")]);
    let (diff, windows) = streamed_against_whole(&m, [48, 48], (72, 100));
    println!("diff {diff} windows {windows}");
    assert!(diff < 1e-4, "largest difference {diff}");
    assert!(windows > 100, "only {windows} windows ran");
}

#[test]
fn nafnet_streamed_in_windows_equals_the_whole_image() {
    // NAFNet's attention takes a global mean of each channel: a plane op between stages.
    let m = model(
        "nafnet.ron",
        &[("width", "2"), ("enc4", "1"), ("H", "64"), ("W", "64")],
    );
    let (diff, windows) = streamed_against_whole(&m, [256, 256], (288, 336));
    println!("diff {diff} windows {windows}");
    assert!(diff < 1e-4, "largest difference {diff}");
    assert!(windows > 10, "only {windows} windows ran");
}

/// A graph of one input, an image `side` pixels square, named `x`.
fn image_graph(name: &str, side: usize) -> Graph {
    let mut g = Graph {
        name: name.into(),
        ..Graph::default()
    };
    g.nodes.push(ir::Node {
        name: "x".into(),
        op: ir::Op::Input { name: "x".into() },
        inputs: vec![],
        shape: vec![1, 3, side, side],
    });
    g
}

/// Softmax along a row at one image size.
fn row_softmax(side: usize) -> Graph {
    let mut g = image_graph("rows", side);
    let y = (g.push("y", ir::Op::Softmax(ir::ops::Softmax { axis: 3 }), vec![0])).unwrap();
    g.outputs.push(("y".into(), y));
    g
}

#[test]
fn a_graph_that_mixes_whole_rows_is_refused_with_the_op_named() {
    let err = stream::plan(&row_softmax(16), &row_softmax(32), [16, 16]).unwrap_err();
    assert_eq!(
        err,
        "`y` (softmax) mixes pixels from all over the image, so the graph cannot run window by \
         window; it runs on whole images only"
    );
}

#[test]
fn a_window_below_the_halos_is_refused_with_the_least_side() {
    let m = model("ird_gan.ron", &[("N", "2")]);
    let (a, b) = (build(&m, "blurred", 24, 24), build(&m, "blurred", 48, 48));
    let err = stream::plan(&a, &b, [24, 24]).unwrap_err();
    assert!(
        err.starts_with("a window of 24x24 is too small: windows need sides that are multiples of 4 and at least "),
        "{err}"
    );
}

/// An image plus a constant image of the same size.
fn plus_constant(side: usize) -> Graph {
    let mut g = image_graph("plus", side);
    let shape = vec![1, 3, side, side];
    let values = vec![0.5; 3 * side * side];
    let c = (g.push("c", ir::Op::Const(ir::ops::Const { shape, values }), vec![])).unwrap();
    let add = ir::Op::Binary(ir::ops::Binary::Add);
    let y = g.push("sum", add, vec![0, c]).unwrap();
    g.outputs.push(("sum".into(), y));
    g
}

#[test]
fn a_constant_that_grows_with_the_image_is_refused() {
    let err = stream::plan(&plus_constant(16), &plus_constant(32), [16, 16]).unwrap_err();
    assert_eq!(
        err,
        "`c` is a parameter or constant that grows with the image; a streamed run cannot cut it \
         into windows"
    );
}
