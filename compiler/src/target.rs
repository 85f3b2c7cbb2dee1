//! What a plan is compiled for, in three parts kept apart: the adapter's [`Limits`] (read off
//! wgpu, no choices), the [`Policy`] irdc picks for the kind of device (one preset for GPUs,
//! one for CPU adapters such as lavapipe), and the user's [`Overrides`] of that policy (the
//! `IRDC_*` switches, parsed once). [`Target::new`] is the one place they meet.

use crate::{ConvTiles, Precision};
use serde::Serialize;

/// The adapter's limits and capabilities, as wgpu reports them. `Limits::default()` is
/// lavapipe's, so `irdc plan` works on a machine with no GPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    /// Largest storage-buffer binding in bytes (wgpu `max_storage_buffer_binding_size`, at most
    /// `max_buffer_size`).
    pub max_binding_bytes: u64,
    /// Storage-buffer offset alignment in bytes (wgpu `min_storage_buffer_offset_alignment`).
    pub storage_alignment: u64,
    /// wgpu `max_compute_workgroups_per_dimension`.
    pub max_workgroups_per_dim: u32,
    /// wgpu `max_storage_buffers_per_shader_stage`.
    pub max_storage_buffers_per_stage: u32,
    /// The subgroup size where wgpu's `SUBGROUP` feature is on and the size is fixed (lavapipe:
    /// 8, its SIMD width; the kernels index lanes with constants), else 0.
    pub subgroup_size: u32,
    /// The side of the square f16 x f16 -> f32 cooperative matrices the device offers (wgpu's
    /// `EXPERIMENTAL_COOPERATIVE_MATRIX`: 16 on NVIDIA, 8 on lavapipe of Mesa 26), else 0.
    pub coop_matrix: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_binding_bytes: 128 << 20,
            storage_alignment: 256,
            max_workgroups_per_dim: 65535,
            max_storage_buffers_per_stage: 8,
            subgroup_size: 0,
            coop_matrix: 0,
        }
    }
}

/// The kind of device a policy preset is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Gpu,
    /// A CPU adapter (lavapipe): a few threads, SIMD lanes, no memory hierarchy to feed.
    Cpu,
}

/// What irdc chooses for a kind of device: the fusion limits, the reduction strategy, Winograd.
/// Every field has its measured reason in `docs/cpu-adapters.md`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub kind: DeviceKind,
    /// The most elementwise ops fusion computes in the loads of a kernel that reads each element
    /// many times (a convolution, pooling). GPUs: [`crate::fuse::MAX_OPS_REREAD`] (a norm and
    /// its activation), which saves a round trip through memory; CPU adapters: 1, since
    /// recomputing a norm in each of a conv's hundreds of reads costs more than storing it.
    pub max_ops_in_conv_loads: usize,
    /// Values of at most this many elements are computed in rereading kernels' loads as on
    /// GPUs, whatever `max_ops_in_conv_loads` says: at such sizes a kernel of their own costs
    /// its dispatch, more than the recomputation. 0: none.
    pub small_value_elements: usize,
    /// A plane reduction over planes of at most this many pixels also computes the elementwise
    /// value that reads it, in a second walk over each plane (`plane_apply.rs`). With one
    /// workgroup a plane, large planes would leave a GPU idle; a CPU's few threads are kept busy
    /// by any two planes.
    pub plane_apply_pixels: usize,
    /// Use the device's subgroups (broadcast loads of a GEMM's A operand, subgroup sums).
    pub subgroups: bool,
    /// Reductions as one subgroup per output, summing with `subgroupAdd`, without workgroup
    /// memory or barriers (on lavapipe a barrier switches coroutines); GPUs keep a workgroup's
    /// tree, with 256 invocations busy rather than one subgroup's.
    pub subgroup_reductions: bool,
    /// 3x3 convs as Winograd products with this tile (F(m x m, 3 x 3), see `crate::winograd`),
    /// 0 directly. On a CPU adapter a quarter of the multiply-adds pays for the transforms.
    pub winograd_tile: usize,
    /// Run f16 GEMMs on cooperative matrices where the device has them.
    pub coop_matrices: bool,
    /// Run independent kernels of a group of nearby steps as one dispatch (`crate::merge`):
    /// fewer hand-offs to lavapipe's threads, fewer idle launches on a GPU.
    pub merge_kernels: bool,
    /// In a data-parallel step, about how many bytes of gradients each all-reduce takes (the
    /// first starts while the backward pass still runs). A CPU adapter computes on the cores an
    /// all-reduce waiting for another rank spins on, so it exchanges all at once, at the end.
    pub gradient_bucket_bytes: u64,
}

