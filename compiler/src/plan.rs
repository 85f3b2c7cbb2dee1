//! The `Plan`: what the compiler hands the runtime, and what `irdc plan` shows a person. It is
//! plain data: kernels in order with the IR nodes each carries out, and where every value lives.

use ir::{NodeId, ValueKind};
use serde::Serialize;

/// What the planner needs to know of the device. `Target::default()` is lavapipe's limits, so
/// `irdc plan` works on a machine with no GPU; the runtime builds one from the adapter's limits.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// Largest storage-buffer binding in bytes (wgpu `max_storage_buffer_binding_size`).
    pub max_binding_bytes: u64,
    /// Storage-buffer offset alignment in bytes (wgpu `min_storage_buffer_offset_alignment`).
    pub storage_alignment: u64,
    /// wgpu `max_compute_workgroups_per_dimension`.
    pub max_workgroups_per_dim: u32,
    /// wgpu `max_storage_buffers_per_shader_stage`.
    pub max_storage_buffers_per_stage: u32,
    /// The tiles of the convolution GEMM kernels (the runtime autotunes them per adapter).
    pub conv_tiles: ConvTiles,
    /// The most elementwise ops fusion computes in the loads of a kernel that reads each
    /// element many times (a convolution, pooling). [`crate::fuse::MAX_OPS_REREAD`] (an instance
    /// norm and its activation) suits GPUs, where it saves a round trip through memory; the
    /// runtime gives CPU adapters 1: on lavapipe, recomputing a norm in each of a conv's hundreds
    /// of reads of an element cost 25% of the conv, far more than writing the tensor once.
    pub max_ops_in_conv_loads: usize,
    /// Values of at most this many elements are computed in rereading kernels' loads as on GPUs
    /// ([`crate::fuse::MAX_OPS_REREAD`] ops), whatever `max_ops_in_conv_loads` says: at such
    /// sizes a kernel of their own costs its dispatch, more than the recomputation. The runtime
    /// gives CPU adapters [`crate::fuse::SMALL_VALUE_CPU`]; GPUs have no need (0).
    pub small_value_elements: usize,
    /// A plane reduction (an instance norm's statistics, a norm gradient's plane means) over
    /// planes of at most this many pixels also computes the elementwise value that reads it
    /// at its input's shape (the normalisation and its activation, the norm's input gradient),
    /// in a second pass over each plane in the same workgroup: one kernel less per norm and
    /// pass (`fuse.rs`). With one workgroup a plane, large planes would leave a GPU idle where
    /// the elementwise kernel fills it: [`crate::fuse::PLANE_APPLY_GPU`]; CPU adapters, whose
    /// few threads any two planes keep busy, take every size (`usize::MAX`).
    pub plane_apply_pixels: usize,
    /// Bytes of one uniform-buffer binding that direct (CPU) GEMM kernels may read their
    /// weights from ([`Panels`]) where the device has no subgroups (`subgroup_size` 0; the
    /// broadcast is faster); 0 keeps them in the arenas. The runtime gives CPU adapters wgpu's
    /// `max_uniform_buffer_binding_size`, at most 64 KiB; GPUs 0.
    pub uniform_panel_bytes: u64,
    /// wgpu `max_uniform_buffers_per_shader_stage`: the offsets uniform and a kernel's panel
    /// chunks share them.
    pub max_uniform_buffers_per_stage: u32,
    /// The subgroup size of a device with wgpu's `SUBGROUP` feature and one fixed size (lavapipe:
    /// 8, its SIMD width), else 0. Direct GEMM kernels whose A operand is not in uniform panels
    /// then load A's rows one per lane and broadcast them (`codegen/conv.rs`): lavapipe gathers
    /// a load that every lane makes of the same address lane by lane, so 16 rows cost 16 gathers,
    /// and 2 with the broadcast.
    pub subgroup_size: u32,
    /// Reduction kernels (instance-norm statistics, sums) as one subgroup per output, summing
    /// with `subgroupAdd`, without workgroup memory or barriers; needs `subgroup_size`. The
    /// runtime sets it for CPU adapters: on lavapipe every barrier switches the coroutines of
    /// each 8 invocations, and the 256-invocation tree sums made the generator's 79 statistics
    /// kernels cost 227 ms of a 1.7 s forward. GPUs keep the tree, with a workgroup's 256
    /// invocations busy rather than one subgroup's.
    pub subgroup_reductions: bool,
    /// 3x3 convs of stride 1 and 2 (and the transposed convs of their input gradients)
    /// computed as Winograd products with this tile (`crate::winograd`, one of
    /// `ir::ops::WinogradTransforms::TILES`: F(m x m, 3 x 3) for stride 1), 0 directly. The
    /// runtime gives CPU adapters 4: on lavapipe a conv runs at a fraction of the CPU's peak
    /// whatever its tiles, so doing a quarter of the multiply-adds pays for the transforms;
    /// GPUs keep 0, as not measured there.
    pub winograd_tile: usize,
    /// The precision of the convolution GEMMs' operands ([`Precision`]); f32 unless asked.
    pub precision: Precision,
    /// The side of the square cooperative matrices with f16 operands and f32 sums the device
    /// offers (wgpu's `EXPERIMENTAL_COOPERATIVE_MATRIX`: 16 on NVIDIA, 8 on lavapipe of Mesa
    /// 26), else 0. At the f16 precision, with a fixed `subgroup_size`, every GEMM runs on them
    /// (`codegen/coop.rs`).
    pub coop_matrix: u32,
}

