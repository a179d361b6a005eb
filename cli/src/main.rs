//! `inferlink`: register, list, resolve and export extension records.
//!
//! This file holds the command-line grammar (clap derive), the dispatch and
//! the exit-status rules; the commands live in [`commands`], rendering in
//! [`output`] and bounded input reading in [`input`].
//!
//! Exit status: 0 ok; 1 not found or no match; 2 bad input or usage (also a
//! call the resolved service does not offer); 3 any
//! other failure (storage, internal). `exec` exits with its command's status
//! (127 when the command is not found, 126 when it cannot be executed).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use inferlink::{Consumer, Error, ErrorKind, Selector};

mod batch;
mod blueprint;
mod commands;
mod connect;
mod input;
mod keys;
mod output;
#[cfg(feature = "sql")]
mod sql;
mod text;
mod transfer;

/// Exit status for success.
const EXIT_OK: u8 = 0;
/// Exit status when a record is not found or a selector matches nothing.
const EXIT_NOT_FOUND: u8 = 1;
/// Exit status for bad input or usage (also clap's own usage errors).
const EXIT_USAGE: u8 = 2;
/// Exit status for every other failure (storage, internal).
const EXIT_FAILURE: u8 = 3;
/// Exit status of `exec` when the command cannot be executed.
const EXIT_CANNOT_EXECUTE: u8 = 126;
/// Exit status of `exec` when the command is not found.
const EXIT_COMMAND_NOT_FOUND: u8 = 127;

const AFTER_HELP: &str = "\
Exit status:
  0    success
  1    not found: no record with that id, or the selector matched nothing
  2    bad input or usage: invalid record, step or flag, duplicate id, bad version constraint,
       a call the resolved service does not offer (Unsupported)
  3    any other failure: storage (database) error, internal error
  exec exits with its command's status (127: command not found, 126: not executable)

Errors are printed as one line on stderr: `inferlink: <message>`.
Secret values (credential configuration) are never printed unless --show-secrets
(get), --reveal (env) or --with-secrets (export, with its confirmation flag) is given.";

const EXEC_AFTER_HELP: &str = "\
The variables are added to the environment inferlink was started with; nothing of
them is printed. On Unix the command replaces the inferlink process (same process
id, receives its signals).

Exit status: the command's own (a shell reports 128+N for a command killed by
signal N); 127 when the command is not found; 126 when it cannot be executed;
1, 2 or 3 (see `inferlink --help`) when the step cannot be resolved, in which
case the command is not run.";