impl Policy {
    pub fn gpu() -> Policy {
        Policy {
            kind: DeviceKind::Gpu,
            max_ops_in_conv_loads: crate::fuse::MAX_OPS_REREAD,
            small_value_elements: 0,
            plane_apply_pixels: crate::fuse::PLANE_APPLY_GPU,
            subgroups: true,
            subgroup_reductions: false,
            winograd_tile: 0,
            coop_matrices: true,
            merge_kernels: true,
            gradient_bucket_bytes: 4 << 20,
        }
    }

    pub fn cpu() -> Policy {
        Policy {
            kind: DeviceKind::Cpu,
            max_ops_in_conv_loads: crate::fuse::MAX_OPS_REREAD_CPU,
            small_value_elements: crate::fuse::SMALL_VALUE_CPU,
            plane_apply_pixels: usize::MAX,
            subgroups: true,
            subgroup_reductions: true,
            winograd_tile: 4,
            coop_matrices: true,
            merge_kernels: true,
            gradient_bucket_bytes: u64::MAX,
        }
    }

    pub fn preset(kind: DeviceKind) -> Policy {
        match kind {
            DeviceKind::Gpu => Policy::gpu(),
            DeviceKind::Cpu => Policy::cpu(),
        }
    }

    /// The policy with `overrides` applied.
    pub fn with(mut self, o: &Overrides) -> Policy {
        if o.winograd == Some(false) {
            self.winograd_tile = 0;
        }
        if o.small_values == Some(false) {
            self.small_value_elements = 0;
        }
        if o.plane_apply == Some(false) {
            self.plane_apply_pixels = 0;
        }
        if o.subgroups == Some(false) {
            self.subgroups = false;
        }
        if o.coop_matrix == Some(false) {
            self.coop_matrices = false;
        }
        if o.merge == Some(false) {
            self.merge_kernels = false;
        }
        self
    }
}

/// Switches that turn one choice of the policy off, to measure what it gains: each
/// `IRDC_<NAME>=0`; and `IRDC_AUTOTUNE`, whether the runtime times the conv tiles (0: the
/// default tiles; 1: also on a CPU adapter, which keeps them otherwise). Parsed once, when the
/// device is opened; `irdc plan` prints them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Overrides {
    pub winograd: Option<bool>,
    pub small_values: Option<bool>,
    pub plane_apply: Option<bool>,
    pub subgroups: Option<bool>,
    pub coop_matrix: Option<bool>,
    pub autotune: Option<bool>,
    pub merge: Option<bool>,
}

impl Overrides {
    /// The switches, by their environment variable's name.
    pub const VARIABLES: [&'static str; 7] = [
        "IRDC_WINOGRAD",
        "IRDC_SMALL_VALUES",
        "IRDC_PLANE_APPLY",
        "IRDC_SUBGROUPS",
        "IRDC_COOP_MATRIX",
        "IRDC_AUTOTUNE",
        "IRDC_MERGE",
    ];

