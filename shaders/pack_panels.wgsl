// Fills a kernel's uniform panels (compiler::Panels) from its weight in the arena: element
// (row, k) of GEMM group grp goes to binding ((row / block_rows) * groups + grp) * chunks +
// k / chunk_len, at header + (row % block_rows) * chunk_len + k % chunk_len; bindings are
// `stride` elements apart. Where that element sits in the arena is compiler::PanelLayout's
// (a conv2d's row-major weight, or a transposed conv's phase of its weight); k's past the
// group's own are zeros. One dispatch instead of a copy per row and chunk (thousands of commands
// a step, which cost lavapipe up to a second in a critic step). The host writes the headers once.

struct Panels {
    offset: u32,
    rows: u32,
    row_len: u32,
    block_rows: u32,
    chunk_len: u32,
    chunks: u32,
    stride: u32,
    header: u32,
    groups: u32,
    channels: u32,
    kh: u32,
    kw: u32,
    phase_stride: u32,
    // Arena strides of A's row, channel, kernel row and kernel column.
    s_m: u32,
    s_c: u32,
    s_kh: u32,
    s_kw: u32,
}

@group(0) @binding(0) var<storage, read_write> arena: array<f32>;
@group(0) @binding(1) var<storage, read_write> panels: array<f32>;
@group(1) @binding(0) var<uniform> p: Panels;

// Taps of phase `ph` of a kernel `k` wide (as shaders/conv_transpose2d.wgsl's phase_taps).
fn phase_taps(ph: u32, k: u32) -> u32 {
    return select(0u, (k - ph + p.phase_stride - 1u) / p.phase_stride, ph < k);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let per_group = p.rows * p.row_len;
    if (i >= p.groups * per_group) {
        return;
    }
    let grp = i / per_group;
    let row = (i % per_group) / p.row_len;
    let k = i % p.row_len;
    let ph = grp / p.phase_stride;
    let pw = grp % p.phase_stride;
    let tw = phase_taps(pw, p.kw);
    let taps = phase_taps(ph, p.kh) * tw;
    let binding = ((row / p.block_rows) * p.groups + grp) * p.chunks + k / p.chunk_len;
    let at = binding * p.stride + p.header + (row % p.block_rows) * p.chunk_len + k % p.chunk_len;
    if (k >= p.channels * taps) {
        panels[at] = 0.0;
        return;
    }
    let c = k / taps;
    let t = k % taps;
    let kh = ph + (t / tw) * p.phase_stride;
    let kw = pw + (t % tw) * p.phase_stride;
    panels[at] = arena[p.offset + row * p.s_m + c * p.s_c + kh * p.s_kh + kw * p.s_kw];
}