/// Register, list and resolve extension records (FuseML's extension registry format).
#[derive(Debug, Parser)]
#[command(name = "inferlink", version, after_help = AFTER_HELP)]
struct Cli {
    /// The registry: an SQLite database file (created, with its directories, if missing;
    /// also as sqlite:PATH or sqlite:///ABSOLUTE/PATH),
    /// or a PostgreSQL URL postgres://USER:PASSWORD@HOST:PORT/DBNAME (or postgresql://…;
    /// shared by many hosts; ?sslmode=…&sslrootcert=CA.pem for TLS). Pass URLs with a
    /// password through INFERLINK_STORE rather than --store, which other users can see
    /// in the process list
    /// [default: <data dir>/inferlink/registry.db, e.g. ~/.local/share/inferlink/registry.db on Linux]
    #[arg(
        long,
        global = true,
        env = "INFERLINK_STORE",
        hide_env_values = true,
        value_name = "PATH|URL"
    )]
    store: Option<PathBuf>,

    /// The key file holding the master key that encrypts credential values at rest
    /// [default: $INFERLINK_MASTER_KEY if set, else $INFERLINK_KEY_FILE, else
    /// <data dir>/inferlink/master.key if it exists]
    #[arg(long, global = true, value_name = "PATH")]
    key_file: Option<PathBuf>,

    /// The PostgreSQL schema holding the registry's tables (PostgreSQL stores only)
    #[arg(
        long,
        global = true,
        env = "INFERLINK_PG_SCHEMA",
        value_name = "NAME",
        default_value = "inferlink"
    )]
    pg_schema: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register extension records from a YAML or JSON file (several records per file allowed)
    Register(RegisterArgs),
    /// Remove a record from the registry
    Unregister(UnregisterArgs),
    /// List records (secret values are never shown)
    List(ListArgs),
    /// Show one record (secret values hidden unless --show-secrets)
    Get(GetArgs),
    /// Resolve a selector to one service, endpoint and credential set
    Resolve(ResolveArgs),
    /// Print the environment of a workflow step as an env file (KEY=VALUE lines that
    /// `sh` and `docker --env-file` read alike; values they would read differently are refused)
    Env(EnvArgs),
    /// Run a command with the environment of a workflow step added to its own
    #[command(after_help = EXEC_AFTER_HELP)]
    Exec(ExecArgs),
    /// Write records as YAML or JSON to standard output, a file, or one file per record
    /// (secrets hidden unless --with-secrets)
    Export(transfer::ExportArgs),
    /// Make the registry hold the records of a file or directory: all changes in one
    /// transaction, with a report of what changed
    Import(transfer::ImportArgs),
    /// Check every registered record (or one) against the connectors: each service,
    /// endpoint and credential set must give a connector; an unknown configuration key
    /// (a typo) is reported with the nearest known one. Nothing is called.
    Check(CheckArgs),
    /// Manage the master key that encrypts credential values at rest
    #[command(subcommand, after_help = keys::KEYS_AFTER_HELP)]
    Keys(KeysCommand),
    /// Connector blueprints: list and show the shipped ones, check blueprint files
    /// (docs/connectors/blueprints.md)
    #[command(subcommand)]
    Blueprint(blueprint::BlueprintCommand),
    /// Resolve a selector and check that the model server it names is live and ready
    Health(TargetArgs),
    /// List the models the resolved server serves
    Models(ModelsArgs),
    /// Show a model's inputs and outputs (name, datatype, shape)
    Metadata(MetadataArgs),
    /// Run inference: OIP JSON tensors in, the outputs out as JSON or a table
    #[command(after_help = INFER_AFTER_HELP)]
    Infer(InferArgs),
    /// Send an opaque body to a model and write the response body to standard output
    Invoke(InvokeArgs),
    /// Run a JSON Lines file through a model, resumably: OIP requests (--task infer)
    /// or texts to embed (--task embed)
    #[command(after_help = BATCH_AFTER_HELP)]
    Batch(BatchArgs),
    /// Turn texts into vectors: one JSON line {"index", "vector"} per text
    #[command(after_help = EMBED_AFTER_HELP)]
    Embed(EmbedArgs),
    /// Score documents against a query: one JSON line {"index", "score"} per document, best first
    #[command(after_help = RERANK_AFTER_HELP)]
    Rerank(RerankArgs),
    /// Generate text from a prompt; the text is written as it arrives
    #[command(after_help = GENERATE_AFTER_HELP)]
    Generate(GenerateArgs),
    /// Run SQL over Parquet, CSV or JSON files with model calls: embed(), rerank(),
    /// generate() and their try_* forms (docs/sql.md); here or on a Ballista cluster
    #[cfg(feature = "sql")]
    #[command(after_help = SQL_AFTER_HELP)]
    Sql(SqlArgs),
}

#[cfg(feature = "sql")]
const SQL_AFTER_HELP: &str = "\
The functions' first argument is the target: comma-separated key=value pairs naming the
registry selector and the model, e.g. 'category=embedding,model=all-MiniLM-L6-v2'
(keys: id, service, product, version, zone, category, resource, model, model_version,
max_tokens, temperature, seed; a bare word is the category).
  embed(target, text)               List<Float32>
  rerank(target, query, document)   Float64
  generate(target, prompt)          Utf8
A null or empty text gives null and is not sent. A failed row fails the query; the
try_embed/try_rerank/try_generate forms answer {value, error} for each row instead.

Example:
  inferlink sql --table docs=corpus.parquet --output vectors.parquet \\
    \"SELECT id, embed('embedding,model=all-MiniLM-L6-v2', text) AS vector FROM docs\"";

