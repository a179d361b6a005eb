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
    /// A pythie-serving `table` model: each feature input is `[n, 1]`, the
    /// output `predictions` is `[n]` (INT32 when the values fit), looked up
    /// in a table (`doubler`: 2·x for x in -1000..=1000; `length`: the byte
    /// length of `word-0`..`word-99`; `sum`: a + b for a, b in 0..20).
    Lookup,
    /// An Open Model Interface model: named input files (bytes) per batch item
    /// to named output files (testkit/servers/omi/launch.py describes each).
    OmiFiles,
    /// A raw, streamed answer (TorchServe's `streamer`: `{"n": N, "word": W}` →
    /// chunks `W-0\n` … `W-(N-1)\n`, then `done\n`); no tensors.
    Stream,
    /// MLflow's pyfunc `doubler` (testkit/servers/mlflow/doubler_model.py):
    /// every value times the request parameter `factor` (default 2) in
    /// pandas/numpy arithmetic, so strings repeat (`"ab"` → `"abab"`); a
    /// DataFrame column or named tensor called `fail` raises, which the scoring
    /// server answers with its error envelope.
    TimesFactor,
    /// An OpenAI-compatible text generation model (`/v1/chat/completions`,
    /// `/v1/completions`, plain or streamed as server-sent events): the
    /// `llama-cpp` kind's SmolLM2-135M-Instruct. Its output is real model
    /// text, not a function of the input a test can predict.
    Generate,
    /// An OpenAI-compatible sentence-embedding model (`/v1/embeddings`): the
    /// `llama-cpp` kind's all-MiniLM-L6-v2, one 384-float vector per input
    /// text (mean-pooled and L2-normalised), paraphrases closer than
    /// unrelated texts, the same vector for the same text on every call.
    Embed,
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
    // BYTES in, BYTES out; its tensor names match Triton's `generate` fields.
    TestModel {
        name: "text",
        behaviour: Behaviour::Double,
        names: TensorNames::Fixed {
            input: "text_input",
            output: "text_output",
        },
        max_batch_size: 0,
        declared_shape: &[-1],
        rest_json: &["BYTES"],
        rest_binary: &["BYTES"],
        grpc: &["BYTES"],
    },
    // Decoupled: one response per word of `text_input` (gRPC ModelStreamInfer and
    // `generate_stream` only; plain REST infer refuses decoupled models).
    TestModel {
        name: "tokens",
        behaviour: Behaviour::Identity,
        names: TensorNames::Fixed {
            input: "text_input",
            output: "text_output",
        },
        max_batch_size: 0,
        declared_shape: &[1],
        rest_json: &[],
        rest_binary: &[],
        grpc: &[],
    },
    // Stateful (sequence batcher): SUM = running sum of VALUE within a sequence_id.
    TestModel {
        name: "accumulate",
        behaviour: Behaviour::Identity,
        names: TensorNames::Fixed {
            input: "VALUE",
            output: "SUM",
        },
        max_batch_size: 0,
        declared_shape: &[1],
        rest_json: &[],
        rest_binary: &[],
        grpc: &[],
    },
];

const PYTHIE: &[TestModel] = &[
    TestModel {
        name: "doubler",
        behaviour: Behaviour::Lookup,
        names: TensorNames::Fixed {
            input: "x",
            output: "predictions",
        },
        max_batch_size: 0,
        declared_shape: &[-1, 1],
        rest_json: &[],
        rest_binary: &[],
        // INT64 only through tensor_content: pythie reads typed int64 from int_val.
        grpc: &["INT32", "INT64"],
    },
    TestModel {
        name: "length",
        behaviour: Behaviour::Lookup,
        names: TensorNames::Fixed {
            input: "s",
            output: "predictions",
        },
        max_batch_size: 0,
        declared_shape: &[-1, 1],
        rest_json: &[],
        rest_binary: &[],
        grpc: &["BYTES"],
    },
    TestModel {
        name: "sum",
        behaviour: Behaviour::Lookup,
        names: TensorNames::Fixed {
            input: "a",
            output: "predictions",
        },
        max_batch_size: 0,
        declared_shape: &[-1, 1],
        rest_json: &[],
        rest_binary: &[],
        grpc: &["INT32"],
    },
];
/// The Seldon Core v1 microservice's one model (testkit/servers/seldon-core/Doubler.py).
/// The Seldon protocol carries numbers as JSON (`FP64`, or `INT64` for integers),
/// strings, and one text, bytes or JSON payload; the datatypes below are those
/// of the tensor mapping of `inferlink-seldon`.
const SELDON_CORE: &[TestModel] = &[TestModel {
    name: "doubler",
    behaviour: Behaviour::Double,
    names: TensorNames::Fixed {
        input: "input",
        output: "data",
    },
    max_batch_size: 0,
    declared_shape: &[-1, -1],
    rest_json: &["INT64", "FP64"],
    rest_binary: &[],
    grpc: &[],
}];

