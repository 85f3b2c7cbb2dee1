//! One elementwise op (or a reindexing, a pixel shuffle: one load elsewhere) at (n, c, h, w) of
//! its output, in WGSL, over loads of its inputs: what an
//! elementwise kernel's `value` returns, what the accessor of an inlined value returns, and what
//! a convolution stored through its reader stores (`fuse.rs`). The ops' own expressions come
//! from their definitions (`Unary::wgsl`, `Binary::wgsl`), so each op is written once.

use ir::Op;
use std::fmt::Write;

/// Declarations (tables) to place at module scope, then a function body: `let`s and a value.
pub(super) struct Body {
    pub decls: String,
    lets: Vec<String>,
    pub expr: String,
}

impl Body {
    /// `signature { lets; return expr; }`.
    pub fn function(&self, signature: &str) -> String {
        let mut s = format!("{signature} {{\n");
        for l in &self.lets {
            let _ = writeln!(s, "    {l}");
        }
        let _ = writeln!(s, "    return {};\n}}", self.expr);
        s
    }

    /// The `let`s, one per line, indented for a function body.
    pub fn lets(&self) -> String {
        self.lets.iter().map(|l| format!("    {l}\n")).collect()
    }
}

/// `op` (output `shape`) at (n, c, h, w); `load(k, coords)` is the WGSL that loads input k at
/// `coords`, and `tables` prefixes the private tables the op needs. `channel_runs`: the caller
/// reads long runs of one channel (a convolution's input, channel-major in its k loop), so
/// per-channel values are worth remembering between calls.
pub(super) fn body(
    op: &Op,
    shape: &[usize],
    load: &dyn Fn(usize, &str) -> String,
    tables: &str,
    channel_runs: bool,
) -> Result<Body, String> {
    const AT: &str = "n, c, h, w";
    let at = |k: usize| load(k, AT);
    let mut decls = String::new();
    let (lets, expr) = match op {
        Op::Unary(o) => (vec![format!("let x = {};", at(0))], o.wgsl("x")),
        Op::Binary(o) => (
            vec![format!("let a = {};", at(0)), format!("let b = {};", at(1))],
            o.wgsl("a", "b"),
        ),
        Op::ChannelAffine(o) => {
            let channels = ir::shape4(shape)[1];
            // The op's rule: a list of one value stands for every channel (a VJP writes `shift: [0]`).
            let per_channel = |v: &[f64], what: &str| match v.len() {
                1 => Ok(vec![v[0]; channels]),
                n if n == channels => Ok(v.to_vec()),
                n => Err(format!(
                    "channel_affine: expected 1 or {channels} {what}, found {n}"
                )),
            };
            // Private tables rather than `const` arrays: indexing those with a runtime channel is
            // not accepted by every backend.
            decls.push_str(&table(
                &format!("{tables}_SCALE"),
                &per_channel(&o.scale, "scales")?,
            ));
            decls.push_str(&table(
                &format!("{tables}_SHIFT"),
                &per_channel(&o.shift, "shifts")?,
            ));
            (
                vec![format!("let x = {};", at(0))],
                format!("x * {tables}_SCALE[c] + {tables}_SHIFT[c]"),
            )
        }
        Op::InstanceNormApply(_) if !channel_runs => (
            vec![
                format!("let x = {};", at(0)),
                format!("let mean = {};", load(1, "n, c, 0u, 0u")),
                format!("let rstd = {};", load(1, "n, c, 0u, 1u")),
            ],
            "(x - mean) * rstd".to_string(),
        ),
        Op::InstanceNormApply(_) => {
            // The (n, c) statistics are remembered between calls: two loads less per element
            // for a compare, where the callers read long runs of one channel (a conv's loads;
            // not a weight gradient's, whose columns change channel on every call).
            let [_, channels, _, _] = ir::shape4(shape);
            let _ = writeln!(
                decls,
                "var<private> {tables}_key: u32 = 0xffffffffu;\n\
                 var<private> {tables}_mean: f32;\n\
                 var<private> {tables}_rstd: f32;"
            );
            (
                vec![
                    format!("let x = {};", at(0)),
                    format!("let key = n * {channels}u + c;"),
                    format!(
                        "if (key != {tables}_key) {{ {tables}_key = key; \
                         {tables}_mean = {}; {tables}_rstd = {}; }}",
                        load(1, "n, c, 0u, 0u"),
                        load(1, "n, c, 0u, 1u")
                    ),
                ],
                format!("(x - {tables}_mean) * {tables}_rstd"),
            )
        }
        Op::PlaneStat(o) => (vec![], load(0, &format!("n, c, 0u, {}u", o.index))),
        // Broadcast: the input's accessor ignores the coordinates of its size-1 dims.
        Op::Expand(_) => (vec![], at(0)),
        // PyTorch's element order: output channel c, row h*r + i, column w*r + j is input
        // channel c*r*r + i*r + j.
        Op::PixelShuffle(o) => {
            let r = o.factor;
            let at = format!(
                "n, c * {}u + (h % {r}u) * {r}u + w % {r}u, h / {r}u, w / {r}u",
                r * r
            );
            (vec![], load(0, &at))
        }
        Op::PixelUnshuffle(o) => {
            let r = o.factor;
            let at = format!(
                "n, c / {}u, h * {r}u + (c / {r}u) % {r}u, w * {r}u + c % {r}u",
                r * r
            );
            (vec![], load(0, &at))
        }
        other => {
            return Err(format!(
                "{}: not an elementwise op, so it cannot be computed in a load or a store",
                other.kind_name()
            ))
        }
    };
    Ok(Body { decls, lets, expr })
}

fn table(name: &str, v: &[f64]) -> String {
    let lits: Vec<String> = v.iter().map(|&x| ir::ops::wgsl_f32(x)).collect();
    let n = v.len();
    format!(
        "var<private> {name}: array<f32, {n}> = array<f32, {n}>({});\n",
        lits.join(", ")
    )
}
