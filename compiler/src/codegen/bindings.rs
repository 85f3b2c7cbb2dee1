//! How a kernel reaches its operands: which storage binding each operand piece goes through,
//! and the accessors `ld_<name>` / `st_<name>` that index it.
//!
//! Specialised kernels bind each arena they use once. Taking sizes as data, a kernel must be
//! the same WGSL whichever arenas its operands landed in at a given size (the memory plan packs
//! values into arenas differently at every size), so each piece gets a binding of its own. Two
//! pieces that share memory by design (a sum written in place, a slice of a region) share one
//! binding instead, so no element is ever reached through two bindings.

use super::access::Operand;
use super::uniforms::Uniforms;
use crate::Piece;
use std::fmt::Write;

pub(crate) struct Bindings {
    /// The arena of each binding, in binding order.
    pub arenas: Vec<usize>,
    /// The binding of each piece, in the order given.
    pub of_piece: Vec<usize>,
}

/// The bindings of `pieces` (each with its operand's rank-4 shape), in first-use order: one per
/// arena, or (`per_piece`) one per piece but for pieces that overlap in memory.
pub(crate) fn bindings(pieces: &[([usize; 4], &Piece)], per_piece: bool) -> Bindings {
    let mut b = Bindings {
        arenas: Vec::new(),
        of_piece: Vec::new(),
    };
    // The element range of each binding's pieces so far (per_piece only).
    let mut ranges: Vec<Vec<(u64, u64)>> = Vec::new();
    for (shape, p) in pieces {
        let range = elements(*shape, p);
        let shared = match per_piece {
            false => b.arenas.iter().position(|&a| a == p.arena),
            true => (0..b.arenas.len()).find(|&i| {
                b.arenas[i] == p.arena && ranges[i].iter().any(|r| r.0 < range.1 && range.0 < r.1)
            }),
        };
        let at = shared.unwrap_or_else(|| {
            b.arenas.push(p.arena);
            ranges.push(Vec::new());
            b.arenas.len() - 1
        });
        ranges[at].push(range);
        b.of_piece.push(at);
    }
    b
}

/// The elements a piece of an operand of `shape` spans: [first, one past the last].
fn elements(shape: [usize; 4], p: &Piece) -> (u64, u64) {
    let mut lens = shape.map(|d| d as u64);
    lens[1] = (p.c1 - p.c0) as u64;
    let last: u64 = (0..4)
        .map(|d| lens[d].saturating_sub(1) * p.strides[d])
        .sum();
    (p.offset, p.offset + last + 1)
}

/// `ld_x` / `st_x`: pick the piece by channel (an if-chain), then index with its offset (the
/// next `slot` of the offsets uniform) and strides.
pub(super) fn accessor(
    s: &mut String,
    op: &Operand,
    binding_of: &[usize],
    slot: &mut usize,
    uniforms: &mut Uniforms,
) -> Result<(), String> {
    let name = &op.name;
    if op.store {
        let _ = writeln!(
            s,
            "\nfn st_{name}(n: u32, c: u32, h: u32, w: u32, v: f32) {{"
        );
    } else {
        let _ = writeln!(
            s,
            "\nfn ld_{name}(n: u32, c: u32, h: u32, w: u32) -> f32 {{"
        );
    }
    if op.pieces.is_empty() {
        let _ = writeln!(s, "    return 0.0;\n}}");
        return Ok(());
    }
    let last = op.pieces.len() - 1;
    for (k, p) in op.pieces.iter().enumerate() {
        let (binding, at) = (binding_of[*slot], *slot);
        let index = index_expr(op, p, at, uniforms)?;
        *slot += 1;
        let access = if op.store {
            format!("a{binding}[{index}] = v; return;")
        } else {
            format!("return a{binding}[{index}];")
        };
        if k == last {
            let _ = writeln!(s, "    {access}");
        } else {
            let c1 = uniforms.number(format!("sz_{at}_c1"), p.c1 as u32, !op.fixed);
            let _ = writeln!(s, "    if (c < {c1}) {{ {access} }}");
        }
    }
    s.push_str("}\n");
    Ok(())
}

/// `offset + n * sn + (c - c0) * sc + h * sh + w * sw`, leaving out the terms of size-1 dims;
/// the offset is slot `slot` of the offsets uniform, as copied to `off_<slot>`, and the strides
/// literals or, where they depend on the image size, `uniforms`' parameters.
fn index_expr(
    op: &Operand,
    p: &Piece,
    slot: usize,
    uniforms: &mut Uniforms,
) -> Result<String, String> {
    let mut e = format!("off_{slot}");
    // Where a value is split over bindings depends on its size; its first piece starts at 0.
    let c = match p.c0 {
        0 => "c".to_string(),
        c0 => {
            let c0 = uniforms.number(format!("sz_{slot}_c0"), c0 as u32, !op.fixed);
            format!("(c - {c0})")
        }
    };
    let coords = ["n".to_string(), c, "h".to_string(), "w".to_string()];
    for d in 0..4 {
        if op.shape[d] > 1 {
            let v = u32::try_from(p.strides[d])
                .map_err(|_| format!("{} does not fit in a u32 index", p.strides[d]))?;
            let name = format!("sz_{slot}_{}", ["n", "c", "h", "w"][d]);
            // A unit stride (a row's, in every layout the planner makes) is one at every size.
            let stride = uniforms.number(name, v, !op.fixed && v != 1);
            let _ = write!(e, " + {} * {stride}", coords[d]);
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(arena: usize, offset: u64) -> Piece {
        Piece {
            arena,
            c0: 0,
            c1: 2,
            offset,
            strides: [32, 16, 4, 1],
        }
    }

    #[test]
    fn pieces_share_a_binding_only_where_they_share_memory() {
        let shape = [1, 2, 4, 4];
        let (a, b, c, d) = (piece(1, 0), piece(0, 0), piece(1, 32), piece(1, 16));
        let pieces = [(shape, &a), (shape, &b), (shape, &c), (shape, &d)];
        let per_arena = bindings(&pieces, false);
        assert_eq!(
            (per_arena.arenas, per_arena.of_piece),
            (vec![1, 0], vec![0, 1, 0, 0])
        );
        // c lies after a (32 elements from 0); d overlaps a.
        let per_piece = bindings(&pieces, true);
        assert_eq!(
            (per_piece.arenas, per_piece.of_piece),
            (vec![1, 0, 1], vec![0, 1, 2, 0])
        );
    }
}