/// OMI models: files, not tensors; the inferlink-omi connector carries each
/// file as one element of a BYTES tensor `[batch]` (listed under `grpc`).
const OMI: &[TestModel] = &[
    TestModel {
        name: "textops",
        behaviour: Behaviour::OmiFiles,
        names: TensorNames::Fixed {
            input: "text",
            output: "upper.txt",
        },
        max_batch_size: 0,
        declared_shape: &[-1],
        rest_json: &[],
        rest_binary: &[],
        grpc: &["BYTES"],
    },
    TestModel {
        name: "batcher",
        behaviour: Behaviour::OmiFiles,
        names: TensorNames::Fixed {
            input: "input",
            output: "results.json",
        },
        max_batch_size: 2,
        declared_shape: &[-1],
        rest_json: &[],
        rest_binary: &[],
        grpc: &["BYTES"],
    },
];

/// TorchServe: tensors travel through inferlink-torchserve's nested-JSON mapping
/// (`rest_json` over `/predictions`, `grpc` over gRPC `Predictions`), not OIP.
const TORCHSERVE: &[TestModel] = &[
    TestModel {
        name: "doubler",
        behaviour: Behaviour::Double,
        names: TensorNames::Fixed {
            input: "input-0",
            output: "output-0",
        },
        max_batch_size: 0,
        declared_shape: &[],
        rest_json: &ALL_DATATYPES,
        rest_binary: &[],
        grpc: &ALL_DATATYPES,
    },
    TestModel {
        name: "streamer",
        behaviour: Behaviour::Stream,
        names: TensorNames::Fixed {
            input: "",
            output: "",
        },
        max_batch_size: 0,
        declared_shape: &[],
        rest_json: &[],
        rest_binary: &[],
        grpc: &[],
    },
];

/// TorchServe with the KServe v2 envelope: outputs keep the input's name, and
/// numpy picks their datatype (INT64, FP64, BOOL survive the round trip).
const TORCHSERVE_KSERVE: &[TestModel] = &[TestModel {
    name: "doubler",
    behaviour: Behaviour::Double,
    names: TensorNames::Fixed {
        input: "input-0",
        output: "input-0",
    },
    max_batch_size: 0,
    declared_shape: &[],
    rest_json: &["BOOL", "INT64", "FP64"],
    rest_binary: &[],
    grpc: &[],
}];

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

/// `mlflow models serve`: one pyfunc model, addressed by no name (the name is
/// the harness's); JSON `{"inputs": …}` → `{"predictions": …}`, no tensor
/// metadata. JSON numbers arrive as numpy INT64 / FP64 arrays.
const MLFLOW: &[TestModel] = &[TestModel {
    name: "doubler",
    behaviour: Behaviour::TimesFactor,
    names: TensorNames::Fixed {
        input: "inputs",
        output: "predictions",
    },
    max_batch_size: 0,
    declared_shape: &[-1],
    rest_json: &["INT64", "FP64"],
    rest_binary: &[],
    grpc: &[],
}];

/// llama-cpp-python's OpenAI-compatible server: a generation model and an
/// embedding model, each on its own server process; JSON bodies, no tensors
/// (the "names" are the request and answer fields that carry the data).
const LLAMA_CPP: &[TestModel] = &[
    TestModel {
        name: crate::servers::LLAMA_CPP_GENERATION_MODEL,
        behaviour: Behaviour::Generate,
        names: TensorNames::Fixed {
            input: "messages",
            output: "choices",
        },
        max_batch_size: 0,
        declared_shape: &[-1],
        rest_json: &["BYTES"],
        rest_binary: &[],
        grpc: &[],
    },
    LLAMA_CPP_EMBEDDING,
];

/// The embedding model of both llama-cpp kinds.
const LLAMA_CPP_EMBEDDING: TestModel = TestModel {
    name: crate::servers::LLAMA_CPP_EMBEDDING_MODEL,
    behaviour: Behaviour::Embed,
    names: TensorNames::Fixed {
        input: "input",
        output: "data",
    },
    max_batch_size: 0,
    declared_shape: &[-1],
    rest_json: &["BYTES"],
    rest_binary: &[],
    grpc: &[],
};

pub(crate) fn models_of(kind: ServerKind) -> &'static [TestModel] {
    match kind {
        ServerKind::KServe => KSERVE,
        ServerKind::MlServer => MLSERVER,
        ServerKind::Triton => TRITON,
        ServerKind::Pythie => PYTHIE,
        ServerKind::SeldonCore => SELDON_CORE,
        ServerKind::Omi => OMI,
        ServerKind::TorchServe => TORCHSERVE,
        ServerKind::TorchServeKServe => TORCHSERVE_KSERVE,
        ServerKind::Moto => &[],
        ServerKind::Mms => MMS,
        ServerKind::Mlflow => MLFLOW,
        ServerKind::LlamaCpp => LLAMA_CPP,
        ServerKind::LlamaCppWorkers => &[LLAMA_CPP_EMBEDDING],
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
