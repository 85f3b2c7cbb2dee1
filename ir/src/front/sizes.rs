//! When a graph fails to build at the image size it was given, say which sizes it takes. Strided
//! layers and skip connections (a generator that downsamples twice and adds its input back)
//! only fit heights and widths that are multiples of some factor; the shape error itself names
//! a node deep inside, so the front end finds the factor by building at nearby sizes.

use super::{calls::Differentiator, expand, FrontError, Model};

/// The factors tried, smallest first: a power of two per stride-2 layer, up to six.
const FACTORS: [usize; 6] = [2, 4, 8, 16, 32, 64];

/// `error` from building `graph` at `shapes` (every input's shape, declared or overridden),
/// with a first sentence that names the size factor the graph needs, where its images are of
/// one size and building at both multiples of a factor around it succeeds; else `error` as it
/// is.
pub(super) fn explain(
    model: &Model,
    graph: &str,
    shapes: &[(String, Vec<usize>)],
    diff: Option<&dyn Differentiator>,
    training: bool,
    error: FrontError,
) -> FrontError {
    let Ok(g) = model.graph(graph) else {
        return error;
    };
    let builds = |s: &[(String, Vec<usize>)]| {
        expand::build_graph(&model.parts, g, s, diff, training).is_ok()
    };
    // Images only: rank-4 inputs with more than one pixel (not a [1,1,1,1] mixing weight).
    let spatial = |s: &[usize]| s.len() == 4 && s[2] * s[3] > 1;
    // Images of different sizes are a mismatch, not a size the graph cannot take.
    let mut sizes = shapes
        .iter()
        .filter(|(_, s)| spatial(s))
        .map(|(_, s)| (s[2], s[3]));
    let first = sizes.next();
    if first.is_none() || sizes.any(|hw| Some(hw) != first) {
        return error;
    }
    for f in FACTORS {
        let round = |up: bool| -> Option<Vec<(String, Vec<usize>)>> {
            let to = |d: usize| if up { d.div_ceil(f) * f } else { d / f * f };
            let mut changed = false;
            let mut out = Vec::new();
            for (name, s) in shapes {
                let mut s = s.clone();
                if spatial(&s) {
                    let (h, w) = (to(s[2]), to(s[3]));
                    changed |= (h, w) != (s[2], s[3]);
                    (s[2], s[3]) = (h, w);
                    if h == 0 || w == 0 {
                        return None;
                    }
                }
                out.push((name.clone(), s));
            }
            changed.then_some(out)
        };
        // The factor, when the sizes around the one given build, down and up (not down to 0):
        // a multiple of a smaller factor may build by chance while its neighbour does not.
        let fits: Vec<_> = [round(false), round(true)].into_iter().flatten().collect();
        if fits.is_empty() || !fits.iter().all(|s| builds(s)) {
            continue;
        }
        let size = |s: &[usize]| format!("{}x{}", s[2], s[3]);
        let inputs: Vec<String> = (shapes.iter().enumerate())
            .filter(|(_, (_, s))| spatial(s) && (s[2] % f != 0 || s[3] % f != 0))
            .map(|(i, (name, s))| {
                let tries: Vec<String> = fits.iter().map(|t| size(&t[i].1)).collect();
                format!("`{name}` is {} (try {})", size(s), tries.join(" or "))
            })
            .collect();
        let hint = format!(
            "graph {graph} takes heights and widths that are multiples of {f}: {}; at the size given",
            inputs.join(", ")
        );
        return match error {
            FrontError::At {
                file,
                line,
                col,
                message,
            } => FrontError::At {
                file,
                line,
                col,
                message: format!("{hint}: {message}"),
            },
            FrontError::Plain(message) => FrontError::Plain(format!("{hint}: {message}")),
        };
    }
    error
}
