//! How each value of a graph maps onto the image: found by comparing the graph built at two
//! sizes, so it follows the model's ops rather than rules kept here.

use ir::Graph;

/// A value's place on the image: its row `j` covers image rows `scale·(j - offset)` on, where
/// `offset` is what pads add to (or valid convolutions take from) each side's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Image pixels per pixel of the value, the same for rows and columns.
    pub scale: usize,
    /// Rows (and columns) the value has beyond `size / scale`, both sides together.
    pub extra: isize,
}

/// For each node of `at_window` (built for a `window`-sized image), its extent, or `None` for a
/// value whose shape does not follow the image's size (weights, a norm's statistics, a global
/// mean). `at_double` is the same graph built for an image of twice the window's size: the
/// nodes must match one to one.
pub fn extents(
    at_window: &Graph,
    at_double: &Graph,
    window: [usize; 2],
) -> Result<Vec<Option<Extent>>, String> {
    if at_window.nodes.len() != at_double.nodes.len() {
        return Err(format!(
            "graph {} has {} nodes at one size and {} at another; a streamed run needs the same \
             graph at every size",
            at_window.name,
            at_window.nodes.len(),
            at_double.nodes.len()
        ));
    }
    (at_window.nodes.iter().zip(&at_double.nodes))
        .map(|(a, b)| {
            if a.name != b.name || a.shape.len() != b.shape.len() {
                return Err(format!(
                    "`{}` differs between two sizes of the graph; a streamed run needs the same \
                     graph at every size",
                    a.name
                ));
            }
            extent(&a.shape, &b.shape, window).map_err(|e| format!("`{}`: {e}", a.name))
        })
        .collect()
}

fn extent(a: &[usize], b: &[usize], window: [usize; 2]) -> Result<Option<Extent>, String> {
    if a == b {
        return Ok(None);
    }
    let ([n, c, h, w], [n2, c2, h2, w2]) = (quad(a)?, quad(b)?);
    if n != n2 || c != c2 || h2 <= h || w2 <= w {
        return Err(format!(
            "its shape {a:?} becomes {b:?} when the image doubles; only height and width may \
             grow with it"
        ));
    }
    let (scale, scale_w) = (window[0] / (h2 - h), window[1] / (w2 - w));
    let exact = scale * (h2 - h) == window[0] && scale_w * (w2 - w) == window[1];
    if !exact || scale != scale_w {
        return Err(format!(
            "its shape {a:?} does not follow the image by one whole factor for height and width"
        ));
    }
    let extra = |len: usize, image: usize| len as isize - (image / scale) as isize;
    let (extra_h, extra_w) = (extra(h, window[0]), extra(w, window[1]));
    if extra_h != extra_w {
        return Err(format!(
            "its shape {a:?} adds {extra_h} rows but {extra_w} columns to the image's"
        ));
    }
    Ok(Some(Extent {
        scale,
        extra: extra_h,
    }))
}

fn quad(shape: &[usize]) -> Result<[usize; 4], String> {
    <[usize; 4]>::try_from(shape)
        .map_err(|_| format!("its shape {shape:?} changes with the image but is not [N, C, H, W]"))
}
