//! Reading the fields of one struct of the model file (`Conv(in: x, out: 64, kernel: 3)`):
//! each field is asked for by name, numbers are evaluated, and what was never asked for is an
//! error that lists what would have been understood.

use super::error::{Diag, R};
use super::expr::{self, Env};
use super::syntax::{Key, Kind, Span, Value};

/// A struct's name (if any) and its fields.
pub type Named<'a> = (Option<&'a str>, &'a [(Key, Value)]);

/// The fields of one struct, with a record of which ones were read.
pub struct Fields<'a> {
    /// What the struct is, for messages: `Conv`, `block CBR`, `Model`.
    pub what: String,
    pub span: Span,
    fields: &'a [(Key, Value)],
    asked: Vec<String>,
}

impl<'a> Fields<'a> {
    pub fn new(what: impl Into<String>, span: Span, fields: &'a [(Key, Value)]) -> Self {
        Fields {
            what: what.into(),
            span,
            fields,
            asked: Vec::new(),
        }
    }

    /// `Name(..)` with named fields (`Name()` and, where `bare` allows, a bare `Name` count as
    /// structs without fields). Returns the name (if any) and the fields.
    pub fn of(v: &'a Value, bare: bool) -> Option<Named<'a>> {
        match &v.kind {
            Kind::Struct(name, f) => Some((name.as_deref(), f.as_slice())),
            Kind::Tuple(Some(name), items) if items.is_empty() => Some((Some(name), &[])),
            Kind::Ident(name) if bare => Some((Some(name), &[])),
            _ => None,
        }
    }

    pub fn get(&mut self, name: &str) -> Option<&'a Value> {
        self.asked.push(name.to_string());
        self.fields
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
    }

    /// A required field; `noun` words the message (`field`, `argument`, `input`).
    pub fn req_as(&mut self, name: &str, noun: &str) -> R<&'a Value> {
        self.get(name).ok_or_else(|| {
            // A misspelt field shows up as a missing one; point at it.
            let near = self
                .fields
                .iter()
                .find(|(k, _)| !self.asked.contains(&k.name) && distance(&k.name, name) <= 2);
            match near {
                Some((k, _)) => Diag::at(
                    k.span,
                    format!(
                        "{} has no {noun} `{}`; did you mean `{name}`?",
                        self.what, k.name
                    ),
                ),
                None => Diag::at(
                    self.span,
                    format!("missing {noun} `{name}` of {}", self.what),
                ),
            }
        })
    }

    pub fn req(&mut self, name: &str) -> R<&'a Value> {
        self.req_as(name, "field")
    }

    /// Every field was read; otherwise name the first unknown one and list the known ones.
    pub fn finish_as(self, noun: &str) -> R<()> {
        match self
            .fields
            .iter()
            .find(|(k, _)| !self.asked.contains(&k.name))
        {
            None => Ok(()),
            Some((k, _)) => {
                let known = if self.asked.is_empty() {
                    format!("it takes no {noun}s")
                } else {
                    format!("expected one of {}", self.asked.join(", "))
                };
                Err(Diag::at(
                    k.span,
                    format!("{} has no {noun} `{}`; {known}", self.what, k.name),
                ))
            }
        }
    }

    pub fn finish(self) -> R<()> {
        self.finish_as("field")
    }

    /// The fields that were not asked for yet (a block call's inputs and arguments).
    pub fn rest(&self) -> impl Iterator<Item = &'a (Key, Value)> + '_ {
        self.fields
            .iter()
            .filter(|(k, _)| !self.asked.contains(&k.name))
    }
}

/// Edit distance (Levenshtein), for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// "expected X, found Y" at the value.
pub fn expected(v: &Value, what: &str) -> Diag {
    Diag::at(
        v.span,
        format!("expected {what}, found {}", v.kind.describe()),
    )
}

/// A number: a literal, a name (parameter, argument, index) or an expression string.
pub fn num(v: &Value, env: &Env) -> R<f64> {
    match &v.kind {
        Kind::Num(n) => Ok(*n),
        Kind::Str(s) => expr::eval(s, v.span, env),
        Kind::Ident(name) => expr::lookup(name, env, v.span),
        _ => Err(expected(v, "a number, a name or an expression string")),
    }
}

/// A whole number of at least `min` (sizes: 1, paddings: 0), named `field` in messages.
pub fn whole(v: &Value, env: &Env, field: &str, min: usize) -> R<usize> {
    let n = num(v, env)?;
    if n.fract() != 0.0 || n < min as f64 {
        let from = match &v.kind {
            Kind::Num(_) => String::new(),
            Kind::Str(s) => format!(" (from \"{s}\")"),
            Kind::Ident(i) => format!(" (from `{i}`)"),
            _ => String::new(),
        };
        return Err(Diag::at(
            v.span,
            format!("`{field}` must be a whole number >= {min}, found {n}{from}"),
        ));
    }
    // Beyond any real tensor, and it keeps products of sizes from overflowing.
    if n > MAX_SIZE as f64 {
        return Err(Diag::at(
            v.span,
            format!("`{field}` is too large: {n} (at most {MAX_SIZE})"),
        ));
    }
    Ok(n as usize)
}

/// The largest size or padding a model may write.
pub const MAX_SIZE: usize = 1 << 24;

/// A list `[..]` of values.
pub fn list<'v>(v: &'v Value, what: &str) -> R<&'v [Value]> {
    match &v.kind {
        Kind::List(items) => Ok(items),
        _ => Err(expected(v, what)),
    }
}

/// A map `{..}` of entries.
pub fn map<'v>(v: &'v Value, what: &str) -> R<&'v [(Key, Value)]> {
    match &v.kind {
        Kind::Map(entries) => Ok(entries),
        _ => Err(expected(v, what)),
    }
}

/// A bare identifier.
pub fn ident<'v>(v: &'v Value, what: &str) -> R<&'v str> {
    match &v.kind {
        Kind::Ident(name) => Ok(name),
        _ => Err(expected(v, what)),
    }
}
