//! The `Plan`: what the compiler hands the runtime, and what `irdc plan` shows a person. It is
//! plain data: kernels in order with the IR nodes each carries out, and where every value lives.

use crate::Target;
use ir::{NodeId, ValueKind};
use serde::Serialize;

/// The precision a convolution GEMM multiplies in. `F16` rounds the operands of the GEMMs that
/// stage them in workgroup memory (`shaders/gemm.wgsl`, the GPU tiles) to f16 as they are
/// staged, and keeps the sums in f32: what tensor cores do with f16 inputs, and half the
/// workgroup memory and its traffic per tile. Where the device has cooperative matrices
/// (`Target::coop_matrix()`), every GEMM runs on them instead, whatever the tiles. It needs wgpu's
/// `SHADER_F16`. Otherwise direct tiles (CPU adapters) read their operands straight from the
/// arenas, with nothing to gain from a narrower type, and stay f32. Arenas hold f32 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
}

impl Target {
    /// What the GEMMs of a plan for this target multiply in, for a person; None at f32.
    pub fn precision_summary(&self) -> Option<String> {
        let side = self.coop_matrix();
        Some(match self.precision {
            Precision::F32 => return None,
            _ if crate::codegen::uses_coop_matrices(self) => format!(
                "precision f16: every GEMM on {side}x{side} cooperative matrices (f16 operands, f32 sums)"
            ),
            _ if self.conv_tiles.direct() => {
                "precision f16: no effect, the GEMMs read their operands directly (f32)".into()
            }
            _ => "precision f16: GEMM operands staged as f16, sums in f32".into(),
        })
    }
}

impl Precision {
    /// The WGSL type of a staged GEMM operand.
    pub fn wgsl_type(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.wgsl_type())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            _ => Err(format!("precision `{s}` is not one of f32, f16")),
        }
    }
}

/// Tiles of the register-tiled GEMM behind every convolution kernel (`shaders/gemm.wgsl`): a
/// workgroup computes a `bm` x `bn` tile of the output (channels x pixels), staging `bk` steps
/// of the reduction at a time in workgroup memory; each invocation keeps a `tm` x `tn` tile in
/// registers. `ConvTiles::check` says which combinations a kernel can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct ConvTiles {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub tm: u32,
    pub tn: u32,
}

/// A contiguous piece of a value: channels `c0..c1` of its rank-4 padded shape, stored in arena
/// `arena` at element `offset`, addressed with `strides` (elements, for n, c, h, w). A value that
/// fits one binding has one piece; a larger one is split by channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Piece {
    pub arena: usize,
    pub c0: usize,
    pub c1: usize,
    pub offset: u64,
    pub strides: [u64; 4],
}

/// Where one value lives, and for how long.
#[derive(Debug, Clone, Serialize)]
pub struct ValuePlan {
    pub node: NodeId,
    pub name: String,
    pub shape: Vec<usize>,
    pub kind: ValueKind,
    pub pieces: Vec<Piece>,
    /// Step (kernel index) of its first write and of its last read; sources live from step 0, and
    /// graph outputs to the end.
    pub live: (usize, usize),
    /// The concat region this value is a slice of: (region value, first channel), if any.
    pub slice_of: Option<(NodeId, usize)>,
    /// How kernels reach a value that fusion gave no memory (`fuse.rs`); None: its pieces.
    #[serde(skip)]
    pub fused: Option<Box<Fused>>,
}

