//! Several kernels' WGSL as one module with one entry point: each part's top-level names get a
//! prefix of their own (`p0_`, `p1_`, ...), its `main` becomes a function, and the new `main`
//! sends each workgroup to its part by the workgroup's index. The parts share the arena bindings
//! and one `offsets` uniform, each part's offsets following the last's.
//!
//! This reads WGSL that `codegen` wrote, whose shape it knows (one binding declaration a line,
//! `offsets.o[i]` for every offset read, one-dimensional workgroups), not WGSL in general, so
//! it is a short scan and not a WGSL parser; what it does not recognise it declines to merge.

use crate::{Kernel, KernelPart};
use std::collections::BTreeSet;

/// A binding of the merged kernel: the arena, and its declaration's `<address space, access`
/// and `: type` around the name.
#[derive(PartialEq)]
struct Binding {
    arena: usize,
    access: String,
    ty: String,
}

/// One part's text and what the merged `main` needs to call it.
struct Part {
    body: String,
    workgroup_size: u32,
    /// The builtins its `main` takes, in order.
    builtins: Vec<String>,
}

/// How many times its own workgroup a part's merged workgroup may be.
const MAX_PADDING: u32 = 8;

impl Part {
    fn uses_subgroups(&self) -> bool {
        self.body.contains("subgroup") || self.builtins.iter().any(|b| b.starts_with("subgroup"))
    }

    /// How many merged workgroups of `size` invocations run one of its own (at least 1).
    fn split(&self, size: u32) -> u32 {
        (self.workgroup_size / size).max(1)
    }
}

/// The merged workgroup size: the smallest part's where every other part's workgroup is a whole
/// number of them (and of subgroups, where one uses subgroups) and `may_split` allows it, so a
/// larger workgroup runs as several merged ones and no invocation idles (sound: parts share no
/// workgroup memory and no barrier). Otherwise the largest part's, a smaller part's extra
/// invocations returning at once (whole subgroups of them where it uses subgroups), at most
/// [`MAX_PADDING`] times its own.
fn merged_size(parts: &[Part], subgroup: u32, may_split: impl Fn(u32) -> bool) -> Option<u32> {
    let whole = |size: u32| subgroup > 0 && size.is_multiple_of(subgroup);
    let smallest = parts.iter().map(|p| p.workgroup_size).min()?;
    let splits = may_split(smallest)
        && parts.iter().all(|p| {
            p.workgroup_size.is_multiple_of(smallest) && (!p.uses_subgroups() || whole(smallest))
        });
    if splits {
        return Some(smallest);
    }
    let size = parts.iter().map(|p| p.workgroup_size).max()?;
    let fits = |p: &Part| {
        (!p.uses_subgroups() || whole(p.workgroup_size)) && size <= MAX_PADDING * p.workgroup_size
    };
    parts.iter().all(fits).then_some(size)
}

