//! The catalogue of test models the real servers serve, and what each accepts.
//!
//! The facts here were observed with `scripts/servers probe NAME` (docs/testing.md
//! has the tables); the Python model code lives in `testkit/servers/<name>/`.

use crate::servers::ServerKind;

/// Every datatype of the Open Inference Protocol, in the protocol's order.
pub const ALL_DATATYPES: [&str; 14] = [
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
    "FP32", "FP64", "BF16", "BYTES",
];

/// How tensor data travels on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// REST with the tensor data in the JSON body (`data` arrays).
    RestJson,
    /// REST with the binary tensor data extension for inputs and outputs.
    RestBinary,
    /// gRPC `ModelInfer` with `raw_input_contents` / `raw_output_contents`.
    Grpc,
}

/// What a test model computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Numbers doubled in their own type (integers wrap around: INT8 100 → -56,
    /// UINT64 max → max - 1), BOOL negated, BYTES upper-cased in ASCII only
    /// (`"wörld"` → `"WöRLD"`). Shape and datatype are kept.
    Double,
    /// Every input comes back unchanged (shape, datatype and values).
    Identity,
    /// A scikit-learn LogisticRegression trained on 8 points: FP64 `[n, 2]` →
    /// INT64 `[n, 1]`, class 0 near (0, 0) and 1 near (2.5, 2.5); e.g.
    /// `[[0.2, 0.1], [2.5, 2.5]]` → `[0, 1]`.
    Classify,
}

/// How a model names its input and output tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorNames {
    /// Any number of inputs of any supported datatype; input `input-<i>` gives
    /// output `output-<i>` (other input names give `output-<position>`).
    Indexed,
    /// One input and one output with fixed names.
    Fixed {
        /// The input tensor.
        input: &'static str,
        /// The output tensor.
        output: &'static str,
    },
    /// One optional input per datatype, `IN_<DATATYPE>` → `OUT_<DATATYPE>`
    /// (send any subset; only the outputs of the inputs sent come back).
    PerDatatype,
}

/// A model served by one of the real test servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestModel {
    /// The model name in URLs and requests.
    pub name: &'static str,
    /// What it computes.
    pub behaviour: Behaviour,
    /// How its tensors are named.
    pub names: TensorNames,
    /// 0 when the model takes no batch dimension; otherwise the largest first
    /// dimension it accepts (its shapes are then `[batch, ...]`).
    pub max_batch_size: u32,
    /// The shape its metadata declares for its (first) input, -1 = any size,
    /// including the batch dimension when batching.
    pub declared_shape: &'static [i64],
    /// Datatypes that round-trip over REST JSON.
    pub rest_json: &'static [&'static str],
    /// Datatypes that round-trip over REST with the binary extension.
    pub rest_binary: &'static [&'static str],
    /// Datatypes that round-trip over gRPC.
    pub grpc: &'static [&'static str],
}

impl TestModel {
    /// The datatypes this model round-trips over `wire`.
    pub fn datatypes(&self, wire: WireFormat) -> &'static [&'static str] {
        match wire {
            WireFormat::RestJson => self.rest_json,
            WireFormat::RestBinary => self.rest_binary,
            WireFormat::Grpc => self.grpc,
        }
    }

    /// True when `datatype` round-trips over `wire`.
    pub fn supports(&self, wire: WireFormat, datatype: &str) -> bool {
        self.datatypes(wire).contains(&datatype)
    }

    /// The input tensor to send `datatype` in, if the model takes that datatype
    /// on some wire format.
    pub fn input_name(&self, datatype: &str) -> Option<String> {
        self.takes(datatype).then(|| match self.names {
            TensorNames::Indexed => "input-0".to_owned(),
            TensorNames::Fixed { input, .. } => input.to_owned(),
            TensorNames::PerDatatype => format!("IN_{datatype}"),
        })
    }

    /// The output tensor the answer to [`input_name`](Self::input_name) comes in.
    pub fn output_name(&self, datatype: &str) -> Option<String> {
        self.takes(datatype).then(|| match self.names {
            TensorNames::Indexed => "output-0".to_owned(),
            TensorNames::Fixed { output, .. } => output.to_owned(),
            TensorNames::PerDatatype => format!("OUT_{datatype}"),
        })
    }

    fn takes(&self, datatype: &str) -> bool {
        [
            WireFormat::RestJson,
            WireFormat::RestBinary,
            WireFormat::Grpc,
        ]
        .iter()
        .any(|w| self.supports(*w, datatype))
    }
}

/// Every datatype but BF16.
const NO_BF16: &[&str] = &[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
    "FP32", "FP64", "BYTES",
];
/// Every datatype but FP16 and BF16 (servers that refuse FP16 in JSON).
const NO_HALF: &[&str] = &[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP32",
    "FP64", "BYTES",
];

const KSERVE: &[TestModel] = &[
    TestModel {
        name: "doubler",
        behaviour: Behaviour::Double,
        names: TensorNames::Indexed,
        max_batch_size: 0,
        declared_shape: &[-1],
        rest_json: NO_HALF,
        // BYTES over binary REST: UTF-8 elements only (KServe decodes them to text).
        rest_binary: NO_BF16,
        grpc: NO_BF16,
    },
    TestModel {
        name: "identity",
        behaviour: Behaviour::Identity,
        names: TensorNames::Indexed,
        max_batch_size: 0,
        declared_shape: &[-1],
        rest_json: NO_HALF,
        rest_binary: NO_BF16,
        grpc: NO_BF16,
    },
];

