//! WGSL generation: one kernel (or a few) per scheduled node, from the templates in `shaders/`.
//!
//! Each op file fills a [`KernelBuilder`] with its operands (accessors over the planned pieces)
//! and constants, and picks a template; `access.rs` writes the prelude every kernel shares.
//! The contract with the runtime: binding i of group 0 is the whole buffer of arena
//! `kernel.arenas[i]` (`array<f32>`, read_write), the entry point is `main`, and the kernel is
//! dispatched as `kernel.workgroups` (x and y each within `Target::max_workgroups_per_dim`).

mod access;
mod bindings;
mod conv;
mod conv_grad;
mod elementwise;
mod fused;
mod gemm;
mod grouped_conv;
mod layout;
mod matmul;
mod reduce;
mod resample;
mod uniforms;
mod window;
mod winograd;

pub use gemm::coop::WORKGROUP_BYTES as COOP_WORKGROUP_BYTES;

/// Whether `target`'s GEMMs run on cooperative matrices (`gemm/coop.rs`).
pub fn uses_coop_matrices(target: &Target) -> bool {
    gemm::uses_coop_matrices(target)
}

use crate::{CompileError, Kernel, Target, ValuePlan};
use access::{Dispatch, KernelBuilder};
use ir::{Graph, Node, NodeId, Op};

/// Generate the kernels of the scheduled `steps` (nodes that need a kernel, in order), reading
/// and writing values where `values` (indexed by NodeId) places them. Sources (inputs,
/// parameters, constants), concats whose inputs are all written in place and channel slices planned
/// as aliases of their input yield no kernel. `applies[r]` is the reader a plane reduction's
/// kernel also computes (`fuse::Fusion::applies`).
pub fn generate(
    graph: &Graph,
    steps: &[NodeId],
    values: &[ValuePlan],
    applies: &[Option<NodeId>],
    target: &Target,
) -> Result<Vec<Kernel>, CompileError> {
    let mut kernels = Vec::new();
    for &id in steps {
        let node = graph.nodes.get(id).ok_or_else(|| CompileError::Codegen {
            node: format!("#{id}"),
            message: format!("step {id} is not a node of graph `{}`", graph.name),
        })?;
        let ctx = Ctx {
            graph,
            values,
            target,
            id,
            node,
            applies: applies.get(id).copied().flatten(),
        };
        let made = node_kernels(&ctx).map_err(|message| CompileError::Codegen {
            node: node.name.clone(),
            message,
        })?;
        kernels.extend(made);
    }
    Ok(kernels)
}

fn node_kernels(ctx: &Ctx) -> Result<Vec<Kernel>, String> {
    match &ctx.node.op {
        Op::Input { .. } | Op::Param { .. } | Op::Const(_) => Ok(vec![]),
        Op::Conv2d(o) => conv::conv2d(ctx, o).map(|k| vec![k]),
        Op::ConvTranspose2d(o) => conv::conv_transpose2d(ctx, o).map(|k| vec![k]),
        Op::ReflectPad(o) => window::reflect_pad(ctx, o).map(|k| vec![k]),
        Op::MaxPool2d(o) => window::max_pool2d(ctx, o).map(|k| vec![k]),
        Op::InstanceNorm(o) => reduce::instance_norm(ctx, o).map(|k| vec![k]),
        Op::InstanceNormStats(o) => reduce::instance_norm_stats(ctx, o).map(|k| vec![k]),
        Op::PlaneMeans(_) => reduce::plane_means(ctx).map(|k| vec![k]),
        Op::InstanceNormApply(_) | Op::PlaneStat(_) => elementwise::node(ctx).map(|k| vec![k]),
        Op::Reduce(o) => reduce::reduce(ctx, o).map(|k| vec![k]),
        Op::Unary(_) | Op::Binary(_) | Op::ChannelAffine(_) => {
            elementwise::node(ctx).map(|k| vec![k])
        }
        Op::Dropout(o) => elementwise::dropout(ctx, o).map(|k| vec![k]),
        Op::Concat(_) => elementwise::concat(ctx),
        Op::Conv2dWeightGrad(o) => conv_grad::conv2d_weight_grad(ctx, o).map(|k| vec![k]),
        Op::ConvTranspose2dWeightGrad(o) => {
            conv_grad::conv_transpose2d_weight_grad(ctx, o).map(|k| vec![k])
        }
        Op::ReflectPadGrad(o) => window::reflect_pad_grad(ctx, o).map(|k| vec![k]),
        Op::MaxPool2dGrad(o) => window::max_pool2d_grad(ctx, o).map(|k| vec![k]),
        Op::Expand(_) => layout::expand(ctx),
        Op::ChannelSlice(o) => layout::channel_slice(ctx, o),
        Op::Reshape(_) => layout::reshape(ctx),
        Op::WinogradWeight(o) => winograd::weight(ctx, o).map(|k| vec![k]),
        Op::WinogradInput(o) => winograd::input(ctx, o).map(|k| vec![k]),
        Op::WinogradGemm(_) => winograd::products(ctx).map(|k| vec![k]),
        Op::WinogradOutput(o) => winograd::output(ctx, o).map(|k| vec![k]),
        Op::PixelShuffle(_) | Op::PixelUnshuffle(_) => {
            resample::pixel_shuffle(ctx).map(|k| vec![k])
        }
        Op::Resize(o) => resample::resize(ctx, o.factor, o.mode, false).map(|k| vec![k]),
        Op::ResizeGrad(o) => resample::resize(ctx, o.factor, o.mode, true).map(|k| vec![k]),
        Op::AvgPool(o) => resample::avg_pool(ctx, o).map(|k| vec![k]),
        Op::AvgPoolGrad(o) => resample::avg_pool_grad(ctx, o).map(|k| vec![k]),
        Op::MatMul(o) => matmul::matmul(ctx, o).map(|k| vec![k]),
        Op::Softmax(o) => reduce::softmax(ctx, o).map(|k| vec![k]),
        Op::LayerNorm(o) => reduce::layer_norm(ctx, o).map(|k| vec![k]),
    }
}

