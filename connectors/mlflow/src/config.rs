//! The connector's configuration, read from a [`ConnectTarget`] (keys in
//! [`OUTPUT_NAME`], [`MODEL_NAME`] and the words' `KEY`s, documented in
//! [`crate::KEYS`]).

use inferlink_core::{ConnectTarget, Result};

/// The key naming the output of an answer (`predictions` by default).
pub const OUTPUT_NAME: &str = "output_name";
/// The key naming the one model the server answers for.
pub const MODEL_NAME: &str = "model_name";

inferlink_core::config_words! {
    /// How tensors are put in the `/invocations` JSON body.
    pub enum InputFormat for "input_format" {
        /// `{"inputs": nested}` for one input, `{"inputs": {name: nested}}` for several.
        Inputs = "inputs",
        /// `{"instances": nested}`, one input only.
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

/// The connector's settings (the transport reads its own).
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
}

impl MlflowConfig {
    /// The defaults overlaid with the target's keys; a bad word is a
    /// `Config` error naming its key.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        let text = |key| Some(target.value(key)?.expose().trim()).filter(|v| !v.is_empty());
        let word = |key, default| text(key).unwrap_or(default).to_owned();
        Ok(MlflowConfig {
            input_format: word(InputFormat::KEY, "inputs").parse()?,
            output_name: word(OUTPUT_NAME, "predictions"),
            output_datatype: word(OutputDatatype::KEY, "auto").parse()?,
            model_name: text(MODEL_NAME).map(str::to_owned),
        })
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
        assert_eq!(c.output_datatype, OutputDatatype::Fp64);
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