const MLSERVER: &[TestModel] = &[
    TestModel {
        name: "doubler",
        behaviour: Behaviour::Double,
        names: TensorNames::Indexed,
        max_batch_size: 0,
        declared_shape: &[-1],
        rest_json: NO_BF16,
        // MLServer has no binary tensor data extension.
        rest_binary: &[],
        grpc: NO_BF16,
    },
    TestModel {
        name: "identity",
        behaviour: Behaviour::Identity,
        names: TensorNames::Indexed,
        max_batch_size: 0,
        declared_shape: &[-1],
        rest_json: NO_BF16,
        rest_binary: &[],
        grpc: NO_BF16,
    },
    TestModel {
        name: "tiny-sklearn",
        behaviour: Behaviour::Classify,
        names: TensorNames::Fixed {
            input: "predict",
            output: "predict",
        },
        max_batch_size: 0,
        declared_shape: &[],
        rest_json: &["FP64"],
        rest_binary: &[],
        grpc: &["FP64"],
    },
];

const TRITON: &[TestModel] = &[
    TestModel {
        name: "doubler",
        behaviour: Behaviour::Double,
        names: TensorNames::Fixed {
            input: "INPUT_1",
            output: "OUTPUT_1",
        },
        max_batch_size: 8,
        declared_shape: &[-1, -1],
        rest_json: &["FP32"],
        rest_binary: &["FP32"],
        grpc: &["FP32"],
    },
    TestModel {
        name: "identity",
        behaviour: Behaviour::Identity,
        names: TensorNames::Fixed {
            input: "INPUT",
            output: "OUTPUT",
        },
        max_batch_size: 0,
        declared_shape: &[-1],
        rest_json: &["FP32"],
        rest_binary: &["FP32"],
        grpc: &["FP32"],
    },
    TestModel {
        name: "dtypes",
        behaviour: Behaviour::Double,
        names: TensorNames::PerDatatype,
        max_batch_size: 0,
        declared_shape: &[-1],
        rest_json: NO_HALF,
        rest_binary: NO_BF16,
        grpc: NO_BF16,
    },
];

/// multi-model-server (SageMaker container protocol): JSON payloads
/// (`{"instances": …}` → `{"predictions": …}`), no tensor metadata.
const MMS: &[TestModel] = &[
    TestModel {
        name: "doubler",
        behaviour: Behaviour::Double,
        names: TensorNames::Fixed {
            input: "instances",
            output: "predictions",
        },
        max_batch_size: 0,
        declared_shape: &[-1],
        rest_json: &ALL_DATATYPES,
        rest_binary: &[],
        grpc: &[],
    },
    TestModel {
        name: "doubler2",
        behaviour: Behaviour::Double,
        names: TensorNames::Fixed {
            input: "instances",
            output: "predictions",
        },
        max_batch_size: 0,
        declared_shape: &[-1],
        rest_json: &ALL_DATATYPES,
        rest_binary: &[],
        grpc: &[],
    },
];

pub(crate) fn models_of(kind: ServerKind) -> &'static [TestModel] {
    match kind {
        ServerKind::KServe => KSERVE,
        ServerKind::MlServer => MLSERVER,
        ServerKind::Triton => TRITON,
        ServerKind::Moto => &[],
        ServerKind::Mms => MMS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_model() {
        let dtypes = ServerKind::Triton.model("dtypes").unwrap();
        assert_eq!(dtypes.input_name("INT64").as_deref(), Some("IN_INT64"));
        assert_eq!(dtypes.output_name("BYTES").as_deref(), Some("OUT_BYTES"));
        assert_eq!(dtypes.input_name("BF16"), None);
        let kserve = ServerKind::KServe.model("doubler").unwrap();
        assert_eq!(kserve.input_name("FP16").as_deref(), Some("input-0"));
        assert!(!kserve.supports(WireFormat::RestJson, "FP16"));
        assert!(kserve.supports(WireFormat::RestBinary, "FP16"));
        let ml = ServerKind::MlServer.model("doubler").unwrap();
        assert!(ml.datatypes(WireFormat::RestBinary).is_empty());
    }

    #[test]
    fn every_listed_datatype_is_a_protocol_datatype() {
        for kind in ServerKind::ALL {
            // moto stands in for the SageMaker Runtime and serves no model.
            assert!(!kind.models().is_empty() || kind == ServerKind::Moto);
            for m in kind.models() {
                for wire in [
                    WireFormat::RestJson,
                    WireFormat::RestBinary,
                    WireFormat::Grpc,
                ] {
                    for dt in m.datatypes(wire) {
                        assert!(ALL_DATATYPES.contains(dt), "{kind}/{}: {dt}", m.name);
                    }
                }
            }
        }
    }

    #[test]
    fn the_script_starts_the_same_models() {
        // `scripts/servers` waits for exactly these models before it reports ready.
        let script = std::fs::read_to_string(crate::servers::script_path()).unwrap();
        for kind in ServerKind::ALL {
            let names: Vec<&str> = kind.models().iter().map(|m| m.name).collect();
            let line = format!("{}) echo \"{}\" ;;", kind.name(), names.join(" "));
            assert!(script.contains(&line), "scripts/servers lacks `{line}`");
        }
    }
}