/// A value without memory of its own, as code generation reaches it.
#[derive(Debug, Clone)]
pub enum Fused {
    /// Computed in each reader's load: `op` over its inputs, as planned (loads or inlined too).
    Inline { op: ir::Op, inputs: Vec<ValuePlan> },
    /// A convolution's output stored through its only reader: `op` over `inputs`, with this value
    /// at position `at`, and the result stored to `out`.
    Store {
        op: ir::Op,
        at: usize,
        inputs: Vec<ValuePlan>,
        out: Box<ValuePlan>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Kernel {
    /// e.g. `conv2d:head.conv`
    pub name: String,
    /// The shader template it was generated from (`conv2d`, `elementwise`, ...).
    pub template: String,
    /// The IR nodes this kernel carries out (node paths).
    pub nodes: Vec<String>,
    /// Values it reads and writes (for the plan checker and the memory report).
    pub reads: Vec<NodeId>,
    pub writes: Vec<NodeId>,
    /// Arenas it binds, in binding order (binding i of group 0 is arena `arenas[i]`): the
    /// order its operands first use them.
    pub arenas: Vec<usize>,
    /// Element offsets of its operands in those arenas, in the order its WGSL reads them from
    /// its `offsets` uniform (group 1, binding 0; see `codegen/access.rs`).
    pub offsets: Vec<u32>,
    /// Workgroups of its dispatch.
    pub workgroups: [u32; 3],
    pub wgsl: String,
    /// A kernel that runs several independent ones (`crate::merge`): the values each reads and
    /// writes, for the plan checker. Empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<KernelPart>,
}

/// What one kernel of a merged kernel reads and writes.
#[derive(Debug, Clone, Serialize)]
pub struct KernelPart {
    pub name: String,
    pub template: String,
    pub reads: Vec<NodeId>,
    pub writes: Vec<NodeId>,
}

impl Kernel {
    /// The 16-byte elements (four offsets each, at least one) of the `offsets` uniform the
    /// kernel's WGSL declares; the runtime binds that many bytes of offsets per kernel.
    pub fn offsets_elements(offsets: usize) -> usize {
        offsets.div_ceil(4).max(1)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Arena {
    pub bytes: u64,
}

/// A dense-concatenation region: one value whose channel slices other values are written into.
#[derive(Debug, Clone, Serialize)]
pub struct ConcatRegion {
    pub value: NodeId,
    pub name: String,
    pub channels: usize,
    /// (value, first channel, channel count), in channel order.
    pub slices: Vec<(NodeId, usize, usize)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryPlan {
    pub arenas: Vec<Arena>,
    /// Sum of the arenas: the bytes the plan really allocates.
    pub peak_bytes: u64,
    /// What the same graph needs with one buffer per value.
    pub naive_bytes: u64,
    pub regions: Vec<ConcatRegion>,
    /// Forward values recomputed in the backward pass instead of kept (see `recompute.rs`).
    pub recomputed: usize,
    /// For a training graph, the peak with every forward value kept to the end of the program and
    /// nothing recomputed (what backward would need without this planning); 0 for a graph with
    /// no backward part.
    pub forward_kept_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub graph: String,
    pub target: Target,
    /// One entry per graph node, indexed by NodeId.
    pub values: Vec<ValuePlan>,
    pub kernels: Vec<Kernel>,
    /// The first `prologue` kernels compute values of frozen parameters alone
    /// (`Options::frozen`, `prologue.rs`): the runtime runs them on the first run only.
    pub prologue: usize,
    /// Kernels `0..split` read none of the `late` sources (`Options::late`): a caller may run
    /// them, then change those sources, then run the rest. Without late sources, every kernel.
    pub split: usize,
    /// The sources (inputs, parameters) that may change before the kernels from `split` on.
    pub late: Vec<NodeId>,
    /// How many kernels the same graph has compiled without fusion (`Options::fuse` off).
    pub unfused_kernels: usize,
    /// How many kernels there were before independent ones were merged (`crate::merge`).
    pub unmerged_kernels: usize,
    /// The graph passes that ran (`pipeline::PASSES`), in order.
    pub passes: Vec<&'static str>,
    pub memory: MemoryPlan,
    /// Graph outputs by name.
    pub outputs: Vec<(String, NodeId)>,
    /// The data of the graph's constants, which the runtime uploads with the arenas.
    #[serde(skip)]
    pub constants: Vec<(NodeId, Vec<f32>)>,
}
