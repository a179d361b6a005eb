//! Cutting large embed and rerank inputs into requests a server accepts.
//!
//! A server limits how many texts one request may carry and how large its
//! body may be. [`split_embed`] and [`split_rerank`] cut the input by item
//! count and by UTF-8 bytes ([`SplitLimits`], read from the keys in
//! [`KEYS`]), send the parts with at most [`SplitLimits::concurrency`] in
//! flight, and put the answers back together in input order. A part that
//! fails fails the whole call with its own error kind and an `items`
//! context entry naming the part's items (`64..127`); the other parts are
//! cancelled.

use std::future::Future;
use std::ops::Range;

use futures_util::{StreamExt as _, stream};

use super::typed::{EmbedRequest, EmbedResponse, RerankRequest, RerankResponse, Usage};
use crate::error::{Error, ErrorKind, Result};
use crate::kit::{Key, KeySet, config_error};
use crate::target::ConnectTarget;

/// Key: most texts (or documents) in one request.
pub const MAX_ITEMS: &str = "embed_max_items";
/// Key: most UTF-8 bytes of text in one request.
pub const MAX_BYTES: &str = "embed_max_bytes";
/// Key: most requests of one call in flight at once.
pub const CONCURRENCY: &str = "embed_concurrency";

/// The splitting keys, which every connector with [`super::Embedding`] or
/// [`super::Reranking`] lists in its factory.
pub const KEYS: KeySet = KeySet {
    owner: "split",
    keys: &[
        Key::new(
            MAX_ITEMS,
            "most texts or documents per embed/rerank request (default 64, 1..=100000)",
        ),
        Key::new(
            MAX_BYTES,
            "most UTF-8 bytes of text per embed/rerank request (default 1048576)",
        ),
        Key::new(
            CONCURRENCY,
            "most embed/rerank requests of one call in flight (default 4, 1..=256)",
        ),
    ],
    prefixes: &[],
};

/// Largest `embed_max_items` accepted.
const ITEMS_LIMIT: usize = 100_000;
/// Largest `embed_max_bytes` accepted (1 GiB).
const BYTES_LIMIT: usize = 1 << 30;
/// Largest `embed_concurrency` accepted.
const CONCURRENCY_LIMIT: usize = 256;

/// How a call's input is cut into requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitLimits {
    /// Most items per request (≥ 1).
    pub max_items: usize,
    /// Most UTF-8 bytes of item text per request (≥ 1); a rerank query
    /// counts against every request.
    pub max_bytes: usize,
    /// Most requests in flight at once (≥ 1).
    pub concurrency: usize,
}

impl Default for SplitLimits {
    /// 64 items, 1 MiB, 4 in flight.
    fn default() -> Self {
        SplitLimits {
            max_items: 64,
            max_bytes: 1 << 20,
            concurrency: 4,
        }
    }
}

impl SplitLimits {
    /// `defaults` (a vendor's limits) overlaid with the target's
    /// [`KEYS`]; a value that is not a whole number in range is a `Config`
    /// error naming its key.
    pub fn from_target(target: &ConnectTarget, defaults: SplitLimits) -> Result<Self> {
        Ok(SplitLimits {
            max_items: count(target, MAX_ITEMS, defaults.max_items, ITEMS_LIMIT)?,
            max_bytes: count(target, MAX_BYTES, defaults.max_bytes, BYTES_LIMIT)?,
            concurrency: count(target, CONCURRENCY, defaults.concurrency, CONCURRENCY_LIMIT)?,
        })
    }

    /// The parts `items` is cut into: consecutive ranges of at most
    /// `max_items` items and `max_bytes - overhead` bytes each. An item
    /// larger than that alone is an [`ErrorKind::InvalidInput`] error
    /// naming it; an empty input has no parts.
    pub fn plan<S: AsRef<str>>(&self, items: &[S], overhead: usize) -> Result<Vec<Range<usize>>> {
        let budget = self.max_bytes.saturating_sub(overhead);
        let (max_items, mut parts, mut start, mut bytes) = (self.max_items.max(1), vec![], 0, 0);
        for (i, item) in items.iter().enumerate() {
            let size = item.as_ref().len();
            if size > budget {
                return Err(Error::invalid_at(
                    format!("[{i}]"),
                    format!(
                        "item {i} has {size} bytes, over the {budget}-byte limit of one request \
                         ({MAX_BYTES} {}{})",
                        self.max_bytes,
                        if overhead > 0 {
                            format!(" less {overhead} for the query")
                        } else {
                            String::new()
                        }
                    ),
                )
                .with_context("items", i.to_string()));
            }
            if i > start && (i - start == max_items || bytes + size > budget) {
                parts.push(start..i);
                (start, bytes) = (i, 0);
            }
            bytes += size;
        }
        if start < items.len() {
            parts.push(start..items.len());
        }
        Ok(parts)
    }
}

