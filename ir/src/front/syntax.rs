//! A small reader of RON syntax that keeps the position of every value.
//!
//! Why not the `ron` crate: it reports positions only for syntax errors, while irdc must say
//! where every *semantic* mistake is (an unknown op, a missing argument, a channel mismatch).
//! So the model file is read here into a [`Value`] tree whose every node carries its [`Span`],
//! and the front end interprets that tree. Accepted: structs `Name(field: v, ..)`, tuples
//! `(a, b)` / `Name(a, b)`, lists `[..]`, maps `{ key: v }` (identifier, string or integer keys),
//! strings, numbers, bools, identifiers, `//` and `/* */` comments, trailing commas. Duplicate
//! keys of a map or struct are an error here, because a later one would silently win.

use super::error::Diag;

/// 1-based line and column (in characters) of the first character of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A map key or struct field name, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: Kind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `Name(field: v, ..)` or `(field: v, ..)`; `Name()` is a struct without fields.
    Struct(Option<String>, Vec<(Key, Value)>),
    /// `Name(a, b)` or `(a, b)`.
    Tuple(Option<String>, Vec<Value>),
    List(Vec<Value>),
    Map(Vec<(Key, Value)>),
    Str(String),
    Num(f64),
    Bool(bool),
    Ident(String),
}

impl Kind {
    /// What a value is, for "expected .., found .." messages.
    pub fn describe(&self) -> String {
        match self {
            Kind::Struct(Some(n), _) | Kind::Tuple(Some(n), _) => format!("`{n}(..)`"),
            Kind::Struct(None, _) | Kind::Tuple(None, _) => "a tuple `(..)`".into(),
            Kind::List(_) => "a list `[..]`".into(),
            Kind::Map(_) => "a map `{..}`".into(),
            Kind::Str(s) => format!("the string \"{s}\""),
            Kind::Num(n) => format!("the number {n}"),
            Kind::Bool(b) => format!("`{b}`"),
            Kind::Ident(i) => format!("`{i}`"),
        }
    }
}

/// Read one value filling the whole source.
pub fn read(source: &str) -> Result<Value, Diag> {
    let mut r = Reader {
        chars: source.chars().collect(),
        pos: 0,
        line: 1,
        col: 1,
        depth: 0,
    };
    let v = r.value()?;
    r.skip_blank()?;
    if r.pos < r.chars.len() {
        return Err(r.unexpected("the end of the file"));
    }
    Ok(v)
}

struct Reader {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
    /// Nesting depth, bounded so a malformed file cannot overflow the stack.
    depth: usize,
}

impl Reader {
    fn here(&self) -> Span {
        Span {
            line: self.line,
            col: self.col,
        }
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }
    fn unexpected(&self, expected: &str) -> Diag {
        let found = match self.peek() {
            None => "the end of the file".to_string(),
            Some(c) if c.is_alphanumeric() || c == '_' => {
                let w: String = self.chars[self.pos..]
                    .iter()
                    .take_while(|c| c.is_alphanumeric() || **c == '_')
                    .collect();
                format!("`{w}`")
            }
            Some(c) => format!("`{c}`"),
        };
        Diag::at(self.here(), format!("expected {expected}, found {found}"))
    }

