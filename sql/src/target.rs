//! The first argument of every function: which model, on which server.
//!
//! A *target* is a string of comma-separated `key=value` pairs; a bare word
//! (no `=`) is a service category. `model` is required:
//!
//! ```text
//! category=embedding,model=all-MiniLM-L6-v2
//! embedding,model=all-MiniLM-L6-v2              (the same)
//! id=local-llama,service=embed,model=all-MiniLM-L6-v2
//! product=llama-cpp,category=text-generation,model=smollm,max_tokens=32,temperature=0
//! ```
//!
//! Selector keys (as the CLI's selector flags): `id` (extension id),
//! `service` (service id), `product`, `version`, `zone`, `category`,
//! `resource`. The model: `model`, `model_version`. Generation settings
//! (`generate` only): `max_tokens`, `temperature`, `seed`. Tensor settings
//! (`infer` only): `datatype` (of the input tensor: `FP32`, the default,
//! `FP64`, `INT32` or `INT64`), `output` (the output tensor to answer; the
//! first one by default) and `batch` (the model has a batch dimension: up to
//! this many rows per request). Nothing else is
//! accepted, and the target never carries a secret: credentials come from
//! the registry the process opened.

use inferlink::{DataType, Error, ErrorKind, ModelRef, Result, Selector};

/// The longest target string accepted.
const MAX_TARGET_BYTES: usize = 4096;

/// A parsed target: what to resolve, which model to ask for, and the
/// generation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The registry selector.
    pub selector: Selector,
    /// The model the calls name.
    pub model: ModelRef,
    /// `generate`: most tokens to produce.
    pub max_tokens: Option<u32>,
    /// `generate`: sampling temperature.
    pub temperature: Option<f32>,
    /// `generate`: sampling seed.
    pub seed: Option<u64>,
    /// `infer`: the input tensor's datatype (default `FP32`).
    pub datatype: DataType,
    /// `infer`: the output to answer (default: the response's first).
    pub output: Option<String>,
    /// `infer`: rows per request along a batch dimension; `None` sends one
    /// row per request without a batch dimension.
    pub batch: Option<usize>,
}

impl Target {
    /// Parses a target string; an [`ErrorKind::InvalidInput`] error names
    /// the offending key.
    pub fn parse(text: &str) -> Result<Target> {
        if text.len() > MAX_TARGET_BYTES {
            return Err(Error::invalid(format!(
                "the target has {} bytes, more than {MAX_TARGET_BYTES}",
                text.len()
            )));
        }
        let mut selector = Selector::default();
        let (mut model, mut model_version) = (None, None);
        let (mut max_tokens, mut temperature, mut seed) = (None, None, None);
        let (mut datatype, mut output, mut batch) = (None, None, None);
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim().to_owned()),
                None => ("category", part.to_owned()),
            };
            if value.is_empty() {
                return Err(Error::invalid_at(key.to_owned(), "has no value"));
            }
            let slot = match key {
                "id" => &mut selector.extension_id,
                "service" => &mut selector.service_id,
                "product" => &mut selector.product,
                "version" => &mut selector.version,
                "zone" => &mut selector.zone,
                "category" => &mut selector.service_category,
                "resource" => &mut selector.service_resource,
                "model" => &mut model,
                "model_version" => &mut model_version,
                "max_tokens" => {
                    max_tokens = Some(number(key, &value)?);
                    continue;
                }
                "temperature" => {
                    temperature = Some(number(key, &value)?);
                    continue;
                }
                "seed" => {
                    seed = Some(number(key, &value)?);
                    continue;
                }
                "datatype" => &mut datatype,
                "output" => &mut output,
                "batch" => {
                    let rows: usize = number(key, &value)?;
                    if rows == 0 {
                        return Err(Error::invalid_at(key.to_owned(), "must be at least 1"));
                    }
                    batch = Some(rows);
                    continue;
                }
                other => {
                    return Err(Error::invalid(format!(
                        "unknown target key \"{}\"; known: id, service, product, version, zone, \
                         category, resource, model, model_version, max_tokens, temperature, seed, \
                         datatype, output, batch",
                        inferlink::error::printable(other.to_owned(), 64)
                    )));
                }
            };
            if slot.replace(value).is_some() {
                return Err(Error::invalid_at(key.to_owned(), "is given twice"));
            }
        }
        let Some(name) = model else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the target names no model: add model=NAME (for example \
                 'category=embedding,model=all-MiniLM-L6-v2')",
            ));
        };
        let model = match model_version {
            Some(v) => ModelRef::new(name).with_version(v),
            None => ModelRef::new(name),
        };
        let datatype = match datatype.as_deref() {
            None | Some("FP32") => DataType::Fp32,
            Some("FP64") => DataType::Fp64,
            Some("INT32") => DataType::Int32,
            Some("INT64") => DataType::Int64,
            Some(_) => {
                return Err(Error::invalid_at(
                    "datatype",
                    "must be FP32, FP64, INT32 or INT64",
                ));
            }
        };
        Ok(Target {
            selector,
            model,
            max_tokens,
            temperature,
            seed,
            datatype,
            output,
            batch,
        })
    }
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| Error::invalid_at(key.to_owned(), "is not a number of the right kind"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_word_is_the_category_and_keys_fill_the_selector() {
        let t = Target::parse("embedding, model=mini ,product=llama-cpp,id=x,service=s").unwrap();
        assert_eq!(t.selector.service_category.as_deref(), Some("embedding"));
        assert_eq!(t.selector.product.as_deref(), Some("llama-cpp"));
        assert_eq!(t.selector.extension_id.as_deref(), Some("x"));
        assert_eq!(t.selector.service_id.as_deref(), Some("s"));
        assert_eq!(t.model, ModelRef::new("mini"));
        let g = Target::parse(
            "category=gen,model=m,model_version=2,max_tokens=8,temperature=0.5,seed=7",
        )
        .unwrap();
        assert_eq!(g.model, ModelRef::new("m").with_version("2"));
        assert_eq!(
            (g.max_tokens, g.temperature, g.seed),
            (Some(8), Some(0.5), Some(7))
        );
        assert_eq!(
            (g.datatype, g.output, g.batch),
            (DataType::Fp32, None, None)
        );
        let t = Target::parse("category=tensor,model=d,datatype=FP64,output=out,batch=16").unwrap();
        assert_eq!(t.datatype, DataType::Fp64);
        assert_eq!(t.output.as_deref(), Some("out"));
        assert_eq!(t.batch, Some(16));
    }

    #[test]
    fn bad_targets_are_typed_errors_naming_the_key() {
        for (text, says) in [
            ("category=embedding", "names no model"),
            ("model=a,model=b", "given twice"),
            ("model=a,password=x", "unknown target key"),
            ("model=a,max_tokens=lots", "max_tokens"),
            ("model=", "has no value"),
            ("model=a,datatype=BYTES", "datatype"),
            ("model=a,batch=0", "batch"),
        ] {
            let e = Target::parse(text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{text}");
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
        let long = format!("model={}", "x".repeat(5000));
        assert!(
            Target::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
    }
}
