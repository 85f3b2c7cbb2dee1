//! A kernel's constants, and which of them it reads from its uniform instead (`Sizes::Data`).
//!
//! Templates name their constants (`X_H`, `GN`, `TOTAL`) and say which depend on the image size
//! ([`KernelBuilder::size`](super::KernelBuilder::size)). Specialised, every constant is a WGSL
//! `const`. Taking sizes as data, the size-dependent ones (and the accessors' strides) follow the
//! operands' offsets in the `offsets` uniform, so the WGSL is the same at every image size.
//! `main` copies them into private variables, which lavapipe keeps in registers; a kernel with
//! workgroup barriers reads the uniform where it uses them instead, because WGSL's uniformity
//! analysis takes a private variable for a value that may differ between invocations.

use std::fmt::Write;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Value {
    U32(u32),
    F32(f64),
}

/// A named constant of a template.
pub(crate) struct Constant {
    pub name: String,
    pub value: Value,
    /// It depends on the image size.
    pub size: bool,
}

/// The constants a kernel reads from its uniform, after its `offsets` offsets.
pub(crate) struct Uniforms {
    data: bool,
    offsets: usize,
    params: Vec<(String, Value)>,
}

impl Uniforms {
    /// `data`: sizes are data (`Sizes::Data`); `offsets`: the slots the operands' offsets take.
    pub fn new(data: bool, offsets: usize) -> Uniforms {
        Uniforms {
            data,
            offsets,
            params: Vec::new(),
        }
    }

    /// The declaration of `c`, or nothing where it is read from the uniform.
    pub fn declare(&mut self, c: &Constant) -> String {
        if c.size && self.data {
            self.params.push((c.name.clone(), c.value));
            return String::new();
        }
        match c.value {
            Value::U32(v) => format!("const {}: u32 = {v}u;\n", c.name),
            Value::F32(v) => format!("const {}: f32 = {};\n", c.name, ir::ops::wgsl_f32(v)),
        }
    }

    /// A number in an accessor (a stride, a piece's first channel): a literal, or (where it
    /// depends on the image size and sizes are data) the parameter `name`.
    pub fn number(&mut self, name: String, v: u32, size: bool) -> String {
        match size && self.data {
            true => {
                self.params.push((name.clone(), Value::U32(v)));
                name
            }
            false => format!("{v}u"),
        }
    }

    /// The uniform's slots: the offsets, then the parameters' bits.
    pub fn slots(&self, offsets: &[u32]) -> Vec<u32> {
        let params = self.params.iter().map(|(_, v)| match *v {
            Value::U32(v) => v,
            Value::F32(v) => (v as f32).to_bits(),
        });
        offsets.iter().copied().chain(params).collect()
    }

    /// The WGSL that reads parameter `k` from the uniform.
    fn read(&self, k: usize) -> String {
        let slot = self.offsets + k;
        let at = format!("offsets.o[{}].{}", slot / 4, XYZW[slot % 4]);
        match self.params[k].1 {
            Value::U32(_) => at,
            Value::F32(_) => format!("bitcast<f32>({at})"),
        }
    }

    /// The `offsets` uniform, the private variables `main` copies it into (`off_<slot>`, and
    /// the parameters but where `body` has barriers: their uses then read the uniform, see
    /// `substitute`), and `load_offsets`, which fills them. A uniform array's elements are 16
    /// bytes, four slots each. lavapipe re-reads a uniform at every use inside a loop, but keeps
    /// a private variable in a register (benches/README.md).
    pub fn declarations(&self, body: &str) -> String {
        let slots = self.offsets + self.params.len();
        let mut s = format!(
            "struct Offsets {{ o: array<vec4<u32>, {}> }}\n\
             @group(1) @binding(0) var<uniform> offsets: Offsets;\n",
            crate::Kernel::offsets_elements(slots)
        );
        let mut load = String::from("fn load_offsets() {\n");
        for i in 0..self.offsets {
            let _ = writeln!(s, "var<private> off_{i}: u32;");
            let _ = writeln!(load, "    off_{i} = offsets.o[{}].{};", i / 4, XYZW[i % 4]);
        }
        let (decls, loads) = self.privates(body);
        s.push_str(&decls);
        load.push_str(&loads);
        load.push_str("}\n");
        s + &load
    }

    /// Private variables for the parameters, and the lines of `load_offsets` that fill them;
    /// none where `body` has barriers.
    fn privates(&self, body: &str) -> (String, String) {
        let (mut decls, mut loads) = (String::new(), String::new());
        if has_barriers(body) {
            return (decls, loads);
        }
        for (k, (name, v)) in self.params.iter().enumerate() {
            let ty = match v {
                Value::U32(_) => "u32",
                Value::F32(_) => "f32",
            };
            let _ = writeln!(decls, "var<private> {name}: {ty};");
            let _ = writeln!(loads, "    {name} = {};", self.read(k));
        }
        (decls, loads)
    }

    /// `body` with each use of a parameter reading the uniform, where it has barriers.
    pub fn substitute(&self, body: String) -> String {
        if self.params.is_empty() || !has_barriers(&body) {
            return body;
        }
        let mut out = String::with_capacity(body.len());
        let mut rest = body.as_str();
        while let Some(start) = rest.find(is_ident) {
            out.push_str(&rest[..start]);
            let len = rest[start..]
                .find(|c| !is_ident(c))
                .unwrap_or(rest.len() - start);
            let word = &rest[start..start + len];
            match self.params.iter().position(|(n, _)| n == word) {
                Some(k) => out.push_str(&self.read(k)),
                None => out.push_str(word),
            }
            rest = &rest[start + len..];
        }
        out.push_str(rest);
        out
    }
}

const XYZW: [&str; 4] = ["x", "y", "z", "w"];

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn has_barriers(body: &str) -> bool {
    body.contains("Barrier(")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_constants_move_to_the_uniform_only_as_data() {
        let c = |name: &str, size| Constant {
            name: name.into(),
            value: Value::U32(64),
            size,
        };
        let mut fixed = Uniforms::new(false, 2);
        assert_eq!(fixed.declare(&c("X_H", true)), "const X_H: u32 = 64u;\n");
        assert_eq!(fixed.number("s".into(), 4096, true), "4096u");
        let mut data = Uniforms::new(true, 3);
        assert_eq!(data.declare(&c("KH", false)), "const KH: u32 = 64u;\n");
        assert_eq!(data.declare(&c("X_H", true)), "");
        assert_eq!(data.number("sz_0_h".into(), 80, true), "sz_0_h");
        assert_eq!(data.number("sz_1_h".into(), 9, false), "9u");
        assert_eq!(data.slots(&[7, 8, 9]), [7, 8, 9, 64, 80]);
        let (decls, loads) = data.privates("let a = X_H;");
        assert_eq!(decls, "var<private> X_H: u32;\nvar<private> sz_0_h: u32;\n");
        assert_eq!(
            loads,
            "    X_H = offsets.o[0].w;\n    sz_0_h = offsets.o[1].x;\n"
        );
        let barrier = "if (i < X_H) { x = X_HX + sz_0_h; }\nworkgroupBarrier();";
        assert_eq!(data.privates(barrier).0, "");
        assert_eq!(
            data.substitute(barrier.into()),
            "if (i < offsets.o[0].w) { x = X_HX + offsets.o[1].x; }\nworkgroupBarrier();"
        );
    }
}
