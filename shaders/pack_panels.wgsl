// Fills a kernel's uniform panels (compiler::Panels) from its weight in the arena: element
// (row, k) of the row-major weight goes to binding (row / block_rows) * chunks + k / chunk_len,
// at header + (row % block_rows) * chunk_len + k % chunk_len; bindings are `stride` elements
// apart. One dispatch instead of a copy per row and chunk (thousands of commands a step, which
// cost lavapipe up to a second in a critic step). The host writes the headers once.

struct Panels {
    offset: u32,
    rows: u32,
    row_len: u32,
    block_rows: u32,
    chunk_len: u32,
    chunks: u32,
    stride: u32,
    header: u32,
}

@group(0) @binding(0) var<storage, read_write> arena: array<f32>;
@group(0) @binding(1) var<storage, read_write> panels: array<f32>;
@group(1) @binding(0) var<uniform> p: Panels;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.rows * p.row_len) {
        return;
    }
    let row = i / p.row_len;
    let k = i % p.row_len;
    let binding = (row / p.block_rows) * p.chunks + k / p.chunk_len;
    let at = binding * p.stride + p.header + (row % p.block_rows) * p.chunk_len + k % p.chunk_len;
    panels[at] = arena[p.offset + i];
}