/// A whole number in `1..=limit` from the target, or `default`.
fn count(target: &ConnectTarget, key: &str, default: usize, limit: usize) -> Result<usize> {
    let Some(value) = target.value(key) else {
        return Ok(default);
    };
    match value.expose().trim().parse::<usize>() {
        Ok(n) if (1..=limit).contains(&n) => Ok(n),
        _ => Err(config_error(
            key,
            format!("must be a whole number from 1 to {limit}"),
        )),
    }
}

/// `a..b` for the items of a part, as error context (last index inclusive).
fn items_label(part: &Range<usize>) -> String {
    match part.len() {
        1 => part.start.to_string(),
        _ => format!("{}..{}", part.start, part.end - 1),
    }
}

/// Tags a part's error with its items.
fn part_error(part: &Range<usize>, error: Error) -> Error {
    error.with_context("items", items_label(part))
}

/// Sends the parts of `plan` through `send`, at most `concurrency` at a
/// time, and returns the answers in plan order (or the first failure).
async fn send_parts<T, F, Fut>(
    plan: Vec<Range<usize>>,
    concurrency: usize,
    send: F,
) -> Result<Vec<(Range<usize>, T)>>
where
    F: Fn(Range<usize>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let calls = plan.into_iter().map(|part| {
        let call = send(part.clone());
        async move {
            match call.await {
                Ok(answer) => Ok((part, answer)),
                Err(e) => Err(part_error(&part, e)),
            }
        }
    });
    let mut answers = stream::iter(calls).buffered(concurrency.max(1));
    let mut done = Vec::new();
    while let Some(answer) = answers.next().await {
        done.push(answer?);
    }
    Ok(done)
}

/// Embeds `request.texts` in parts within `limits` through `send` (one
/// server request per part, the part's texts in the request) and joins the
/// vectors in order, usage summed.
///
/// Errors: no texts, or one text larger than `max_bytes`, is
/// [`ErrorKind::InvalidInput`] (nothing is sent); a part's error is
/// returned with its kind and an `items` context; a part answering a wrong
/// number of vectors, or vectors of another length than the first part's,
/// is [`ErrorKind::Protocol`] naming the part's items.
pub async fn split_embed<F, Fut>(
    limits: SplitLimits,
    request: EmbedRequest,
    send: F,
) -> Result<EmbedResponse>
where
    F: Fn(EmbedRequest) -> Fut,
    Fut: Future<Output = Result<EmbedResponse>>,
{
    if request.texts.is_empty() {
        return Err(Error::invalid("the embed request has no texts"));
    }
    let plan = limits.plan(&request.texts, 0)?;
    let parts = send_parts(plan, limits.concurrency, |part| {
        send(request.with_texts(request.texts[part].to_vec()))
    })
    .await?;
    let mut vectors = Vec::with_capacity(request.texts.len());
    let (mut usage, mut normalized) = (Vec::new(), None);
    for (part, answer) in parts {
        if answer.vectors.len() != part.len() {
            let why = format!("{} vectors for {} texts", answer.vectors.len(), part.len());
            return Err(part_error(&part, Error::new(ErrorKind::Protocol, why)));
        }
        if vectors
            .first()
            .is_some_and(|v: &Vec<f32>| v.len() != answer.dimensions)
        {
            let why = format!(
                "vectors of {} numbers after vectors of {}",
                answer.dimensions,
                vectors[0].len()
            );
            return Err(part_error(&part, Error::new(ErrorKind::Protocol, why)));
        }
        usage.push(answer.usage);
        normalized = normalized.or(answer.normalized);
        vectors.extend(answer.vectors);
    }
    Ok(EmbedResponse::new(vectors)?
        .with_usage(Usage::sum(usage))
        .with_normalized(normalized))
}

