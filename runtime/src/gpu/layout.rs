//! Where the elements of a dense NCHW tensor go in a value's pieces: contiguous runs, as few as
//! the strides allow, so that writes and reads are a handful of buffer copies rather than one
//! per element. A piece of a concat slice has a batch stride larger than its own channel block,
//! so it is one run per image; a plain value is one run in all.

use compiler::Piece;

/// `len` elements at element `dst` of the piece's arena and at element `src` of the dense tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub dst: u64,
    pub src: usize,
    pub len: usize,
}

/// The runs of `piece` for a value of rank-4 shape `shape` (dims n, c, h, w).
pub(crate) fn runs(piece: &Piece, shape: [usize; 4]) -> Vec<Run> {
    let [n, c, h, w] = shape;
    let sizes = [n, piece.c1 - piece.c0, h, w];
    if sizes.contains(&0) {
        return Vec::new();
    }
    let dense = [c * h * w, h * w, w, 1];
    // Fold inner dims into one run while both sides stay contiguous; `outer` dims remain.
    let mut len = 1usize;
    let mut outer = 4;
    while outer > 0 {
        let d = outer - 1;
        let contiguous = piece.strides[d] == len as u64 && dense[d] == len;
        if sizes[d] != 1 && !contiguous {
            break;
        }
        len *= sizes[d];
        outer -= 1;
    }
    let mut out = Vec::new();
    let mut idx = [0usize; 4];
    loop {
        let dst = piece.offset
            + (0..outer)
                .map(|d| idx[d] as u64 * piece.strides[d])
                .sum::<u64>();
        let src = idx[0] * dense[0]
            + (piece.c0 + idx[1]) * dense[1]
            + idx[2] * dense[2]
            + idx[3] * dense[3];
        out.push(Run { dst, src, len });
        // Odometer over the outer dims.
        let mut d = outer;
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < sizes[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// First element and element count of the smallest arena range holding the whole piece.
pub(crate) fn span(piece: &Piece, shape: [usize; 4]) -> (u64, u64) {
    let sizes = [shape[0], piece.c1 - piece.c0, shape[2], shape[3]];
    if sizes.contains(&0) {
        return (piece.offset, 0);
    }
    let last: u64 = (0..4)
        .map(|d| (sizes[d] as u64 - 1) * piece.strides[d])
        .sum();
    (piece.offset, last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(c0: usize, c1: usize, offset: u64, strides: [u64; 4]) -> Piece {
        Piece {
            arena: 0,
            c0,
            c1,
            offset,
            strides,
        }
    }

    #[test]
    fn a_dense_value_is_one_run() {
        let p = piece(0, 3, 64, [3 * 20, 20, 5, 1]);
        assert_eq!(
            runs(&p, [2, 3, 4, 5]),
            vec![Run {
                dst: 64,
                src: 0,
                len: 120
            }]
        );
        assert_eq!(span(&p, [2, 3, 4, 5]), (64, 120));
    }

    #[test]
    fn a_concat_slice_is_one_run_per_image() {
        // Channels 2..4 of a 6-channel region, 3x3 images; the value itself has 2 channels.
        let p = piece(0, 2, 100 + 2 * 9, [6 * 9, 9, 3, 1]);
        let r = runs(&p, [2, 2, 3, 3]);
        assert_eq!(
            r,
            vec![
                Run {
                    dst: 118,
                    src: 0,
                    len: 18
                },
                Run {
                    dst: 118 + 54,
                    src: 18,
                    len: 18
                }
            ]
        );
        assert_eq!(span(&p, [2, 2, 3, 3]), (118, 54 + 18));
    }

    #[test]
    fn a_split_value_runs_from_its_first_channel() {
        // Channels 4..6 of a 6-channel value, stored densely on their own in another arena.
        let p = piece(4, 6, 0, [2 * 4, 4, 2, 1]);
        let r = runs(&p, [2, 6, 2, 2]);
        assert_eq!(
            r,
            vec![
                Run {
                    dst: 0,
                    src: 16,
                    len: 8
                },
                Run {
                    dst: 8,
                    src: 24 + 16,
                    len: 8
                }
            ]
        );
    }

    #[test]
    fn padded_rows_are_one_run_per_row() {
        // Rows of width 3 stored with a pitch of 4.
        let p = piece(0, 1, 0, [8, 8, 4, 1]);
        let r = runs(&p, [1, 1, 2, 3]);
        assert_eq!(
            r,
            vec![
                Run {
                    dst: 0,
                    src: 0,
                    len: 3
                },
                Run {
                    dst: 4,
                    src: 3,
                    len: 3
                }
            ]
        );
    }
}