/// `sql` flags.
#[cfg(feature = "sql")]
#[derive(Debug, Args)]
struct SqlArgs {
    /// The query (or --query-file)
    #[arg(value_name = "QUERY")]
    query: Option<String>,

    /// Read the query from this file (`-` for standard input)
    #[arg(long, value_name = "FILE")]
    query_file: Option<PathBuf>,

    /// A table for the query: NAME=FILE, a .parquet, .csv, .json/.jsonl/.ndjson file (repeatable)
    #[arg(long = "table", value_name = "NAME=FILE")]
    tables: Vec<String>,

    /// Write the result to this file (.parquet, .csv, .json/.jsonl/.ndjson: JSON lines);
    /// without it, JSON lines to standard output
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Run on the Ballista scheduler at df://HOST:PORT (its executors open their own registry)
    #[arg(long, value_name = "df://HOST:PORT")]
    cluster: Option<String>,

    /// Rows per record batch handed to the functions
    #[arg(long, value_name = "N", default_value_t = 1024)]
    batch_rows: usize,

    /// generate() calls in flight at most (embed() uses the record's embed_concurrency)
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,

    #[command(flatten)]
    consumer: ConsumerArgs,
}

const BATCH_AFTER_HELP: &str = "\
--task infer (default): each input line is one request in OIP JSON, as `infer --input`
takes it (an \"id\" field is copied to the answer). Each output line answers one input line:
  {\"line\": N, \"id\": …, \"model_name\": …, \"outputs\": [...], \"elapsed_ms\": …}   or
  {\"line\": N, \"id\": …, \"error\": {\"kind\": …, \"message\": …, \"retryable\": …}}
--task embed: each input line is {\"text\": \"…\"} or {\"id\": …, \"text\": \"…\"} (id: a string or
a number, copied); --batch-size lines go in one request, and each output line is
  {\"line\": N, \"id\": …, \"vector\": [...], \"dimensions\": D, \"elapsed_ms\": …}   or an error line
in the order answers arrive. Answers are appended and flushed one by one; running the
same command again skips the lines the output already answers (--retry-failed: runs
the failed ones again). Exit status 3 when some lines failed (their errors are in
the output).";

const INFER_AFTER_HELP: &str = "\
Input: Open Inference Protocol JSON tensors, inline or @FILE (@- for standard input):
  {\"inputs\": [{\"name\": \"INPUT0\", \"datatype\": \"FP32\", \"shape\": [1, 3], \"data\": [1, 2, 3]}]}
a bare list of tensors, or one tensor object. `data` may be flat or nested; BYTES
elements are strings. The connector of the resolved service decides the wire format.";

const EMBED_AFTER_HELP: &str = "\
Texts come from the arguments (one text each), else from --file FILE (`-`: standard
input), else from standard input: one text per line (a final newline and a CR before
each newline are dropped; an empty line is an error, so that indices stay line numbers
minus one).

Output: one JSON line per text, in input order: {\"index\": I, \"vector\": [...]}.
A summary (count, dimensions, token usage) goes to standard error. The resolved service
must offer embeddings (exit 2 with an Unsupported error otherwise).";

const RERANK_AFTER_HELP: &str = "\
Documents come from the arguments (one document each), else from --file FILE (`-`:
standard input), else from standard input: one document per line (empty lines are
errors). Output: one JSON line per hit, best first: {\"index\": I, \"score\": S}, I being
the document's position (0-based). The resolved service must offer reranking (exit 2
with an Unsupported error otherwise).";

const GENERATE_AFTER_HELP: &str = "\
The prompt is the arguments joined with spaces, else all of standard input. It is sent
as a chat (a user message, after the --system message if given) unless --completion.
The text is written to standard output as it arrives when the connector streams (else
at the end); on a terminal, control characters other than newline and tab are shown
escaped. The finish reason and token usage go to standard error. The resolved service
must offer generation (exit 2 with an Unsupported error otherwise).";

/// Which service to call: selector and consumer flags, as in `resolve`.
#[derive(Debug, Args)]
struct TargetArgs {
    #[command(flatten)]
    selector: SelectorArgs,

    #[command(flatten)]
    consumer: ConsumerArgs,
}

/// Arguments of `models`.
#[derive(Debug, Args)]
struct ModelsArgs {
    #[command(flatten)]
    target: TargetArgs,
}

/// Arguments of `metadata`.
#[derive(Debug, Args)]
struct MetadataArgs {
    #[command(flatten)]
    target: TargetArgs,

    /// The model
    #[arg(long, value_name = "MODEL")]
    model: String,

    /// The model version (default: the server's choice)
    #[arg(long, value_name = "VERSION")]
    model_version: Option<String>,
}

/// Arguments of `infer`.
#[derive(Debug, Args)]
struct InferArgs {
    #[command(flatten)]
    target: TargetArgs,

    /// The model
    #[arg(long, value_name = "MODEL")]
    model: String,

    /// The model version (default: the server's choice)
    #[arg(long, value_name = "VERSION")]
    model_version: Option<String>,

    /// The input tensors as OIP JSON, or @FILE
    #[arg(long, value_name = "JSON|@FILE")]
    input: String,

    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = TensorFormat::Json)]
    output: TensorFormat,
}

/// Output formats of `infer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TensorFormat {
    /// The response as OIP JSON (model_name, outputs with name, datatype, shape, data)
    Json,
    /// One row per output, the first values of its data
    Table,
}

/// Arguments of `batch`.
#[derive(Debug, Args)]
struct BatchArgs {
    #[command(flatten)]
    target: TargetArgs,

    /// The model
    #[arg(long, value_name = "MODEL")]
    model: String,

    /// The model version (default: the server's choice)
    #[arg(long, value_name = "VERSION")]
    model_version: Option<String>,

    /// The requests, one OIP JSON request per line
    #[arg(long, value_name = "FILE.jsonl")]
    input: PathBuf,

    /// Where answers are appended, one per line (created if missing)
    #[arg(long, value_name = "FILE.jsonl")]
    output: PathBuf,

    /// Requests in flight at most
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,

    /// Run again the lines whose latest answer in the output is an error
    #[arg(long)]
    retry_failed: bool,

    /// Requests per second at most, over the whole run (client-side token bucket)
    #[arg(long, value_name = "N")]
    rate: Option<f64>,

    /// Route over every candidate of the selector: ranked_failover, round_robin,
    /// least_in_flight or latency_weighted (default: the best candidate only)
    #[arg(long, value_name = "STRATEGY")]
    route: Option<String>,

    /// What each line asks for
    #[arg(long, value_enum, default_value_t = BatchTask::Infer)]
    task: BatchTask,

    /// --task embed: lines sent in one request (each line still gets its own answer)
    #[arg(long, value_name = "N", default_value_t = 32)]
    batch_size: usize,

    #[command(flatten)]
    vectors: VectorArgs,
}

impl BatchArgs {
    /// The files and bounds the batch machinery needs.
    fn files(&self) -> batch::BatchFiles {
        batch::BatchFiles {
            input: self.input.clone(),
            output: self.output.clone(),
            concurrency: self.concurrency,
            retry_failed: self.retry_failed,
            rate: self.rate,
        }
    }
}

/// What the lines of a `batch` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BatchTask {
    /// OIP tensors in, tensors out (each line as `infer --input` takes it)
    Infer,
    /// A text in ({"text": …} or {"id": …, "text": …}), its vector out
    Embed,
}