/// Scores `request.documents` in parts within `limits` through `send` (each
/// part with the query and `top_n`; the query's bytes count against every
/// part), maps each part's indices back to the whole list, and returns the
/// hits best first, cut to `top_n` after the merge, usage summed.
///
/// Errors as [`split_embed`]; a hit whose index is outside its part is
/// [`ErrorKind::Protocol`].
pub async fn split_rerank<F, Fut>(
    limits: SplitLimits,
    request: RerankRequest,
    send: F,
) -> Result<RerankResponse>
where
    F: Fn(RerankRequest) -> Fut,
    Fut: Future<Output = Result<RerankResponse>>,
{
    if request.documents.is_empty() {
        return Err(Error::invalid("the rerank request has no documents"));
    }
    if request.query.len() >= limits.max_bytes {
        return Err(Error::invalid_at(
            "query",
            format!(
                "the query has {} bytes; with {MAX_BYTES} {} no document fits beside it",
                request.query.len(),
                limits.max_bytes
            ),
        ));
    }
    let plan = limits.plan(&request.documents, request.query.len())?;
    let parts = send_parts(plan, limits.concurrency, |part| {
        send(request.with_documents(request.documents[part].to_vec()))
    })
    .await?;
    let mut hits = Vec::new();
    let mut usage = Vec::new();
    for (part, answer) in parts {
        for mut hit in answer.results {
            if hit.index >= part.len() {
                let why = format!("a hit for document {} of {}", hit.index, part.len());
                return Err(part_error(&part, Error::new(ErrorKind::Protocol, why)));
            }
            hit.index += part.start;
            hits.push(hit);
        }
        usage.push(answer.usage);
    }
    Ok(RerankResponse::new(hits, request.top_n).with_usage(Usage::sum(usage)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::connector::typed::RerankHit;

    fn limits(max_items: usize, max_bytes: usize, concurrency: usize) -> SplitLimits {
        SplitLimits {
            max_items,
            max_bytes,
            concurrency,
        }
    }

    fn texts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("text {i:03}")).collect()
    }

    /// A server stand-in: each text's vector is `[first number in it, len]`.
    async fn fake_embed(part: EmbedRequest) -> Result<EmbedResponse> {
        let vectors = part
            .texts
            .iter()
            .map(|t| vec![t[5..].parse::<f32>().unwrap_or(-1.0), t.len() as f32])
            .collect();
        let usage = Usage {
            prompt_tokens: Some(part.texts.len() as u64),
            ..Usage::default()
        };
        Ok(EmbedResponse::new(vectors)?.with_usage(Some(usage)))
    }

    #[test]
    fn plans_cut_by_items_and_bytes() {
        let items = ["aa", "bb", "cc", "dddd", "e"];
        assert_eq!(
            limits(2, 100, 1).plan(&items, 0).unwrap(),
            vec![0..2, 2..4, 4..5]
        );
        assert_eq!(
            limits(10, 5, 1).plan(&items, 0).unwrap(),
            vec![0..2, 2..3, 3..5]
        );
        // One byte of each request goes to the query.
        assert_eq!(
            limits(10, 5, 1).plan(&items, 1).unwrap(),
            vec![0..2, 2..3, 3..4, 4..5]
        );
        let empty: [&str; 0] = [];
        assert!(limits(2, 5, 1).plan(&empty, 0).unwrap().is_empty());
        // Multi-byte text counts in bytes, not characters.
        assert_eq!(
            limits(10, 4, 1).plan(&["éé", "é"], 0).unwrap(),
            vec![0..1, 1..2]
        );
    }

    #[test]
    fn one_item_over_the_byte_limit_is_named() {
        let e = limits(10, 4, 1).plan(&["ok", "too long"], 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.path(), Some("[1]"));
        assert_eq!(e.context("items"), Some("1"));
        assert!(e.message().contains("8 bytes"), "{e}");
    }

    #[tokio::test]
    async fn embed_parts_come_back_in_order_with_usage_summed() {
        let request = EmbedRequest::new(texts(10)).dimensions(2);
        let sent = Arc::new(AtomicUsize::new(0));
        let answer = split_embed(limits(3, 1000, 3), request, |part| {
            assert_eq!(part.dimensions, Some(2));
            sent.fetch_add(1, Ordering::SeqCst);
            // Later parts answer first: order must come from the plan.
            let delay = 40 - part.texts[0][5..].parse::<u64>().unwrap() * 4;
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                fake_embed(part).await
            }
        })
        .await
        .unwrap();
        assert_eq!(sent.load(Ordering::SeqCst), 4);
        let firsts: Vec<f32> = answer.vectors.iter().map(|v| v[0]).collect();
        assert_eq!(firsts, (0..10).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(answer.dimensions, 2);
        assert_eq!(answer.usage.unwrap().prompt_tokens, Some(10));
    }

    #[tokio::test]
    async fn concurrency_stays_within_the_bound() {
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let answer = split_embed(limits(1, 1000, 3), EmbedRequest::new(texts(12)), |part| {
            let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
            async move {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                fake_embed(part).await
            }
        })
        .await
        .unwrap();
        assert_eq!(answer.vectors.len(), 12);
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failing_part_names_its_items_and_keeps_its_kind() {
        let e = split_embed(
            limits(4, 1000, 2),
            EmbedRequest::new(texts(10)),
            |part| async move {
                if part.texts[0] == "text 004" {
                    Err(Error::new(ErrorKind::RateLimited, "slow down"))
                } else {
                    fake_embed(part).await
                }
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.context("items"), Some("4..7"));
        assert!(e.is_retryable());
    }

    #[tokio::test]
    async fn hostile_inputs_and_answers_are_typed_errors() {
        let never = |_: EmbedRequest| async { unreachable!("nothing may be sent") };
        let empty = split_embed(
            limits(4, 10, 1),
            EmbedRequest::new(Vec::<String>::new()),
            never,
        );
        assert_eq!(empty.await.unwrap_err().kind(), ErrorKind::InvalidInput);
        let big = EmbedRequest::new(["short", "this one is far too long"]);
        let e = split_embed(limits(4, 10, 1), big, never).await.unwrap_err();
        assert_eq!((e.kind(), e.path()), (ErrorKind::InvalidInput, Some("[1]")));
        // A server answering one vector too few, or another length per part.
        let short = split_embed(
            limits(2, 100, 1),
            EmbedRequest::new(texts(4)),
            |p| async move {
                let mut answer = fake_embed(p).await?;
                answer.vectors.pop();
                Ok(answer)
            },
        );
        let e = short.await.unwrap_err();
        assert_eq!(
            (e.kind(), e.context("items")),
            (ErrorKind::Protocol, Some("0..1"))
        );
        let ragged = split_embed(
            limits(2, 100, 1),
            EmbedRequest::new(texts(4)),
            |p| async move {
                let wide = p.texts[0] == "text 002";
                let vectors = vec![vec![0.0; if wide { 3 } else { 2 }]; p.texts.len()];
                EmbedResponse::new(vectors)
            },
        );
        let e = ragged.await.unwrap_err();
        assert_eq!(
            (e.kind(), e.context("items")),
            (ErrorKind::Protocol, Some("2..3"))
        );
    }

    #[tokio::test]
    async fn rerank_merges_parts_and_applies_top_n_after() {
        let docs: Vec<String> = [5, 1, 9, 3, 7, 2].iter().map(|s| s.to_string()).collect();
        let request = RerankRequest::new("q", docs).top_n(3);
        let answer = split_rerank(limits(2, 100, 2), request, |part| async move {
            assert_eq!(part.top_n, Some(3));
            let hits = part
                .documents
                .iter()
                .enumerate()
                .map(|(index, d)| RerankHit {
                    index,
                    score: d.parse().unwrap(),
                })
                .collect();
            Ok(RerankResponse::new(hits, part.top_n))
        })
        .await
        .unwrap();
        let order: Vec<usize> = answer.results.iter().map(|h| h.index).collect();
        assert_eq!(order, vec![2, 4, 0]);
        let bad = split_rerank(
            limits(2, 100, 1),
            RerankRequest::new("q", ["a"]),
            |_| async {
                Ok(RerankResponse::new(
                    vec![RerankHit {
                        index: 5,
                        score: 1.0,
                    }],
                    None,
                ))
            },
        );
        assert_eq!(bad.await.unwrap_err().kind(), ErrorKind::Protocol);
        let query_too_big = RerankRequest::new("x".repeat(50), ["a"]);
        let never = |_: RerankRequest| async { unreachable!("nothing may be sent") };
        let e = split_rerank(limits(2, 40, 1), query_too_big, never)
            .await
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.path()),
            (ErrorKind::InvalidInput, Some("query"))
        );
    }

    #[test]
    fn limits_from_keys() {
        let t = ConnectTarget::new("x", "http://127.0.0.1:1")
            .with_plain(MAX_ITEMS, " 16 ")
            .with_plain(CONCURRENCY, "2");
        let l = SplitLimits::from_target(&t, SplitLimits::default()).unwrap();
        assert_eq!((l.max_items, l.max_bytes, l.concurrency), (16, 1 << 20, 2));
        for bad in ["0", "-1", "many", "1000000"] {
            let t = ConnectTarget::new("x", "http://127.0.0.1:1").with_plain(MAX_ITEMS, bad);
            let e = SplitLimits::from_target(&t, SplitLimits::default()).unwrap_err();
            assert_eq!((e.kind(), e.path()), (ErrorKind::Config, Some(MAX_ITEMS)));
        }
    }
}
