//! The connector commands: `health`, `models`, `metadata`, `infer`, `invoke`.
//!
//! Each resolves its selector like `resolve` does, gets a connector for the
//! resolution from [`connectors`] (every connector crate linked into the
//! CLI), and makes one call through it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;

use inferlink::{
    Connectors, DataType, Error, ErrorKind, InferRequest, InferResponse, InferenceConnector,
    ModelRef, RawRequest, Registry, Result, Tensor,
};
use serde_json::{Value, json};

use crate::input;
use crate::output;
use crate::{InferArgs, InvokeArgs, MetadataArgs, ModelsArgs, TargetArgs, TensorFormat};

/// Every connector factory the CLI knows. A record's product picks the
/// vendor crate; the generic Open Inference Protocol connector serves any
/// other record whose service resource is an OIP one (`inference-v2`, …).
///
/// The operator's host-only transport settings come from the environment
/// ([`HostTransportSettings::from_env`]): `INFERLINK_ENDPOINT_POLICY` (an
/// endpoint policy such as `public-only`, or `@FILE`) and
/// `INFERLINK_ALLOW_FILE_DIRS` (directories `*_file` keys may read). They
/// travel in every target to its connector's transport, under the record's
/// keys and over each connector's own defaults.
pub(crate) fn connectors() -> Result<Connectors> {
    inferlink_connectors::from_env()
}

/// `check`: every record's targets through the connectors' key checks (no
/// call is made; connectors connect lazily). A table of record, service,
/// endpoint, connector and verdict; an `InvalidInput` error (exit 2) when a
/// target a connector serves is refused. Targets no connector serves (an S3
/// store, a tracking server) are listed as such and are not errors.
pub(crate) async fn check(
    registry: &Registry,
    args: crate::CheckArgs,
    out: &mut String,
) -> Result<()> {
    let connectors = connectors()?;
    let records =
        match &args.id {
            Some(id) => vec![registry.get(id).ok_or_else(|| {
                Error::not_found(format!("no record \"{}\"", output::printable(id)))
            })?],
            None => registry.list(&inferlink::ListFilter::default()),
        };
    let mut rows = Vec::new();
    let mut refused = 0usize;
    for stored in &records {
        for target in inferlink::resolve::connect_targets(&stored.record) {
            let (vendor, verdict) = match connectors.factory_for(&target) {
                None => ("-".to_owned(), "no connector serves it".to_owned()),
                Some(factory) => match factory.connect(&target).await {
                    Ok(_) => (factory.vendor().to_owned(), "ok".to_owned()),
                    Err(e) => {
                        refused += 1;
                        (factory.vendor().to_owned(), e.to_string())
                    }
                },
            };
            rows.push(vec![
                target.origin.clone(),
                target.service.clone(),
                target.url.clone(),
                vendor,
                verdict,
            ]);
        }
    }
    out.push_str(&output::table(
        &["RECORD", "SERVICE", "ENDPOINT", "CONNECTOR", "VERDICT"],
        &rows,
    ));
    if refused > 0 {
        return Err(Error::invalid(format!(
            "{refused} target(s) refused by their connector (see the table)"
        )));
    }
    Ok(())
}

/// Resolves the target's selector and connects to what it names.
pub(crate) async fn connect(
    registry: &Registry,
    target: &TargetArgs,
) -> Result<Arc<dyn InferenceConnector>> {
    let resolution = registry.resolve(&target.selector.selector(), &target.consumer.consumer())?;
    connectors()?.connect(&resolution).await
}

pub(crate) fn model_ref(name: &str, version: Option<&str>) -> ModelRef {
    let model = ModelRef::new(name);
    match version {
        Some(v) => model.with_version(v),
        None => model,
    }
}

/// `health`: one line, and an `Unavailable` error (exit 3) when not serving.
pub(crate) async fn health(
    registry: &Registry,
    target: TargetArgs,
    out: &mut String,
) -> Result<()> {
    let connector = connect(registry, &target).await?;
    let info = connector.info();
    let health = connector.health().await?;
    let line = format!(
        "{} ({}) at {}: live={} ready={}",
        info.vendor, info.protocol, info.endpoint, health.live, health.ready
    );
    let _ = writeln!(out, "{}", output::printable(&line));
    if !health.is_serving() {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!("{} at {} is not serving", info.vendor, info.endpoint),
        ));
    }
    Ok(())
}