/// How vectors are asked for (`embed`, `batch --task embed`).
#[derive(Debug, Args)]
struct VectorArgs {
    /// The vector length wanted, for models that can shorten their vectors
    #[arg(long, value_name = "N")]
    dimensions: Option<u32>,

    /// Return unit-length vectors
    #[arg(long)]
    normalize: bool,
}

/// The model a text command calls.
#[derive(Debug, Args)]
struct ModelArgs {
    /// The model
    #[arg(long, value_name = "MODEL")]
    model: String,

    /// The model version (default: the server's choice)
    #[arg(long, value_name = "VERSION")]
    model_version: Option<String>,
}

/// Where texts come from: arguments, a file, or standard input.
#[derive(Debug, Args)]
struct TextsArgs {
    /// The texts, one argument each (else --file, else standard input, one per line)
    #[arg(value_name = "TEXT")]
    texts: Vec<String>,

    /// Read the texts from FILE, one per line (`-`: standard input)
    #[arg(long, short = 'f', value_name = "FILE", conflicts_with = "texts")]
    file: Option<PathBuf>,
}

/// Arguments of `embed`.
#[derive(Debug, Args)]
struct EmbedArgs {
    #[command(flatten)]
    target: TargetArgs,

    #[command(flatten)]
    model: ModelArgs,