/// The kernels as one, in order; `None` where one of them has a shape this does not merge:
/// workgroup memory or barriers (a merged workgroup would hold every part's tiles), a
/// multi-dimensional dispatch or workgroup, an unknown builtin or binding, or workgroups that
/// neither split ([`merged_size`]) nor pad: one more than [`MAX_PADDING`] times smaller than
/// another's, or one that uses subgroups and is not whole `subgroup`s (the device's lanes; 0
/// where unknown). `specialised` (kernels specialised to sizes): parts binding the same arena
/// share one binding, and larger workgroups may split while the dispatch stays within
/// `max_workgroups`. Taking sizes as data, every piece keeps a binding of its own and nothing
/// splits, so that the WGSL does not depend on the workgroup counts.
pub(super) fn merge(
    kernels: &[Kernel],
    (specialised, max_workgroups): (bool, u32),
    subgroup: u32,
) -> Option<Kernel> {
    let mut arenas: Vec<Binding> = Vec::new();
    let mut offsets: Vec<u32> = Vec::new();
    let mut parts = Vec::new();
    let mut dispatch = Vec::new();
    for (i, k) in kernels.iter().enumerate() {
        let [count, 1, 1] = k.workgroups else {
            return None;
        };
        let base = offsets.len() / 4;
        let part = part(k, i, base, specialised, &mut arenas)?;
        offsets.extend(&k.offsets);
        offsets.resize((base + Kernel::offsets_elements(k.offsets.len())) * 4, 0);
        dispatch.push(count);
        parts.push(part);
    }
    let split_total = |size: u32| -> u64 {
        (dispatch.iter().zip(&parts))
            .map(|(&count, p)| count as u64 * p.split(size) as u64)
            .sum()
    };
    let may_split = |size: u32| specialised && split_total(size) <= max_workgroups as u64;
    let size = merged_size(&parts, subgroup, may_split)?;
    // A part of larger workgroups runs each of them as that many merged ones.
    for (count, p) in dispatch.iter_mut().zip(&parts) {
        *count *= p.split(size);
    }
    let total: u32 = dispatch.iter().sum();
    // Each part's last workgroup (one past) and count, read from the uniform so that the WGSL
    // does not depend on the sizes that set them (`Sizes::Data`).
    let ranges = offsets.len() / 4;
    let mut end = 0;
    for &count in &dispatch {
        end += count;
        offsets.extend([end, count, 0, 0]);
    }
    offsets.extend([total, spread(total), 0, 0]);
    let mut src = String::new();
    for (b, a) in arenas.iter().enumerate() {
        src += &format!(
            "@group(0) @binding({b}) var{}> m_a{b}:{};\n",
            a.access, a.ty
        );
    }
    src += &format!(
        "struct Offsets {{ o: array<vec4<u32>, {}> }}\n\
         @group(1) @binding(0) var<uniform> offsets: Offsets;\n",
        offsets.len() / 4
    );
    for p in &parts {
        src += &p.body;
        src += "\n";
    }
    src += &entry(&parts, ranges, size)?;
    let mut names = BTreeSet::new();
    let template = (kernels.iter())
        .filter(|k| names.insert(k.template.as_str()))
        .map(|k| k.template.as_str())
        .collect::<Vec<_>>()
        .join("+");
    let union = |f: fn(&Kernel) -> &Vec<ir::NodeId>| {
        let mut v: Vec<ir::NodeId> = Vec::new();
        for k in kernels {
            v.extend(f(k).iter().filter(|n| !v.contains(n)).collect::<Vec<_>>());
        }
        v
    };
    Some(Kernel {
        name: (kernels.iter())
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>()
            .join(" + "),
        template: format!("merged({template})"),
        nodes: kernels.iter().flat_map(|k| k.nodes.clone()).collect(),
        reads: union(|k| &k.reads),
        writes: union(|k| &k.writes),
        arenas: arenas.iter().map(|a| a.arena).collect(),
        offsets,
        workgroups: [total, 1, 1],
        wgsl: src,
        parts: (kernels.iter())
            .map(|k| KernelPart {
                name: k.name.clone(),
                template: k.template.clone(),
                reads: k.reads.clone(),
                writes: k.writes.clone(),
            })
            .collect(),
    })
}

/// A stride coprime with `total` near `total` / golden ratio: workgroup `w` of the dispatch runs
/// merged workgroup `w * stride % total`, so that any run of consecutive workgroups holds each
/// part in about its share. A CPU adapter hands each thread one run (lavapipe: the first half to
/// one thread, the second to the other), which would otherwise get whole parts of unequal cost.
fn spread(total: u32) -> u32 {
    let gcd = |mut a: u32, mut b: u32| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let start = (total as f64 * 0.618).round() as u32;
    (start.max(1)..total)
        .find(|&s| gcd(s, total) == 1)
        .unwrap_or(1)
}