/// `models`: a table of the served models.
pub(crate) async fn models(registry: &Registry, args: ModelsArgs, out: &mut String) -> Result<()> {
    let connector = connect(registry, &args.target).await?;
    let models = connector.models().await?;
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|m| {
            vec![
                m.name.clone(),
                m.version.clone().unwrap_or_default(),
                m.state.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&output::table(&["NAME", "VERSION", "STATE"], &rows));
    Ok(())
}

/// `metadata`: the model's inputs and outputs as a table.
pub(crate) async fn metadata(
    registry: &Registry,
    args: MetadataArgs,
    out: &mut String,
) -> Result<()> {
    let connector = connect(registry, &args.target).await?;
    let model = model_ref(&args.model, args.model_version.as_deref());
    let metadata = connector.model_metadata(&model).await?;
    let shape = |s: &[i64]| {
        let dims: Vec<String> = s.iter().map(i64::to_string).collect();
        format!("[{}]", dims.join(","))
    };
    let mut rows = Vec::new();
    for (kind, specs) in [("input", &metadata.inputs), ("output", &metadata.outputs)] {
        for spec in specs {
            rows.push(vec![
                kind.to_owned(),
                spec.name.clone(),
                spec.datatype.as_str().to_owned(),
                shape(&spec.shape),
            ]);
        }
    }
    let _ = writeln!(out, "model: {}", output::printable(&metadata.name));
    if !metadata.versions.is_empty() {
        let versions = metadata.versions.join(", ");
        let _ = writeln!(out, "versions: {}", output::printable(&versions));
    }
    if !metadata.platform.is_empty() {
        let _ = writeln!(out, "platform: {}", output::printable(&metadata.platform));
    }
    out.push_str(&output::table(&["", "NAME", "DATATYPE", "SHAPE"], &rows));
    Ok(())
}

/// `infer`: tensors in as OIP JSON, the response out as JSON or a table.
pub(crate) async fn infer(registry: &Registry, args: InferArgs, out: &mut String) -> Result<()> {
    let text = read_inline_or_file(&args.input)?;
    let request = parse_request(&text)?;
    let connector = connect(registry, &args.target).await?;
    let model = model_ref(&args.model, args.model_version.as_deref());
    let response = connector.infer(&model, request).await?;
    match args.output {
        TensorFormat::Json => {
            let doc = response_json(&response)?;
            let text = serde_json::to_string_pretty(&doc)
                .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot write JSON: {e}")))?;
            out.push_str(&output::json_for_terminal(text));
            out.push('\n');
        }
        TensorFormat::Table => {
            let mut rows = Vec::new();
            for t in &response.outputs {
                let shape: Vec<String> = t.shape().iter().map(usize::to_string).collect();
                rows.push(vec![
                    t.name().to_owned(),
                    t.datatype().as_str().to_owned(),
                    format!("[{}]", shape.join(",")),
                    preview(&tensor_data_json(t)?),
                ]);
            }
            out.push_str(&output::table(
                &["OUTPUT", "DATATYPE", "SHAPE", "DATA"],
                &rows,
            ));
        }
    }
    Ok(())
}

/// `invoke`: an opaque body in, the response body out unchanged.
pub(crate) async fn invoke(registry: &Registry, args: InvokeArgs) -> Result<()> {
    let body = read_body(&args.body)?;
    let connector = connect(registry, &args.target).await?;
    let model = model_ref(&args.model, args.model_version.as_deref());
    let mut request = RawRequest::new(body, args.content_type.clone());
    request.accept = args.accept.clone();
    let response = connector.invoke(&model, request).await?;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(&response.body)
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::new(
            ErrorKind::Internal,
            format!("cannot write to standard output: {e}"),
        )),
    }
}

/// `--input '{…}'` or `--input @FILE` (`@-` for standard input).
pub(crate) fn read_inline_or_file(value: &str) -> Result<String> {
    match value.strip_prefix('@') {
        Some(path) => Ok(input::read(std::path::Path::new(path))?.text),
        None => Ok(value.to_owned()),
    }
}

