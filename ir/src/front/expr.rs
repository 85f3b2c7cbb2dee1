//! Arithmetic in model files: a string like `"(4 + k) * N"` over parameters, block arguments and
//! repetition indices, with `+ - * /`, parentheses and unary minus. `/` is integer division
//! (rounding toward zero) when both sides are whole numbers, as channel arithmetic wants.

use super::error::{Diag, R};
use super::syntax::Span;
use std::collections::BTreeMap;

/// The names a number may use, with their values.
pub type Env = BTreeMap<String, f64>;

/// Evaluate `text`, written in a string at `span` (errors point inside the string).
pub fn eval(text: &str, span: Span, env: &Env) -> R<f64> {
    // Parentheses and minus signs recurse; a bound keeps a hostile string from overflowing the stack.
    if text.len() > 200 {
        return Err(Diag::at(
            span,
            format!("expression longer than 200 characters: \"{text}\""),
        ));
    }
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        span,
        text,
        env,
    };
    let v = p.sum()?;
    p.blank();
    if p.pos < p.chars.len() {
        return Err(p.err(format!(
            "expected an operator or the end, found `{}`",
            p.chars[p.pos]
        )));
    }
    Ok(v)
}

/// The value of a name, or an error that lists what is known.
pub fn lookup(name: &str, env: &Env, span: Span) -> R<f64> {
    env.get(name).copied().ok_or_else(|| {
        let known: Vec<&str> = env.keys().map(String::as_str).collect();
        Diag::at(
            span,
            format!("unknown name `{name}`; known here: {}", known.join(", ")),
        )
    })
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    span: Span,
    text: &'a str,
    env: &'a Env,
}

impl Parser<'_> {
    /// Position of the current character: one past the opening quote, same line.
    fn here(&self) -> Span {
        Span {
            line: self.span.line,
            col: self.span.col + 1 + self.pos,
        }
    }
    fn err(&self, msg: String) -> Diag {
        Diag::at(
            self.here(),
            format!("in expression \"{}\": {msg}", self.text),
        )
    }
    fn blank(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }
    fn peek(&mut self) -> Option<char> {
        self.blank();
        self.chars.get(self.pos).copied()
    }

    fn sum(&mut self) -> R<f64> {
        let mut v = self.product()?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.pos += 1;
            let r = self.product()?;
            v = if op == '+' { v + r } else { v - r };
        }
        Ok(v)
    }

    fn product(&mut self) -> R<f64> {
        let mut v = self.unary()?;
        while let Some(op @ ('*' | '/')) = self.peek() {
            self.pos += 1;
            let at = self.here();
            let r = self.unary()?;
            v = if op == '*' {
                v * r
            } else if r == 0.0 {
                return Err(Diag::at(
                    at,
                    format!("in expression \"{}\": division by zero", self.text),
                ));
            } else if v.fract() == 0.0 && r.fract() == 0.0 {
                (v / r).trunc()
            } else {
                v / r
            };
        }
        Ok(v)
    }

    fn unary(&mut self) -> R<f64> {
        match self.peek() {
            Some('-') => {
                self.pos += 1;
                Ok(-self.unary()?)
            }
            Some('(') => {
                self.pos += 1;
                let v = self.sum()?;
                if self.peek() != Some(')') {
                    return Err(self.err("expected `)`".into()));
                }
                self.pos += 1;
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => {
                let start = self.pos;
                while self
                    .chars
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_digit() || *c == '.')
                {
                    self.pos += 1;
                }
                let s: String = self.chars[start..self.pos].iter().collect();
                s.parse()
                    .map_err(|_| self.err(format!("`{s}` is not a number")))
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                let at = self.here();
                let start = self.pos;
                while self
                    .chars
                    .get(self.pos)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos].iter().collect();
                lookup(&name, self.env, at).map_err(|d| Diag {
                    message: format!("in expression \"{}\": {}", self.text, d.message),
                    ..d
                })
            }
            Some(c) => Err(self.err(format!("expected a number, a name or `(`, found `{c}`"))),
            None => Err(self.err("expected a number, a name or `(`, found the end".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        [("N".to_string(), 64.0), ("k".to_string(), 3.0)].into()
    }

    #[test]
    fn arithmetic() {
        let s = Span { line: 1, col: 1 };
        assert_eq!(eval("(4 + k) * N", s, &env()).unwrap(), 448.0);
        assert_eq!(eval("k / 2", s, &env()).unwrap(), 1.0);
        assert_eq!(eval("-k / 2", s, &env()).unwrap(), -1.0);
        assert_eq!(eval("1 / 0.5 - 2 * -1", s, &env()).unwrap(), 4.0);
    }

    #[test]
    fn errors_point_into_the_string() {
        let s = Span { line: 2, col: 10 };
        assert_eq!(
            eval("4 * q", s, &env()).unwrap_err().to_string(),
            "2:15: in expression \"4 * q\": unknown name `q`; known here: N, k"
        );
        assert_eq!(
            eval("(1 + 2", s, &env()).unwrap_err().to_string(),
            "2:17: in expression \"(1 + 2\": expected `)`"
        );
        assert_eq!(
            eval("N / 0", s, &env()).unwrap_err().to_string(),
            "2:14: in expression \"N / 0\": division by zero"
        );
    }
}