    #[command(flatten)]
    vectors: VectorArgs,

    #[command(flatten)]
    input: TextsArgs,
}

/// Arguments of `rerank`.
#[derive(Debug, Args)]
struct RerankArgs {
    #[command(flatten)]
    target: TargetArgs,

    #[command(flatten)]
    model: ModelArgs,

    /// The query the documents are scored against
    #[arg(long, value_name = "TEXT")]
    query: String,

    /// Keep only the best N documents
    #[arg(long, value_name = "N")]
    top_n: Option<usize>,

    #[command(flatten)]
    input: TextsArgs,
}

/// Arguments of `generate`.
#[derive(Debug, Args)]
struct GenerateArgs {
    #[command(flatten)]
    target: TargetArgs,

    #[command(flatten)]
    model: ModelArgs,

    /// A system message sent before the prompt (chat only)
    #[arg(long, value_name = "TEXT", conflicts_with = "completion")]
    system: Option<String>,

    /// Most tokens to generate
    #[arg(long, value_name = "N")]
    max_tokens: Option<u32>,

    /// Sampling temperature (0: greedy)
    #[arg(long, value_name = "T")]
    temperature: Option<f32>,

    /// Send the prompt as a bare completion (no chat template)
    #[arg(long)]
    completion: bool,

    /// Print the text at the end even when the connector can stream
    #[arg(long)]
    no_stream: bool,

    /// The prompt (the arguments joined with spaces; without them, all of standard input)
    #[arg(value_name = "PROMPT")]
    prompt: Vec<String>,
}

/// Arguments of `invoke`.
#[derive(Debug, Args)]
struct InvokeArgs {
    #[command(flatten)]
    target: TargetArgs,

    /// The model
    #[arg(long, value_name = "MODEL")]
    model: String,

    /// The model version (default: the server's choice)
    #[arg(long, value_name = "VERSION")]
    model_version: Option<String>,

    /// The body: @FILE (any bytes; @- for standard input) or inline text
    #[arg(long, value_name = "@FILE|TEXT")]
    body: String,

    /// The body's media type
    #[arg(long, value_name = "TYPE", default_value = "application/json")]
    content_type: String,

    /// The media type wanted back, where the platform lets the caller choose
    #[arg(long, value_name = "TYPE")]
    accept: Option<String>,
}

/// The `keys` subcommands.
#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Write a new master key to a new key file (mode 0600); never overwrites one
    Init,
    /// Replace the master key (re-wrapping the store's data key), keeping the old key as a backup file
    Rotate(KeysRotateArgs),
    /// Show which key is configured, where it comes from, and the store's data keys (never key bytes)
    Status,
}

/// Arguments of `keys rotate`.
#[derive(Debug, Args)]
struct KeysRotateArgs {
    /// Also replace the store's data key and re-encrypt every credential value with it
    /// (one transaction)
    #[arg(long)]
    data_key: bool,

    /// Where to write the new key when the current one comes from INFERLINK_MASTER_KEY
    /// (a new file; required in that case)
    #[arg(long, value_name = "PATH")]
    new_key_file: Option<PathBuf>,
}

/// Arguments of `register`.
#[derive(Debug, Args)]
struct RegisterArgs {
    /// The records to register: a YAML file (one or more `---`-separated documents)
    /// or a JSON file (an object or an array); `-` reads standard input. At most 64 MiB.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: PathBuf,

    /// Create records that are missing and replace those that exist (idempotent, for
    /// installers). A credential value of `<hidden>` keeps the stored value.
    #[arg(long)]
    upsert: bool,
}

