//! The connector's configuration, read from a [`ConnectTarget`] (keys in
//! [`keys`], documented in [`crate::KEYS`]).

use inferlink_core::{ConnectTarget, DataType, Result};

/// The names of the connector's configuration keys.
pub mod keys {
    /// [`InputFormat`](super::InputFormat): the request form.
    pub const INPUT_FORMAT: &str = "input_format";
    /// The name given to an output decoded from an array of predictions.
    pub const OUTPUT_NAME: &str = "output_name";
    /// [`OutputDatatype`](super::OutputDatatype): how numbers are typed.
    pub const OUTPUT_DATATYPE: &str = "output_datatype";
    /// The one model name the server answers for.
    pub const MODEL_NAME: &str = "model_name";
    /// The one model version the server answers for.
    pub const MODEL_VERSION: &str = "model_version";
}

inferlink_core::config_words! {
    /// How tensors are put in the `/invocations` JSON body.
    pub enum InputFormat for "input_format" {
        /// `{"inputs": nested}` for one input, `{"inputs": {name: nested}}` for several.
        Inputs = "inputs",
        /// `{"instances": nested}` for one input; several become row objects
        /// `[{name: row}, …]` (every input has the same first dimension).
        Instances = "instances",
        /// `{"dataframe_split": {"columns": [names], "data": rows}}`: each
        /// input is one column (shape `[n]` or `[n, 1]`).
        DataframeSplit = "dataframe_split" | "dataframe",
    }
}

inferlink_core::config_words! {
    /// The datatype of decoded outputs.
    pub enum OutputDatatype for "output_datatype" {
        /// `INT64` when every number is an integer, else `FP64`.
        Auto = "auto",
        /// `INT64`; a number with a fraction is a Protocol error.
        Int64 = "int64",
        /// `FP64`, integers included.
        Fp64 = "fp64",
    }
}

impl OutputDatatype {
    /// The datatype forced, if any.
    pub fn forced(self) -> Option<DataType> {
        match self {
            OutputDatatype::Auto => None,
            OutputDatatype::Int64 => Some(DataType::Int64),
            OutputDatatype::Fp64 => Some(DataType::Fp64),
        }
    }
}

/// The connector's settings (the transport's are read by the transport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlflowConfig {
    /// The request form (default `inputs`).
    pub input_format: InputFormat,
    /// The name of an output decoded from an array (default `predictions`).
    pub output_name: String,
    /// How output numbers are typed (default `auto`).
    pub output_datatype: OutputDatatype,
    /// The model name the server answers for; `None`: any name.
    pub model_name: Option<String>,
    /// The model version the server answers for; `None`: no version.
    pub model_version: Option<String>,
}

impl Default for MlflowConfig {
    fn default() -> Self {
        MlflowConfig {
            input_format: InputFormat::Inputs,
            output_name: "predictions".to_owned(),
            output_datatype: OutputDatatype::Auto,
            model_name: None,
            model_version: None,
        }
    }
}

impl MlflowConfig {
    /// The defaults overlaid with the target's keys; a bad word is a
    /// `Config` error naming its key.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        let text = |key: &str| {
            let value = target.value(key).map(|v| v.expose().trim().to_owned());
            value.filter(|v| !v.is_empty())
        };
        let mut config = MlflowConfig::default();
        if let Some(word) = text(keys::INPUT_FORMAT) {
            config.input_format = word.parse()?;
        }
        if let Some(word) = text(keys::OUTPUT_DATATYPE) {
            config.output_datatype = word.parse()?;
        }
        if let Some(name) = text(keys::OUTPUT_NAME) {
            config.output_name = name;
        }
        config.model_name = text(keys::MODEL_NAME);
        config.model_version = text(keys::MODEL_VERSION);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_defaults() {
        let t = ConnectTarget::new("mlflow-serving", "http://127.0.0.1:1")
            .with_plain("input_format", "DataFrame")
            .with_plain("output_datatype", "fp64")
            .with_plain("model_name", " doubler ");
        let c = MlflowConfig::from_target(&t).unwrap();
        assert_eq!(c.input_format, InputFormat::DataframeSplit);
        assert_eq!(c.output_datatype.forced(), Some(DataType::Fp64));
        assert_eq!(c.model_name.as_deref(), Some("doubler"));
        assert_eq!(c.output_name, "predictions");
        let bad = ConnectTarget::new("x", "http://127.0.0.1:1").with_plain("input_format", "csv");
        let e = MlflowConfig::from_target(&bad).unwrap_err();
        assert_eq!(e.path(), Some("input_format"));
        assert!(
            e.message().contains("inputs, instances, dataframe_split"),
            "{e}"
        );
    }
}