/// What an op's generator reads: the node being generated and where every value lives.
pub(crate) struct Ctx<'a> {
    graph: &'a Graph,
    values: &'a [ValuePlan],
    target: &'a Target,
    id: NodeId,
    node: &'a Node,
    /// The elementwise reader this node's kernel computes too.
    applies: Option<NodeId>,
}

impl Ctx<'_> {
    fn value(&self, id: NodeId) -> Result<&ValuePlan, String> {
        let node = &self.graph.nodes[id];
        let v = self
            .values
            .get(id)
            .ok_or_else(|| format!("no memory plan for value `{}`", node.name))?;
        if v.shape != node.shape {
            return Err(format!(
                "value `{}` is planned as {:?}, but has shape {:?}",
                node.name, v.shape, node.shape
            ));
        }
        Ok(v)
    }

    /// The plan of this node's output.
    fn out(&self) -> Result<&ValuePlan, String> {
        self.value(self.id)
    }

    /// The id of input `k` (by the op's input order), or an error naming what is missing.
    fn input_id(&self, k: usize, what: &str) -> Result<NodeId, String> {
        self.node.inputs.get(k).copied().ok_or_else(|| {
            let kind = self.node.op.kind_name();
            format!(
                "{kind}: expected input {k} ({what}), found {} inputs",
                self.node.inputs.len()
            )
        })
    }

    fn input(&self, k: usize, what: &str) -> Result<&ValuePlan, String> {
        self.value(self.input_id(k, what)?)
    }

    /// The kernel of this node, and of the nodes fused into its loads and stores.
    fn kernel(
        &self,
        template: &str,
        src: &str,
        b: KernelBuilder,
        dispatch: Dispatch,
    ) -> Result<Kernel, String> {
        let name = format!("{}:{}", self.node.op.kind_name(), self.node.name);
        self.kernel_named(name, template, src, b, dispatch)
    }

    fn kernel_named(
        &self,
        name: String,
        template: &str,
        src: &str,
        b: KernelBuilder,
        dispatch: Dispatch,
    ) -> Result<Kernel, String> {
        let g = b.finish(src, dispatch, self.target)?;
        let mut nodes = vec![self.node.name.clone()];
        nodes.extend(g.nodes.into_iter().filter(|n| *n != self.node.name));
        Ok(Kernel {
            name,
            template: template.into(),
            nodes,
            reads: g.reads,
            writes: g.writes,
            arenas: g.arenas,
            offsets: g.offsets,
            workgroups: g.workgroups,
            wgsl: g.wgsl,
            parts: Vec::new(),
        })
    }
}

/// Parse and validate WGSL with naga (what wgpu does when it creates the shader module); the
/// error is naga's report with the offending source line.
pub fn validate_wgsl(src: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(src).map_err(|e| e.emit_to_string(src))?;
    let flags = naga::valid::ValidationFlags::all();
    let caps = naga::valid::Capabilities::all();
    naga::valid::Validator::new(flags, caps)
        .validate(&module)
        .map_err(|e| e.emit_to_string(src))?;
    Ok(())
}
