//! Semantic search from a host application (docs/guides/semantic-search.md):
//! embed a small corpus and a query through a live connector resolved from
//! the registry, rank the documents by cosine similarity, then rerank the
//! best ones when the registry has a reranking service.
//!
//! ```text
//! cargo run --example semantic_search -- --store registry.db --model all-minilm-l6-v2 \
//!     --query "cats on mats" [--rerank-model bge-reranker-base]
//! ```
//!
//! The store is an SQLite registry holding a record with a service of
//! category `embedding` (for instance the llama-cpp record of the guide),
//! registered with `inferlink register`. Credential values are encrypted at
//! rest: set `INFERLINK_MASTER_KEY` or `INFERLINK_KEY_FILE` as for the CLI
//! when the record has any.

use std::sync::Arc;

use inferlink::connector::LiveConnector;
use inferlink::store::{SqliteOptions, SqliteStore};
use inferlink::{
    Connectors, Consumer, EmbedRequest, Embedding as _, ErrorKind, ModelRef, Registry,
    RerankRequest, Reranking as _, Result, Selector,
};

/// The documents searched.
const CORPUS: [&str; 5] = [
    "A cat sleeps on the mat by the door.",
    "The central bank raised interest rates again.",
    "Kittens like to nap in warm places.",
    "The train to the airport leaves every ten minutes.",
    "Dogs and cats can live together peacefully.",
];

// ANCHOR: query
/// The connector for whatever server the registry names for `embedding`,
/// now and later: a live connector follows endpoint moves and credential
/// rotations. Build it once and keep it (clones share it).
async fn embedder(registry: &Registry, connectors: Arc<Connectors>) -> Result<LiveConnector> {
    LiveConnector::connect(
        registry,
        connectors,
        Selector::category("embedding"),
        Consumer::anywhere(),
    )
    .await
}

/// A query's vector, unit length, from the same model as the corpus.
async fn query_vector(embedder: &LiveConnector, model: &ModelRef, query: &str) -> Result<Vec<f32>> {
    let mut answer = embedder
        .embed(model, EmbedRequest::new([query]).normalize(true))
        .await?;
    Ok(answer.vectors.remove(0))
}
// ANCHOR_END: query

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let store = flag("--store").unwrap_or_else(|| "registry.db".into());
    let model = ModelRef::new(flag("--model").unwrap_or_else(|| "all-minilm-l6-v2".into()));
    let rerank_model =
        ModelRef::new(flag("--rerank-model").unwrap_or_else(|| "bge-reranker-base".into()));
    let query = flag("--query").unwrap_or_else(|| "cats on mats".into());

    // The registry and the connector crates the host links.
    let key_provider = inferlink::crypto::load_key_provider(None)?;
    let options = SqliteOptions {
        key_provider,
        ..SqliteOptions::default()
    };
    let registry = Registry::open(SqliteStore::open_with(&store, options)?).await?;
    let connectors = Arc::new(Connectors::new().with(inferlink_openai::factory()));

    // Index time: the corpus (a real indexer would run `inferlink batch
    // --task embed` over its documents and store the vectors).
    let embedder = embedder(&registry, Arc::clone(&connectors)).await?;
    let corpus = embedder
        .embed(&model, EmbedRequest::new(CORPUS).normalize(true))
        .await?;
    // Search time: the query, with the same model and settings.
    let query_vector = query_vector(&embedder, &model, &query).await?;

    // Unit-length vectors: the dot product is the cosine similarity.
    let mut ranked: Vec<(usize, f32)> = corpus
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (i, v.iter().zip(&query_vector).map(|(a, b)| a * b).sum()))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("query: {query}");
    for (i, score) in ranked.iter().take(3) {
        println!("  {score:.3}  {}", CORPUS[*i]);
    }

    // Optional second stage: a cross-encoder reranks the best candidates,
    // when the registry has a reranking service.
    let candidates: Vec<&str> = ranked.iter().take(3).map(|(i, _)| CORPUS[*i]).collect();
    let reranker = LiveConnector::connect(
        &registry,
        connectors,
        Selector::category("reranking"),
        Consumer::anywhere(),
    )
    .await;
    match reranker {
        Ok(reranker) => {
            let reranked = reranker
                .rerank(
                    &rerank_model,
                    RerankRequest::new(query, candidates.clone()).top_n(3),
                )
                .await?;
            println!("reranked:");
            for hit in reranked.results {
                println!("  {:.3}  {}", hit.score, candidates[hit.index]);
            }
        }
        Err(e) if e.kind() == ErrorKind::NoMatch => println!("(no reranking service registered)"),
        Err(e) => return Err(e),
    }
    Ok(())
}
