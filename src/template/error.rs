//! Why a template was rejected at load time.
//!
//! Messages are written for the operator fixing the config file: they name the variable or the
//! byte offset, list what is accepted, and never quote a secret (templates hold none). The
//! caller prefixes the key path (`webhooks[1].body: ...`).

use std::fmt;

use super::vars::{BUILTIN_USER_FIELDS, EVENT_VARIABLES};

/// A template problem found while compiling; rendering itself cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// `{{$$.Emial$$}}`: the name is neither built in nor a custom field declared in routes.
    UnknownVariable {
        /// The name as written.
        name: String,
        /// A built-in name that looks like what was meant, if any.
        suggestion: Option<&'static str>,
    },
    /// `{{$$.` with no closing `$$}}` before the end of the text.
    Unterminated {
        /// Byte offset of the opening `{{$$.`.
        at: usize,
    },
    /// `{{$$.` followed by something that is not `Name$$}}` (a space in the name, `}}` without
    /// `$$`, ...).
    Malformed {
        /// Byte offset of the opening `{{$$.`.
        at: usize,
        /// What followed it, shortened.
        found: String,
    },
    /// A JSON body that is not valid JSON once each variable stands for a string.
    InvalidJson {
        /// The JSON parser's message, with its line and column.
        message: String,
    },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::UnknownVariable { name, suggestion } => {
                write!(f, "unknown variable {{{{$$.{name}$$}}}}; known: ")?;
                let all = BUILTIN_USER_FIELDS.iter().chain(EVENT_VARIABLES);
                for (i, known) in all.enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(known)?;
                }
                f.write_str(
                    ", custom fields declared under routes[].fields, and Previous.<Field> of any user field",
                )?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean {{{{$$.{s}$$}}}}?")?;
                }
                Ok(())
            }
            TemplateError::Unterminated { at } => write!(
                f,
                "unterminated variable at byte {at}: `{{{{$$.` without a closing `$$}}}}`"
            ),
            TemplateError::Malformed { at, found } => write!(
                f,
                "malformed variable at byte {at}: `{found}`; expected {{{{$$.Name$$}}}} \
                 (letters, digits, `_` or `-` in the name)"
            ),
            TemplateError::InvalidJson { message } => write!(
                f,
                "body is not valid JSON (each variable counted as a string): {message}"
            ),
        }
    }
}

impl std::error::Error for TemplateError {}