/// Arguments of `check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Check only this record
    #[arg(long, value_name = "ID")]
    pub(crate) id: Option<String>,
}

/// Arguments of `unregister`.
#[derive(Debug, Args)]
struct UnregisterArgs {
    /// The id of the record to remove
    #[arg(value_name = "ID")]
    id: String,
}

/// The record filters of `list` and `export`.
#[derive(Debug, Args)]
pub(crate) struct FilterArgs {
    /// Only records of this product (e.g. mlflow)
    #[arg(long, value_name = "PRODUCT")]
    pub(crate) product: Option<String>,

    /// Only records in this zone
    #[arg(long, value_name = "ZONE")]
    pub(crate) zone: Option<String>,

    /// Only records with a service of this resource type (e.g. s3)
    #[arg(long, value_name = "RESOURCE")]
    pub(crate) resource: Option<String>,

    /// Only records with a service of this category (e.g. model-store)
    #[arg(long, value_name = "CATEGORY")]
    pub(crate) category: Option<String>,
}

impl FilterArgs {
    /// The store filter these flags describe.
    pub(crate) fn into_filter(self) -> inferlink::ListFilter {
        inferlink::ListFilter {
            product: self.product,
            zone: self.zone,
            service_resource: self.resource,
            service_category: self.category,
        }
    }
}

/// Arguments of `list`.
#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,

    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ListFormat::Table)]
    output: ListFormat,
}

/// Output formats of `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    /// Aligned columns ID, PRODUCT, VERSION, ZONE, SERVICES with a header row
    Table,
    /// A JSON array of records (secrets hidden)
    Json,
    /// A multi-document YAML stream of records (secrets hidden)
    Yaml,
}

/// Arguments of `get`.
#[derive(Debug, Args)]
struct GetArgs {
    /// The id of the record
    #[arg(value_name = "ID")]
    id: String,

    /// Output format; the output can be edited and registered again with `register --upsert`
    #[arg(short = 'o', long = "output", value_enum, default_value_t = RecordFormat::Yaml)]
    output: RecordFormat,

    /// Print credential values in clear instead of `<hidden>`
    #[arg(long)]
    show_secrets: bool,
}

/// Output formats of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RecordFormat {
    /// YAML
    Yaml,
    /// JSON
    Json,
}

/// Selector flags of `resolve`: what the consumer needs. Unset flags do not filter.
#[derive(Debug, Args)]
struct SelectorArgs {
    /// A name for the selector, used in messages
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    /// Only the record with this id
    #[arg(long, value_name = "ID")]
    extension_id: Option<String>,

    /// Only the service with this id
    #[arg(long, value_name = "ID")]
    service_id: Option<String>,

    /// Only records of this product
    #[arg(long, value_name = "PRODUCT")]
    product: Option<String>,

    /// An exact version, or a constraint such as `~1.10`, `>=1.2, <2`, `1.x || 2.x`
    #[arg(long, value_name = "VERSION")]
    version: Option<String>,

    /// Only records in this zone (the zone of the record, not of the consumer)
    #[arg(long, value_name = "ZONE")]
    zone: Option<String>,

    /// Only services of this category (e.g. model-store)
    #[arg(long, value_name = "CATEGORY")]
    service_category: Option<String>,

    /// Only services of this resource type (e.g. s3)
    #[arg(long, value_name = "RESOURCE")]
    service_resource: Option<String>,
}

impl SelectorArgs {
    fn selector(&self) -> Selector {
        Selector {
            name: self.name.clone(),
            extension_id: self.extension_id.clone(),
            service_id: self.service_id.clone(),
            zone: self.zone.clone(),
            product: self.product.clone(),
            version: self.version.clone(),
            service_category: self.service_category.clone(),
            service_resource: self.service_resource.clone(),
        }
    }
}

/// Consumer flags: who asks and from where.
#[derive(Debug, Args)]
struct ConsumerArgs {
    /// The zone the consumer runs in; internal endpoints are used only within their record's zone
    #[arg(long, value_name = "ZONE")]
    consumer_zone: Option<String>,

    /// The project the consumer works in (selects project- and user-scoped credentials)
    #[arg(long, value_name = "PROJECT")]
    project: Option<String>,