/// The merged entry point, of `size` invocations: workgroup `w` (spread, [`spread`]) runs part
/// `i` where `w` falls in vec4 `ranges + i` of the offsets (one past its last merged workgroup,
/// their count); the next vec4 holds the total and the stride. A part split over several merged
/// workgroups ([`merged_size`]) gets back its own workgroup and invocation indices.
fn entry(parts: &[Part], ranges: usize, size: u32) -> Option<String> {
    let used: BTreeSet<&str> = parts
        .iter()
        .flat_map(|p| p.builtins.iter().map(String::as_str))
        .collect();
    let mut params = vec![
        "@builtin(workgroup_id) m_wid: vec3<u32>".to_string(),
        "@builtin(local_invocation_index) m_lid: u32".to_string(),
    ];
    for (name, param) in [
        ("subgroup_invocation_id", "m_sid: u32"),
        ("subgroup_size", "m_ssz: u32"),
    ] {
        if used.contains(name) {
            params.push(format!("@builtin({name}) {param}"));
        }
    }
    let mut body = format!(
        "    let m_spread = offsets.o[{}u];\n    let m_w = m_wid.x * m_spread.y % m_spread.x;\n",
        ranges + parts.len()
    );
    for (i, p) in parts.iter().enumerate() {
        let (wg, split) = (p.workgroup_size, p.split(size));
        let range = format!("m_r{i}");
        // The part's merged workgroup, its own workgroup and invocation index.
        let local = format!("(m_w - ({range}.x - {range}.y))");
        let (group, lid) = match split {
            1 => (local.clone(), "m_lid".to_string()),
            _ => (
                format!("{local} / {split}u"),
                format!("{local} % {split}u * {size}u + m_lid"),
            ),
        };
        let args = (p.builtins.iter())
            .map(|b| {
                Some(match b.as_str() {
                    "workgroup_id" => format!("vec3<u32>({group}, 0u, 0u)"),
                    "num_workgroups" => match split {
                        1 => format!("vec3<u32>({range}.y, 1u, 1u)"),
                        _ => format!("vec3<u32>({range}.y / {split}u, 1u, 1u)"),
                    },
                    "local_invocation_index" => lid.clone(),
                    "local_invocation_id" => format!("vec3<u32>({lid}, 0u, 0u)"),
                    "global_invocation_id" => {
                        format!("vec3<u32>({group} * {wg}u + {lid}, 0u, 0u)")
                    }
                    "subgroup_invocation_id" => "m_sid".into(),
                    "subgroup_size" => "m_ssz".into(),
                    _ => return None,
                })
            })
            .collect::<Option<Vec<_>>>()?
            .join(", ");
        let call = match wg < size {
            true => format!("if (m_lid < {wg}u) {{\n            p{i}_main({args});\n        }}"),
            false => format!("p{i}_main({args});"),
        };
        body += &format!(
            "    let {range} = offsets.o[{}u];\n    if (m_w < {range}.x) {{\n        {call}\n        return;\n    }}\n",
            ranges + i
        );
    }
    Some(format!(
        "@compute @workgroup_size({size})\nfn main({}) {{\n{body}}}\n",
        params.join(", ")
    ))
}

/// Kernel `k` as part `i` of a merge whose offsets so far fill `base` vec4s; its bindings join
/// `arenas`.
fn part(
    k: &Kernel,
    i: usize,
    base: usize,
    share_arenas: bool,
    arenas: &mut Vec<Binding>,
) -> Option<Part> {
    let src = &k.wgsl;
    if [
        "var<workgroup>",
        "Barrier(",
        "enable ",
        "override ",
        "@group(2)",
    ]
    .iter()
    .any(|s| src.contains(s))
    {
        return None;
    }
    let mut renames: Vec<(String, String)> = Vec::new();
    let mut kept = String::new();
    for line in src.lines() {
        // Comments go: braces in them would mislead the scan of top-level names.
        let line = line.split("//").next().unwrap_or("");
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("@group(0) @binding(") {
            // `@group(0) @binding(B) var<storage, ACCESS> NAME: TYPE;`
            let (b, decl) = rest.split_once(") var")?;
            let b: usize = b.parse().ok()?;
            let (access, name_ty) = decl.split_once("> ")?;
            let (name, ty) = name_ty.split_once(':')?;
            let binding = Binding {
                arena: *k.arenas.get(b)?,
                access: access.to_string(),
                ty: ty.trim_end_matches(';').to_string(),
            };
            let found = (arenas.iter()).position(|a| share_arenas && *a == binding);
            let slot = found.unwrap_or_else(|| {
                arenas.push(binding);
                arenas.len() - 1
            });
            renames.push((name.to_string(), format!("m_a{slot}")));
            continue;
        }
        if line.starts_with("@group(1) @binding(0) var<uniform> offsets")
            || line.starts_with("struct Offsets ")
        {
            continue;
        }
        if line.starts_with("@group(") {
            return None;
        }
        kept += line;
        kept += "\n";
    }
    let (workgroup_size, builtins, kept) = entry_as_function(&kept)?;
    let declared = top_level_names(&kept);
    if declared.contains("offsets") || members_clash(&kept, &declared) {
        return None;
    }
    let prefix = format!("p{i}_");
    let body = rename(&kept, |name| {
        if let Some((_, to)) = renames.iter().find(|(from, _)| from == name) {
            return Some(to.clone());
        }
        declared.contains(name).then(|| format!("{prefix}{name}"))
    });
    let body = body.replace("offsets.o[", &format!("offsets.o[{base}u + "));
    Some(Part {
        body,
        workgroup_size,
        builtins,
    })
}