    /// The switches as the process environment sets them.
    pub fn from_env() -> Result<Overrides, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Read the switches through `var` (the process environment: [`Overrides::from_env`]).
    /// Each takes 0 (off) or 1 (the preset's choice; for `IRDC_AUTOTUNE`, tuning on any
    /// adapter).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Overrides, String> {
        let mut values = [None; 7];
        for (slot, name) in values.iter_mut().zip(Self::VARIABLES) {
            let on = match name {
                "IRDC_AUTOTUNE" => "on, CPU adapters too",
                _ => "the default",
            };
            *slot = match var(name).as_deref().map(str::trim) {
                None | Some("") => None,
                Some("0") => Some(false),
                Some("1") => Some(true),
                Some(v) => return Err(format!("{name}={v:?}: use 0 (off) or 1 ({on})")),
            };
        }
        let [winograd, small_values, plane_apply, subgroups, coop_matrix, autotune, merge] = values;
        Ok(Overrides {
            winograd,
            small_values,
            plane_apply,
            subgroups,
            coop_matrix,
            autotune,
            merge,
        })
    }

    /// `IRDC_X=0` for each switch that is set off, for a person.
    pub fn describe(&self) -> Vec<String> {
        let set = [
            self.winograd,
            self.small_values,
            self.plane_apply,
            self.subgroups,
            self.coop_matrix,
            self.autotune,
            self.merge,
        ];
        (Self::VARIABLES.iter().zip(set))
            .filter_map(|(name, v)| v.map(|on| format!("{name}={}", u8::from(on))))
            .collect()
    }
}

/// What the planner needs to know of the device: its limits, the policy for it, the conv tiles
/// (autotuned by the runtime per adapter) and the precision asked for.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub limits: Limits,
    pub policy: Policy,
    /// The tiles of the convolution GEMM kernels (the runtime autotunes them per adapter).
    pub conv_tiles: ConvTiles,
    /// The precision of the convolution GEMMs' operands ([`Precision`]); f32 unless asked.
    pub precision: Precision,
    /// The overrides the policy was built with (shown by `irdc plan`).
    pub overrides: Overrides,
    /// Whether the kernels are specialised to the graph's sizes or take them as data.
    pub sizes: Sizes,
}

/// How kernels know the sizes of what they compute. Specialised kernels have every size
/// baked in, which lets the shader compiler fold the index arithmetic (10-30% faster kernels
/// on lavapipe, benches/README.md); kernels taking the image-dependent sizes (heights, widths,
/// counts, strides) from their uniform are the same WGSL at every image size, so one set of
/// pipelines serves a folder of photos of many sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sizes {
    #[default]
    Specialised,
    Data,
}

impl Target {
    /// The target for a device of `kind` with `limits`, its kind's policy with `overrides`.
    pub fn new(limits: Limits, kind: DeviceKind, overrides: &Overrides) -> Target {
        Target {
            limits,
            policy: Policy::preset(kind).with(overrides),
            conv_tiles: ConvTiles::default(),
            precision: Precision::F32,
            overrides: overrides.clone(),
            sizes: Sizes::Specialised,
        }
    }

    /// The target with kernels that take sizes as `sizes` says. Taking them as data, the
    /// plan's choices that depend on a value's size are made one way for every size: no
    /// small-value exception, and plane reductions apply their reader always or never.
    pub fn with_sizes(mut self, sizes: Sizes) -> Target {
        self.sizes = sizes;
        if sizes == Sizes::Data {
            let p = &mut self.policy;
            p.small_value_elements = 0;
            if p.plane_apply_pixels != usize::MAX {
                p.plane_apply_pixels = 0;
            }
        }
        self
    }

    /// The subgroup size the kernels may use: the device's, unless the policy leaves them.
    pub fn subgroup_size(&self) -> u32 {
        match self.policy.subgroups {
            true => self.limits.subgroup_size,
            false => 0,
        }
    }

    /// The cooperative matrices' side the kernels may use (0: none).
    pub fn coop_matrix(&self) -> u32 {
        match self.policy.coop_matrices {
            true => self.limits.coop_matrix,
            false => 0,
        }
    }