/// The precision a convolution GEMM multiplies in. `F16` rounds the operands of the GEMMs that
/// stage them in workgroup memory (`shaders/gemm.wgsl`, the GPU tiles) to f16 as they are
/// staged, and keeps the sums in f32: what tensor cores do with f16 inputs, and half the
/// workgroup memory and its traffic per tile. Where the device has cooperative matrices
/// (`Target::coop_matrix`), every GEMM runs on them instead, whatever the tiles. It needs wgpu's
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
        let side = self.coop_matrix;
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

impl Default for Target {
    fn default() -> Self {
        Target {
            max_binding_bytes: 128 << 20,
            storage_alignment: 256,
            max_workgroups_per_dim: 65535,
            max_storage_buffers_per_stage: 8,
            conv_tiles: ConvTiles::default(),
            max_ops_in_conv_loads: crate::fuse::MAX_OPS_REREAD,
            small_value_elements: 0,
            plane_apply_pixels: crate::fuse::PLANE_APPLY_GPU,
            uniform_panel_bytes: 0,
            max_uniform_buffers_per_stage: 12,
            subgroup_size: 0,
            subgroup_reductions: false,
            winograd_tile: 0,
            precision: Precision::F32,
            coop_matrix: 0,
        }
    }
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
    /// Arenas it binds, in binding order (binding i of group 0 is arena `arenas[i]`).
    pub arenas: Vec<usize>,
    /// Element offsets of its operands in those arenas, in the order its WGSL reads them from
    /// its `offsets` uniform (group 1, binding 0; see `codegen/access.rs`).
    pub offsets: Vec<u32>,
    /// Workgroups of one dispatch (of each of `Panels::dispatches`, for a kernel with `panels`).
    pub workgroups: [u32; 3],
    pub wgsl: String,
    /// Where a direct GEMM reads its A operand from uniform buffers instead of the arena.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panels: Option<Panels>,
}

/// A GEMM's A operand (a conv's weight, at element `offset` of arena `arena`, laid out as
/// [`PanelLayout`] says) read from uniform buffers: lavapipe loads an element that every
/// invocation reads once, from a uniform buffer, and broadcasts it, where a storage load inside
/// a loop is gathered lane by lane (the conv's weight loads took a third of its time). A binding
/// holds at most 64 KiB, so the kernel runs one dispatch per block of `block_rows` rows and GEMM
/// group (a transposed conv's output phase), and each such dispatch's rows sit in `chunks()`
/// bindings of `chunk_len` columns (group 2, binding c: chunk c). Each binding starts with a
/// 16-byte header: the block's first row, then the group. The rows follow, `chunk_len` elements
/// apart; a group with fewer than `row_len` k's ends its rows in zeros. The runtime packs the
/// rows in before each run (the weights change between steps) and writes the headers once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Panels {
    pub arena: usize,
    pub offset: u64,
    pub rows: u32,
    /// The k's of the longest group's rows.
    pub row_len: u32,
    pub block_rows: u32,
    pub chunk_len: u32,
    pub groups: u32,
    pub layout: PanelLayout,
}

/// Where element (m, k) of GEMM group `grp` of a conv's A operand sits in its arena. k runs
/// over (c, a, b): `channels` input channels times the group's taps, kh = ph + a * phase_stride,
/// kw = pw + b * phase_stride for the phase (ph, pw) = (grp / phase_stride, grp % phase_stride)
/// of a `kh` x `kw` kernel (shaders/conv_transpose2d.wgsl); the element is at
/// `m * strides[0] + c * strides[1] + kh * strides[2] + kw * strides[3]` past the offset. A
/// conv2d is one group with phase stride 1: its row-major weight.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PanelLayout {
    pub channels: u32,
    pub kh: u32,
    pub kw: u32,
    pub phase_stride: u32,
    pub strides: [u32; 4],
}

impl PanelLayout {
    /// Taps of phase `p` of a kernel `k` wide: positions p, p + phase_stride, ... below k.
    fn phase_taps(&self, p: u32, k: u32) -> u32 {
        if p < k {
            (k - p).div_ceil(self.phase_stride)
        } else {
            0
        }
    }

    /// The k's of group `grp`.
    pub fn group_k(&self, grp: u32) -> u32 {
        let s = self.phase_stride;
        self.channels * self.phase_taps(grp / s, self.kh) * self.phase_taps(grp % s, self.kw)
    }

    /// The element of the last row's last channel's last tap, past the offset: the layout reads
    /// nothing beyond it.
    pub fn last_element(&self, rows: u32) -> u64 {
        let extent = [rows, self.channels, self.kh, self.kw];
        (extent.iter().zip(self.strides))
            .map(|(&n, s)| n.saturating_sub(1) as u64 * s as u64)
            .sum()
    }
}

impl Panels {
    /// Elements of the header that starts every binding.
    pub const HEADER: u32 = 4;

    pub fn blocks(&self) -> u32 {
        self.rows.div_ceil(self.block_rows)
    }

    /// One per block of rows and group.
    pub fn dispatches(&self) -> u32 {
        self.blocks() * self.groups
    }

    pub fn chunks(&self) -> u32 {
        self.row_len.div_ceil(self.chunk_len)
    }

    /// Elements of one binding: the header and `block_rows` rows of `chunk_len`.
    pub fn binding_len(&self) -> u32 {
        Self::HEADER + self.block_rows * self.chunk_len
    }
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
    /// How many kernels the same graph has compiled without fusion.
    pub unfused_kernels: usize,
    pub memory: MemoryPlan,
    /// Graph outputs by name.
    pub outputs: Vec<(String, NodeId)>,
    /// The data of the graph's constants, which the runtime uploads with the arenas.
    #[serde(skip)]
    pub constants: Vec<(NodeId, Vec<f32>)>,
}
