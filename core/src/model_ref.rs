//! [`ModelRef`]: which model (and version) a call is for.

use std::fmt;

/// A model on a server, optionally at one version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    /// The model name.
    pub name: String,
    /// A version; `None` lets the server pick by its own policy.
    pub version: Option<String>,
}

impl ModelRef {
    /// A model by name, any version.
    pub fn new(name: impl Into<String>) -> Self {
        ModelRef {
            name: name.into(),
            version: None,
        }
    }

    /// A model at one version.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl From<&str> for ModelRef {
    fn from(name: &str) -> Self {
        ModelRef::new(name)
    }
}

impl From<String> for ModelRef {
    fn from(name: String) -> Self {
        ModelRef::new(name)
    }
}