/// The kernel's `@compute @workgroup_size(N) fn main(@builtin(b) x: T, ...)` as `fn main(x: T,
/// ...)`: its workgroup size (a literal or a `const` of the module), builtins and new text.
fn entry_as_function(src: &str) -> Option<(u32, Vec<String>, String)> {
    let at = src.find("@compute")?;
    let open = at + src[at..].find("fn main(")? + "fn main(".len();
    let close = open + matching_paren(&src[open..])?;
    let attrs = &src[at..open];
    let size = attrs
        .split("@workgroup_size(")
        .nth(1)?
        .split(')')
        .next()?
        .trim();
    let workgroup_size = match size.parse::<u32>() {
        Ok(n) => n,
        Err(_) => constant(src, size)?,
    };
    let mut builtins = Vec::new();
    let mut params = Vec::new();
    for p in src[open..close]
        .split(", ")
        .filter(|p| !p.trim().is_empty())
    {
        let rest = p.trim().strip_prefix("@builtin(")?;
        let (builtin, param) = rest.split_once(") ")?;
        builtins.push(builtin.to_string());
        params.push(param.to_string());
    }
    let text = format!(
        "{}fn main({}{}",
        &src[..at],
        params.join(", "),
        &src[close..]
    );
    Some((workgroup_size, builtins, text))
}

/// The value of `const NAME: u32 = Nu;` in `src`.
fn constant(src: &str, name: &str) -> Option<u32> {
    let decl = format!("const {name}: u32 = ");
    let rest = &src[src.find(&decl)? + decl.len()..];
    rest.split(['u', ';']).next()?.trim().parse().ok()
}

/// The offset in `s` of the `)` that closes a `(` just before `s`.
fn matching_paren(s: &str) -> Option<usize> {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Identifiers of `src` with their byte ranges, and whether a `.` comes right before (a member).
fn identifiers(src: &str) -> Vec<(usize, usize, bool)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let before = b[..start].iter().rev().find(|c| !c.is_ascii_whitespace());
            let member = before == Some(&b'.');
            out.push((start, i, member));
        } else if c.is_ascii_digit() {
            // A number with its suffix (`2u`, `1e-5`) is not an identifier.
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// `src` with each identifier that is not a member access renamed where `to` says.
fn rename(src: &str, to: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(src.len() + src.len() / 8);
    let mut last = 0;
    for (s, e, member) in identifiers(src) {
        if member {
            continue;
        }
        if let Some(new) = to(&src[s..e]) {
            out += &src[last..s];
            out += &new;
            last = e;
        }
    }
    out += &src[last..];
    out
}

/// The names `src` declares at its top level (functions, constants, variables, structs,
/// aliases).
fn top_level_names(src: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut depth = 0i32;
    let mut pending = false;
    let mut last = 0;
    for (s, e, _) in identifiers(src) {
        depth += brace_change(&src[last..s]);
        last = s;
        let word = &src[s..e];
        if depth == 0 && pending {
            // `var<private> x`: the address space's words come first.
            if !matches!(
                word,
                "private" | "uniform" | "storage" | "read" | "read_write"
            ) {
                names.insert(word.to_string());
                pending = false;
            }
            continue;
        }
        pending = depth == 0 && matches!(word, "fn" | "const" | "var" | "struct" | "alias");
    }
    names
}

fn brace_change(s: &str) -> i32 {
    s.chars()
        .map(|c| match c {
            '{' => 1,
            '}' => -1,
            _ => 0,
        })
        .sum()
}

/// Whether a struct of `src` has a member named like a top-level name (which renaming would
/// take apart from its uses).
fn members_clash(src: &str, declared: &BTreeSet<String>) -> bool {
    src.split("struct ").skip(1).any(|s| {
        let body = s.split('{').nth(1).and_then(|b| b.split('}').next());
        body.is_some_and(|b| {
            b.split(',')
                .filter_map(|m| m.split(':').next())
                .any(|m| declared.contains(m.trim()))
        })
    })
}

#[cfg(test)]
#[path = "wgsl_tests.rs"]
mod tests;