/// `--body @FILE` (bytes, any content) or an inline text body.
fn read_body(value: &str) -> Result<Vec<u8>> {
    match value.strip_prefix('@') {
        Some("-") => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes).map_err(|e| {
                Error::invalid(format!("cannot read the body from standard input: {e}"))
            })?;
            Ok(bytes)
        }
        Some(path) => std::fs::read(path).map_err(|e| {
            Error::invalid(format!("cannot read the body file: {e}")).with_context("file", path)
        }),
        None => Ok(value.as_bytes().to_vec()),
    }
}

/// Parses OIP JSON tensors: `{"inputs": [...]}` (parameters and `outputs`
/// kept), a bare list of tensors, or one tensor object.
///
/// Each tensor is `{"name", "datatype", "shape", "data"}` as in the Open
/// Inference Protocol's REST request; `data` may be flat or nested. The
/// tensors are decoded by the OIP codec, so a tensor the protocol would
/// refuse is refused here, with the path of the bad field (`inputs[i]…`).
pub(crate) fn parse_request(text: &str) -> Result<InferRequest> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        Error::invalid(format!(
            "the input is not JSON: {e} (expected OIP tensors: {{\"inputs\": [{{\"name\", \"datatype\", \"shape\", \"data\"}}]}})"
        ))
    })?;
    let (inputs, rest) = match doc {
        Value::Array(list) => (list, serde_json::Map::new()),
        Value::Object(mut map) if map.contains_key("inputs") => {
            let inputs = match map.remove("inputs") {
                Some(Value::Array(list)) => list,
                _ => {
                    return Err(Error::invalid_at(
                        "inputs",
                        "`inputs` must be a list of tensors",
                    ));
                }
            };
            (inputs, map)
        }
        Value::Object(map) if map.contains_key("datatype") => {
            (vec![Value::Object(map)], serde_json::Map::new())
        }
        _ => {
            return Err(Error::invalid(
                "expected {\"inputs\": [...]}, a list of tensors, or one tensor object",
            ));
        }
    };
    if inputs.is_empty() {
        return Err(Error::invalid_at("inputs", "no input tensors"));
    }
    // The OIP response decoder reads exactly this tensor shape; reuse it so
    // that the CLI accepts what the protocol accepts.
    let as_response = json!({ "model_name": "input", "outputs": inputs });
    let body = serde_json::to_vec(&as_response).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot re-encode the input: {e}"),
        )
    })?;
    let decoded = inferlink_oip::codec::decode_infer_response(body.into(), None).map_err(|e| {
        let path = e.path().map(|p| p.replacen("outputs", "inputs", 1));
        let message = e.message().replace("output", "input");
        let error = Error::new(ErrorKind::InvalidInput, message);
        match path {
            Some(p) => error.with_path(p),
            None => error,
        }
    })?;
    let mut request = InferRequest::new();
    for t in decoded.outputs {
        request = request.with_input(t);
    }
    if let Some(Value::String(id)) = rest.get("id") {
        request = request.with_id(id.clone());
    }
    if let Some(Value::Array(outputs)) = rest.get("outputs") {
        for (i, o) in outputs.iter().enumerate() {
            let name = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                Error::invalid_at(
                    format!("outputs[{i}].name"),
                    "a requested output needs a name",
                )
            })?;
            request = request.with_output(name);
        }
    }
    Ok(request)
}

/// A response as OIP JSON: `{"model_name", "model_version", "id", "outputs"}`.
pub(crate) fn response_json(response: &InferResponse) -> Result<Value> {
    let mut outputs = Vec::with_capacity(response.outputs.len());
    for t in &response.outputs {
        outputs.push(json!({
            "name": t.name(),
            "datatype": t.datatype().as_str(),
            "shape": t.shape(),
            "data": tensor_data_json(t)?,
        }));
    }
    let mut doc = serde_json::Map::new();
    doc.insert("model_name".into(), json!(response.model_name));
    if let Some(v) = &response.model_version {
        doc.insert("model_version".into(), json!(v));
    }
    if let Some(id) = &response.id {
        doc.insert("id".into(), json!(id));
    }
    doc.insert("outputs".into(), Value::Array(outputs));
    Ok(Value::Object(doc))
}

