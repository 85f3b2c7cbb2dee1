//! The runtime's errors. Everything that can go wrong on a GPU (no adapter, a shader the driver
//! rejects, a lost device, a wrong feed) comes back as one of these, never as a panic.

use ir::NodeId;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// `IRDC_BACKEND` names no backend we know.
    #[error("IRDC_BACKEND={0:?} is not a backend; use one of vulkan, metal, dx12, gl, all")]
    Backend(String),
    /// An `IRDC_*` policy switch with a value other than 0 or 1.
    #[error("{0}")]
    Switch(String),
    /// No adapter at all on the backends searched.
    #[error(
        "no GPU adapter found on backends {searched}. On a machine without a GPU install Mesa's \
         lavapipe: `sudo apt-get install mesa-vulkan-drivers` (Debian/Ubuntu). To search other \
         backends set IRDC_BACKEND to vulkan, metal, dx12, gl or all"
    )]
    NoAdapter { searched: String },
    /// `IRDC_ADAPTER` matches none of the adapters found.
    #[error("IRDC_ADAPTER={wanted:?} matches no adapter; found: {}", found.join(", "))]
    AdapterNotFound { wanted: String, found: Vec<String> },
    /// The precision asked for needs a feature the adapter lacks.
    #[error(
        "precision {precision} needs shader-f16 (wgpu's SHADER_F16), which adapter `{adapter}` \
         does not offer; use --precision f32"
    )]
    Precision {
        precision: compiler::Precision,
        adapter: String,
    },
    #[error("cannot open a device on adapter `{adapter}`: {message}")]
    RequestDevice { adapter: String, message: String },
    /// A validation, out-of-memory or internal error reported by wgpu while doing `context`.
    #[error("GPU error while {context}: {message}")]
    Gpu { context: String, message: String },
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// The plan asks for something the device or the plan itself cannot give.
    #[error("invalid plan: {0}")]
    Plan(String),
    /// A kernel's WGSL does not parse (a compiler bug; the message shows the source line).
    #[error("kernel `{kernel}`: WGSL does not parse:\n{message}")]
    Shader { kernel: String, message: String },
    #[error("no value {0} in the plan")]
    NoValue(NodeId),
    /// The value was optimised away or never placed in memory, so it cannot be read or written.
    #[error("value `{0}` has no storage in the plan (not materialised)")]
    NotMaterialised(String),
    #[error("`{name}`: expected {expected} elements ({shape:?}), found {found}")]
    DataLength {
        name: String,
        shape: Vec<usize>,
        expected: usize,
        found: usize,
    },
    #[error("feed `{name}`: expected shape {expected:?}, found {found:?}")]
    FeedShape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("missing feed `{name}` (shape {shape:?})")]
    MissingFeed { name: String, shape: Vec<usize> },
    #[error("feed `{name}` is not an input, parameter or constant of graph `{graph}`")]
    UnknownFeed { name: String, graph: String },
    #[error("reading back from the GPU: {0}")]
    Map(String),
    /// A graph that cannot run window by window, or a window that does not fit an image.
    #[error("{0}")]
    Stream(String),
    #[error("compiling: {0}")]
    Compile(#[from] compiler::CompileError),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
