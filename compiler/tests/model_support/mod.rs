//! Shared by the tests that plan the shipped models: a graph of a model file, differentiated
//! where asked, and a target of a given kind with a subgroup size and bindings to spare.

#![allow(dead_code)] // each test binary uses part of it

use compiler::autodiff::{grad, sum_to_scalar};
use compiler::{DeviceKind, Limits, Overrides, Target};
use ir::{Graph, Op};

/// Graph `name` of `models/{model}` with `sets`, its input `input` of shape [1, 3, h, w]; with
/// `train`, the gradients of the sum of its output with respect to every parameter instead.
pub fn model_graph(
    (model, sets): (&str, &[(&str, &str)]),
    (name, input): (&str, &str),
    [h, w]: [usize; 2],
    train: bool,
) -> Graph {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../models/{model}"));
    let sets: Vec<(String, String)> = (sets.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let model = ir::front::load(&path, &sets).unwrap_or_else(|e| panic!("{e}"));
    let mut g =
        (model.build(name, &[(input.into(), vec![1, 3, h, w])])).unwrap_or_else(|e| panic!("{e}"));
    if train {
        let out = g.outputs[0].1;
        let wrt: Vec<usize> = (0..g.nodes.len())
            .filter(|&i| matches!(g.nodes[i].op, Op::Param { .. }))
            .collect();
        let s = sum_to_scalar(&mut g, out).unwrap();
        g = grad(&g, s, &wrt).unwrap().0;
    }
    g
}

/// A device of `kind` with 8-lane subgroups and 48 storage buffers a stage, `overrides` applied.
pub fn target(kind: DeviceKind, overrides: &Overrides) -> Target {
    let limits = Limits {
        subgroup_size: 8,
        max_storage_buffers_per_stage: 48,
        ..Limits::default()
    };
    Target::new(limits, kind, overrides)
}