    fn skip_blank(&mut self) -> Result<(), Diag> {
        loop {
            match (self.peek(), self.chars.get(self.pos + 1)) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = self.here();
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(Diag::at(start, "unterminated comment `/* .. */`")),
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            _ => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn eat(&mut self, c: char) -> Result<bool, Diag> {
        self.skip_blank()?;
        if self.peek() == Some(c) {
            self.bump();
            return Ok(true);
        }
        Ok(false)
    }

    fn value(&mut self) -> Result<Value, Diag> {
        self.skip_blank()?;
        let span = self.here();
        if self.depth >= 100 {
            return Err(Diag::at(span, "values nested more than 100 deep"));
        }
        self.depth += 1;
        let v = self.value_inner(span);
        self.depth -= 1;
        v
    }

    fn value_inner(&mut self, span: Span) -> Result<Value, Diag> {
        let kind = match self.peek() {
            Some('[') => {
                self.bump();
                Kind::List(self.items(']')?)
            }
            Some('{') => {
                self.bump();
                Kind::Map(self.entries('}', "a key")?)
            }
            Some('(') => self.parens(None)?,
            Some('"') => Kind::Str(self.string()?),
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                Kind::Num(self.number()?)
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                let id = self.ident();
                match id.as_str() {
                    "true" => Kind::Bool(true),
                    "false" => Kind::Bool(false),
                    _ => {
                        self.skip_blank()?;
                        if self.peek() == Some('(') {
                            self.parens(Some(id))?
                        } else {
                            Kind::Ident(id)
                        }
                    }
                }
            }
            _ => return Err(self.unexpected("a value")),
        };
        Ok(Value { kind, span })
    }

    /// After an optional name: `(field: v, ..)`, `(a, b)` or `()`. A struct is recognised by an
    /// identifier followed by `:` as its first item.
    fn parens(&mut self, name: Option<String>) -> Result<Kind, Diag> {
        self.bump(); // (
        self.skip_blank()?;
        let save = (self.pos, self.line, self.col);
        let is_struct = if self.peek().is_some_and(|c| c.is_alphabetic() || c == '_') {
            self.ident();
            let colon = self.eat(':')?;
            (self.pos, self.line, self.col) = save;
            colon
        } else {
            self.peek() == Some(')')
        };
        if is_struct {
            Ok(Kind::Struct(name, self.entries(')', "a field name")?))
        } else {
            Ok(Kind::Tuple(name, self.items(')')?))
        }
    }

    fn items(&mut self, close: char) -> Result<Vec<Value>, Diag> {
        let mut out = Vec::new();
        loop {
            if self.eat(close)? {
                return Ok(out);
            }
            out.push(self.value()?);
            if !self.eat(',')? {
                if self.eat(close)? {
                    return Ok(out);
                }
                return Err(self.unexpected(&format!("`,` or `{close}`")));
            }
        }
    }

    fn entries(&mut self, close: char, what: &str) -> Result<Vec<(Key, Value)>, Diag> {
        let mut out: Vec<(Key, Value)> = Vec::new();
        loop {
            if self.eat(close)? {
                return Ok(out);
            }
            let span = self.here();
            let name = match self.peek() {
                Some(c) if c.is_alphabetic() || c == '_' => self.ident(),
                Some(c) if c.is_ascii_digit() && close == '}' => self.ident(),
                Some('"') if close == '}' => self.string()?,
                _ => return Err(self.unexpected(what)),
            };
            if let Some((first, _)) = out.iter().find(|(k, _)| k.name == name) {
                return Err(Diag::at(
                    span,
                    format!("duplicate key `{name}`; the first is at {}", first.span),
                ));
            }
            if !self.eat(':')? {
                return Err(self.unexpected(&format!("`:` after `{name}`")));
            }
            let v = self.value()?;
            out.push((Key { name, span }, v));
            if !self.eat(',')? {
                if self.eat(close)? {
                    return Ok(out);
                }
                return Err(self.unexpected(&format!("`,` or `{close}`")));
            }
        }
    }

    fn ident(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            s.push(c);
            self.bump();
        }
        s
    }

    fn string(&mut self) -> Result<String, Diag> {
        let start = self.here();
        self.bump(); // "
        let mut s = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => return Err(Diag::at(start, "unterminated string")),
                Some('"') => return Ok(s),
                Some('\\') => match self.bump() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some(c @ ('"' | '\\')) => s.push(c),
                    _ => {
                        return Err(Diag::at(
                            start,
                            "unknown escape in string; use \\n, \\t, \\\" or \\\\",
                        ))
                    }
                },
                Some(c) => s.push(c),
            }
        }
    }

    fn number(&mut self) -> Result<f64, Diag> {
        let start = self.here();
        let mut s = String::new();
        if let Some(c @ ('-' | '+')) = self.peek() {
            s.push(c);
            self.bump();
        }
        while let Some(c) = self.peek() {
            let exp_sign = (c == '-' || c == '+') && s.ends_with(['e', 'E']);
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || exp_sign {
                if c != '_' {
                    s.push(c);
                }
                self.bump();
            } else {
                break;
            }
        }
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| Diag::at(start, format!("expected a number, found `{s}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_with_positions() {
        let v = read("// c\nA(x: [1, -2.5e1], /* b */ y: { k: \"s\", 0: B() }, z: (c, true),)")
            .unwrap();
        let Kind::Struct(Some(name), fields) = &v.kind else {
            panic!("{v:?}")
        };
        assert_eq!(name, "A");
        assert_eq!(v.span, Span { line: 2, col: 1 });
        assert_eq!(
            fields[0].1.kind,
            Kind::List(vec![
                Value {
                    kind: Kind::Num(1.0),
                    span: Span { line: 2, col: 7 }
                },
                Value {
                    kind: Kind::Num(-25.0),
                    span: Span { line: 2, col: 10 }
                },
            ])
        );
        let Kind::Map(m) = &fields[1].1.kind else {
            panic!()
        };
        assert_eq!(m[1].0.name, "0");
        assert_eq!(m[1].1.kind, Kind::Struct(Some("B".into()), vec![]));
        let Kind::Tuple(None, t) = &fields[2].1.kind else {
            panic!()
        };
        assert_eq!(t[1].kind, Kind::Bool(true));
    }

    #[test]
    fn errors() {
        assert_eq!(
            read(&"[".repeat(1000)).unwrap_err().to_string(),
            "1:101: values nested more than 100 deep"
        );
        assert_eq!(
            read("A(x: 1 y: 2)").unwrap_err().to_string(),
            "1:8: expected `,` or `)`, found `y`"
        );
        assert_eq!(
            read("{a: 1, a: 2}").unwrap_err().to_string(),
            "1:8: duplicate key `a`; the first is at 1:2"
        );
        assert_eq!(
            read("[1, 2").unwrap_err().to_string(),
            "1:6: expected `,` or `]`, found the end of the file"
        );
    }
}
