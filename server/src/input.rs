//! Bad input from a caller: which parameter or body field is at fault, and a message that
//! says what to send instead. The layers below the API refuse input with it; the API
//! answers it as a `400` naming the parameter.

/// A parameter or body field that cannot be used, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BadInput {
    /// The parameter or field at fault (`filter`, `ts`, `text`, ...).
    pub parameter: &'static str,
    /// What is wrong and what to send instead.
    pub message: String,
}

/// A [`BadInput`] naming `parameter`.
pub fn bad(parameter: &'static str, message: impl Into<String>) -> BadInput {
    BadInput {
        parameter,
        message: message.into(),
    }
}
