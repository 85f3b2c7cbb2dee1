// Max pooling over K x K windows with stride; padding counts as -infinity (it is skipped).
// y[n, c, oh, ow] = max over kh, kw of x[n, c, oh*STRIDE + kh - PAD, ow*STRIDE + kw - PAD]
// An invocation computes RUN adjacent outputs of a row (Y_RUNS a row, the last one cut at the
// row's end where RUN does not divide it; TOTAL invocations): their windows
// overlap, so it loads each of the row's (RUN - 1) * STRIDE + K input columns once per kernel
// row (a 3x3 stride-1 pool of 4 outputs: 18 loads, not 36). RUN_STEP, generated
// (codegen/window.rs), loads them as `v_t` and takes output r's maximum over v_{r*STRIDE + kw}.

// The lowest finite f32: a window always holds at least one real element (PAD < K).
const LOWEST: f32 = -3.4028235e38;

fn x_or_lowest(n: u32, c: u32, h: u32, w: i32) -> f32 {
    if (w < 0 || w >= i32(X_W)) {
        return LOWEST;
    }
    return ld_x(n, c, h, u32(w));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg, WG);
    if (i >= TOTAL) {
        return;
    }
    let q = unflat(i, vec4<u32>(Y_N, Y_C, Y_H, Y_RUNS));
    let p = vec4<u32>(q.xyz, q.w * RUN);
    let h0 = i32(p.z * STRIDE) - i32(PAD);
    let w0 = i32(p.w * STRIDE) - i32(PAD);
RUN_DECL
    for (var kh = 0u; kh < K; kh++) {
        let h = h0 + i32(kh);
        if (h < 0 || h >= i32(X_H)) {
            continue;
        }
RUN_STEP
    }
RUN_STORE
}