    /// The user the consumer acts for (selects user-scoped credentials)
    #[arg(long, value_name = "USER")]
    user: Option<String>,
}

impl ConsumerArgs {
    fn consumer(&self) -> Consumer {
        Consumer {
            zone: self.consumer_zone.clone(),
            project: self.project.clone(),
            user: self.user.clone(),
        }
    }
}

/// Arguments of `resolve`.
#[derive(Debug, Args)]
struct ResolveArgs {
    #[command(flatten)]
    selector: SelectorArgs,

    #[command(flatten)]
    consumer: ConsumerArgs,

    /// Output format: a summary of the best resolution, or every resolution ranked best first
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ResolveFormat::Text)]
    output: ResolveFormat,

    /// First print how each filter narrowed the candidates (also when nothing matches)
    #[arg(long)]
    explain: bool,
}

/// Output formats of `resolve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ResolveFormat {
    /// A short summary of the best resolution, its configuration as KEY=VALUE lines
    Text,
    /// Every resolution as a JSON array, best first (secrets hidden)
    Json,
    /// Every resolution as a YAML list, best first (secrets hidden)
    Yaml,
}

/// Arguments of `env`.
#[derive(Debug, Args)]
struct EnvArgs {
    /// The workflow step (YAML or JSON with `extensions:` selectors and `env:` entries); `-` reads standard input
    #[arg(long, value_name = "FILE")]
    step: PathBuf,

    #[command(flatten)]
    consumer: ConsumerArgs,

    /// Print secret values (from credentials) in clear instead of `<hidden>`
    #[arg(long)]
    reveal: bool,
}

/// Arguments of `exec`.
#[derive(Debug, Args)]
struct ExecArgs {
    /// The workflow step (YAML or JSON with `extensions:` selectors and `env:` entries); `-` reads standard input
    #[arg(long, value_name = "FILE")]
    step: PathBuf,

    #[command(flatten)]
    consumer: ConsumerArgs,

    /// The command to run and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// The exit status for an error of this kind.
fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::NotFound | ErrorKind::NoMatch => EXIT_NOT_FOUND,
        ErrorKind::InvalidInput
        | ErrorKind::Unsupported
        | ErrorKind::AlreadyExists
        | ErrorKind::Conflict
        | ErrorKind::Config => EXIT_USAGE,
        _ => EXIT_FAILURE,
    }
}

/// Prints `inferlink: <message>` on stderr as exactly one line; line breaks
/// become `; ` and other control characters are escaped
/// ([`output::printable`]), so a message quoting a server cannot drive the terminal.
fn report(message: &str) {
    let mut line = String::with_capacity(message.len());
    for (i, part) in message.trim_end().lines().enumerate() {
        if i > 0 {
            line.push_str("; ");
        }
        line.push_str(part.trim_end_matches('\r'));
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "inferlink: {}",
        output::printable(&line)
    );
}

/// Writes the buffered standard output; a closed pipe (`inferlink list | head`) is not an error.
fn flush_stdout(text: &str) -> Result<(), u8> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            report(&format!("cannot write to standard output: {e}"));
            Err(EXIT_FAILURE)
        }
    }
}

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with status 2 (0 for --help and --version).
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report(&format!("cannot start the async runtime: {e}"));
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let mut out = String::new();
    let result = runtime.block_on(commands::run(cli, &mut out));
    // Closes the store and stops the registry's follower before anything else happens.
    drop(runtime);
    if let Err(code) = flush_stdout(&out) {
        return ExitCode::from(code);
    }
    match result {
        Ok(commands::Action::Done) => ExitCode::from(EXIT_OK),
        Ok(commands::Action::Exec(plan)) => ExitCode::from(commands::exec(plan)),
        Err(e) => {
            report(&e.to_string());
            ExitCode::from(exit_code(e.kind()))
        }
    }
}

/// Builds the error for a store path that cannot be determined.
fn no_data_dir() -> Error {
    Error::new(
        ErrorKind::Config,
        "cannot find the platform data directory for the default store; pass --store PATH|URL or set INFERLINK_STORE",
    )
}
