//! Errors of the front end. Inside, a [`Diag`] carries a position and a message; at the API it
//! becomes a [`FrontError`] that names the file too and prints like a compiler's:
//! `models/bad.ron:12:9: error: in generator.ird.3: unknown op `Conv3`; expected one of ..`.

use super::syntax::Span;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrontError {
    /// A mistake in the model file, at a position.
    #[error("{file}:{line}:{col}: error: {message}")]
    At {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// A mistake with no position in the file: a missing file, a bad `--set`, an unknown graph.
    /// The command line says `error:` before it, as before any other error.
    #[error("{0}")]
    Plain(String),
}

/// A message with an optional position in the model file (the file is added at the API).
#[derive(Debug, Clone, PartialEq)]
pub struct Diag {
    pub span: Option<Span>,
    /// The node path, e.g. `generator.ird.3.inception`; the innermost one that is known wins.
    pub path: Option<String>,
    pub message: String,
}

impl Diag {
    pub fn at(span: Span, message: impl Into<String>) -> Diag {
        Diag {
            span: Some(span),
            path: None,
            message: message.into(),
        }
    }
    pub fn plain(message: impl Into<String>) -> Diag {
        Diag {
            span: None,
            path: None,
            message: message.into(),
        }
    }
    /// Name the node path the mistake belongs to: `in generator.ird.3: ..`.
    pub fn in_path(mut self, path: &str) -> Diag {
        if self.path.is_none() && !path.is_empty() {
            self.path = Some(path.to_string());
        }
        self
    }
    /// The message with its path: `in generator.ird.3: unknown op ..`.
    pub fn text(&self) -> String {
        match &self.path {
            Some(p) => format!("in {p}: {}", self.message),
            None => self.message.clone(),
        }
    }
    pub fn into_error(self, file: &str) -> FrontError {
        match self.span {
            Some(s) => FrontError::At {
                file: file.into(),
                line: s.line,
                col: s.col,
                message: self.text(),
            },
            None => FrontError::Plain(self.text()),
        }
    }
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.span {
            Some(s) => write!(f, "{s}: {}", self.text()),
            None => f.write_str(&self.text()),
        }
    }
}

pub type R<T> = Result<T, Diag>;