    /// The policy in one line, for `irdc plan`.
    pub fn describe_policy(&self) -> String {
        let p = &self.policy;
        let mut parts = vec![
            format!(
                "at most {} op(s) in a conv's loads",
                p.max_ops_in_conv_loads
            ),
            match p.small_value_elements {
                0 => "no small-value exception".into(),
                n => format!("values of up to {n} elements in loads as on GPUs"),
            },
            match p.plane_apply_pixels {
                0 => "no apply in plane reductions".into(),
                usize::MAX => "every plane reduction applies its reader".into(),
                n => format!("plane reductions apply their reader up to {n} pixels"),
            },
            match (self.subgroup_size(), p.subgroup_reductions) {
                (0, _) => "no subgroups".into(),
                (n, true) => format!("{n}-lane subgroups, reductions one subgroup each"),
                (n, false) => format!("{n}-lane subgroups"),
            },
            match p.winograd_tile {
                0 => "3x3 convs direct".into(),
                m => format!("3x3 convs as Winograd F({m}x{m}, 3x3)"),
            },
        ];
        if self.coop_matrix() > 0 {
            parts.push(format!("{0}x{0} cooperative matrices", self.coop_matrix()));
        }
        if !p.merge_kernels {
            parts.push("independent kernels not merged".into());
        }
        let kind = match p.kind {
            DeviceKind::Gpu => "GPU",
            DeviceKind::Cpu => "CPU adapter",
        };
        let overrides = self.overrides.describe();
        let set = match overrides.is_empty() {
            true => String::new(),
            false => format!(" (overridden: {})", overrides.join(", ")),
        };
        format!("policy: {kind}{set}: {}", parts.join("; "))
    }

    /// How the kernels take sizes, in a line, for `irdc plan`.
    pub fn describe_sizes(&self) -> &'static str {
        match self.sizes {
            Sizes::Specialised => "sizes: specialised (every kernel compiled for this size)",
            Sizes::Data => {
                "sizes: as data (kernels read image sizes from their uniform: one set of \
                 pipelines for every size)"
            }
        }
    }
}

impl Sizes {
    /// The choice for one run over images of `distinct` sizes: specialised for one size (faster
    /// kernels, compiled once anyway), as data for more (one set of pipelines for all).
    pub fn for_images(distinct: usize) -> Sizes {
        match distinct {
            0 | 1 => Sizes::Specialised,
            _ => Sizes::Data,
        }
    }
}

impl std::str::FromStr for Sizes {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "specialised" | "specialized" => Ok(Sizes::Specialised),
            "data" => Ok(Sizes::Data),
            _ => Err(format!("sizes `{s}` is not one of specialised, data")),
        }
    }
}

impl Default for Target {
    /// A GPU policy on lavapipe's limits.
    fn default() -> Self {
        Target::new(Limits::default(), DeviceKind::Gpu, &Overrides::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_parse_once_and_turn_their_choice_off() {
        let env = |pairs: &'static [(&str, &str)]| {
            move |n: &str| pairs.iter().find(|p| p.0 == n).map(|p| p.1.to_string())
        };
        let o = Overrides::from_vars(env(&[("IRDC_WINOGRAD", "0"), ("IRDC_SUBGROUPS", "1")]));
        let o = o.unwrap();
        assert_eq!(o.describe(), ["IRDC_WINOGRAD=0", "IRDC_SUBGROUPS=1"]);
        let limits = Limits {
            subgroup_size: 8,
            ..Limits::default()
        };
        let t = Target::new(limits, DeviceKind::Cpu, &o);
        assert_eq!((t.policy.winograd_tile, t.subgroup_size()), (0, 8));
        let err = Overrides::from_vars(env(&[("IRDC_PLANE_APPLY", "off")])).unwrap_err();
        assert_eq!(
            err,
            "IRDC_PLANE_APPLY=\"off\": use 0 (off) or 1 (the default)"
        );
        let err = Overrides::from_vars(env(&[("IRDC_AUTOTUNE", "yes")])).unwrap_err();
        assert_eq!(
            err,
            "IRDC_AUTOTUNE=\"yes\": use 0 (off) or 1 (on, CPU adapters too)"
        );
        let tune = Overrides::from_vars(env(&[("IRDC_AUTOTUNE", "1")])).unwrap();
        assert_eq!(tune.autotune, Some(true));
        assert_eq!(tune.describe(), ["IRDC_AUTOTUNE=1"]);
        let off = Overrides::from_vars(env(&[("IRDC_SUBGROUPS", "0")])).unwrap();
        let t = Target::new(limits_with_subgroups(), DeviceKind::Cpu, &off);
        assert_eq!(t.subgroup_size(), 0);
        assert!(t
            .describe_policy()
            .contains("(overridden: IRDC_SUBGROUPS=0)"));
    }

    fn limits_with_subgroups() -> Limits {
        Limits {
            subgroup_size: 8,
            ..Limits::default()
        }
    }
}