/// A tensor's data as a flat JSON list (BYTES as UTF-8 text where valid,
/// else `{"b64": …}`).
fn tensor_data_json(t: &Tensor) -> Result<Value> {
    Ok(match t.datatype() {
        DataType::Bool => json!(t.to_vec::<bool>()?),
        DataType::Uint64 => json!(t.to_vec::<u64>()?),
        DataType::Int64 => json!(t.to_vec::<i64>()?),
        DataType::Bytes => Value::Array(
            t.to_byte_elements()?
                .iter()
                .map(|e| match std::str::from_utf8(e) {
                    Ok(s) => json!(s),
                    Err(_) => {
                        use base64::Engine as _;
                        json!({ "b64": base64::engine::general_purpose::STANDARD.encode(e) })
                    }
                })
                .collect(),
        ),
        _ => {
            let values = t.to_f64_lossy()?;
            Value::Array(
                values
                    .into_iter()
                    .map(|v| {
                        serde_json::Number::from_f64(v)
                            .map_or_else(|| json!(v.to_string()), Value::Number)
                    })
                    .collect(),
            )
        }
    })
}

/// At most the first 8 values of a data list, for tables.
fn preview(data: &Value) -> String {
    const SHOWN: usize = 8;
    match data {
        Value::Array(list) if list.len() > SHOWN => {
            let head: Vec<String> = list[..SHOWN].iter().map(Value::to_string).collect();
            format!("[{}, … {} more]", head.join(", "), list.len() - SHOWN)
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_from_every_accepted_form() {
        let full = r#"{"id": "r1", "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3, 4]]}], "outputs": [{"name": "OUTPUT0"}]}"#;
        let r = parse_request(full).unwrap();
        assert_eq!(r.inputs.len(), 1);
        assert_eq!(r.inputs[0].shape(), &[2, 2]);
        assert_eq!(
            r.inputs[0].to_f32_lossy().unwrap(),
            vec![1.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(r.id.as_deref(), Some("r1"));
        assert_eq!(r.outputs[0].name, "OUTPUT0");

        let list = r#"[{"name": "t", "datatype": "BYTES", "shape": [1], "data": ["hi"]}]"#;
        assert_eq!(
            parse_request(list).unwrap().inputs[0].to_strings().unwrap(),
            vec!["hi"]
        );
        let one = r#"{"name": "b", "datatype": "BOOL", "shape": [2], "data": [true, false]}"#;
        assert_eq!(
            parse_request(one).unwrap().inputs[0].datatype(),
            DataType::Bool
        );
    }

    #[test]
    fn bad_requests_name_what_and_where() {
        let e = parse_request("not json").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("not JSON"), "{e}");
        let e = parse_request(r#"{"inputs": []}"#).unwrap_err();
        assert!(e.message().contains("no input tensors"), "{e}");
        let e = parse_request(
            r#"{"inputs": [{"name": "x", "datatype": "FP32", "shape": [3], "data": [1, 2]}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.path().is_some_and(|p| p.starts_with("inputs[0]")),
            "{e:?}"
        );
        let e = parse_request(r#"{"hello": 1}"#).unwrap_err();
        assert!(e.message().contains("expected"), "{e}");
    }

    #[test]
    fn responses_render_as_oip_json() {
        let mut response = InferResponse {
            model_name: "m".into(),
            ..InferResponse::default()
        };
        response
            .outputs
            .push(Tensor::new("y", vec![2], vec![1.5f32, -2.0]).unwrap());
        response
            .outputs
            .push(Tensor::from_byte_elements("s", vec![2], vec![&b"ok"[..], &[0xff][..]]).unwrap());
        let doc = response_json(&response).unwrap();
        assert_eq!(doc["outputs"][0]["data"], json!([1.5, -2.0]));
        assert_eq!(doc["outputs"][1]["data"], json!(["ok", {"b64": "/w=="}]));
        assert_eq!(
            preview(&json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
            "[1, 2, 3, 4, 5, 6, 7, 8, … 2 more]"
        );
    }
}
