//! A hostile database (issue 14): rows changed behind inferlink's back in a
//! SQLite file are refused with a typed error naming the record, never
//! returned as data; a writer without the master key cannot redirect
//! credentials; stores written before integrity tags migrate.
//!
//! The PostgreSQL twins of these tests are in `tests/postgres_store.rs`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use inferlink::crypto::{self, DataKey, Keyring, MasterKey};
use inferlink::format::parse_records;
use inferlink::store::{ListFilter, PutMode, RegistryStore, SqliteOptions};
use inferlink::{
    Consumer, ErrorKind, ExtensionRecord, Registry, Selector, SqliteStore, StaticKeyProvider,
};
use rusqlite::Connection;

const TOKEN: &str = "tok-PLANTED-4711";

fn record(id: &str, url: &str) -> ExtensionRecord {
    let mut records = parse_records(&format!(
        r#"
id: {id}
product: kserve
services:
  - id: api
    resource: kserve-api
    endpoints:
      - url: "{url}"
    credentials:
      - id: token
        configuration:
          auth_bearer_token: {TOKEN}
"#
    ))
    .unwrap();
    records.pop().unwrap()
}

fn plain_record(id: &str) -> ExtensionRecord {
    let mut records = parse_records(&format!(
        "id: {id}\nproduct: mlflow\nservices:\n  - id: ui\n    endpoints:\n      - url: http://127.0.0.1:5000\n"
    ))
    .unwrap();
    records.pop().unwrap()
}

fn keyed(master: &MasterKey) -> SqliteOptions {
    SqliteOptions::default().with_key_provider(Arc::new(StaticKeyProvider::new(master.clone())))
}

fn sql(path: &std::path::Path, statement: &str) {
    Connection::open(path)
        .unwrap()
        .execute_batch(statement)
        .unwrap();
}

fn query(path: &std::path::Path, statement: &str) -> String {
    Connection::open(path)
        .unwrap()
        .query_row(statement, [], |row| row.get::<_, String>(0))
        .unwrap()
}

/// Every read path of `store` refuses record `id` with a storage error naming it.
async fn every_read_path_refuses(store: &SqliteStore, id: &str, why: &str) {
    let get = store.get(id).await.unwrap_err();
    let list = store.list(&ListFilter::all()).await.unwrap_err();
    let mut stream = store.watch(0).await.unwrap();
    let watched = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("watch answers")
        .expect("watch yields an item")
        .unwrap_err();
    let opened = Registry::open(store.clone()).await.unwrap_err();
    for (path, e) in [
        ("get", get),
        ("list", list),
        ("watch", watched),
        ("registry", opened),
    ] {
        assert_eq!(e.kind(), ErrorKind::Storage, "{path}: {e}");
        assert_eq!(e.context("record"), Some(id), "{path}: {e}");
        assert!(e.message().contains(why), "{path}: {e}");
        assert!(!e.to_string().contains(TOKEN), "{path}: {e}");
    }
}

#[tokio::test]
async fn a_redirected_endpoint_in_the_sqlite_file_is_refused_on_every_read_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let master = MasterKey::generate().unwrap();
    let store = SqliteStore::open_with(&path, keyed(&master)).unwrap();
    store
        .put(record("model", "http://127.0.0.1:8080"), PutMode::Create)
        .await
        .unwrap();
    store
        .put(plain_record("other"), PutMode::Create)
        .await
        .unwrap();
    // A database writer without the master key sends the token elsewhere.
    sql(
        &path,
        "UPDATE records SET body = replace(body, 'http://127.0.0.1:8080', 'http://127.0.0.1:9') WHERE id = 'model'",
    );
    assert!(query(&path, "SELECT body FROM records WHERE id = 'model'").contains(":9\""));
    every_read_path_refuses(&store, "model", "failed its integrity check").await;
    // A fresh process with the key refuses it too; the untouched record is fine.
    let fresh = SqliteStore::open_with(&path, keyed(&master)).unwrap();
    every_read_path_refuses(&fresh, "model", "does not match its contents").await;
    assert!(fresh.get("other").await.unwrap().is_some());
    // Overwriting the record with an authentic version repairs it.
    fresh
        .put(record("model", "http://127.0.0.1:8080"), PutMode::Overwrite)
        .await
        .unwrap();
    let registry = Registry::open(fresh).await.unwrap();
    let found = registry
        .resolve(&Selector::resource("kserve-api"), &Consumer::anywhere())
        .unwrap();
    assert_eq!(found.endpoint().url, "http://127.0.0.1:8080");
}

#[tokio::test]
async fn a_writer_without_the_master_key_cannot_redirect_credentials() {
    // The attacker's endpoint: a real loopback listener that must never be contacted.
    let attacker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    attacker.set_nonblocking(true).unwrap();
    let evil = format!("http://{}", attacker.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let master = MasterKey::generate().unwrap();
    let store = SqliteStore::open_with(&path, keyed(&master)).unwrap();
    store
        .put(record("model", "http://127.0.0.1:8080"), PutMode::Create)
        .await
        .unwrap();
    let body = query(&path, "SELECT body FROM records WHERE id = 'model'");
    // Every way to move the credential: the URL, a proxy or TLS key at any
    // level, the tag of another record, a NULL tag, a forged tag.
    let tampered = [
        ("url", body.replace("http://127.0.0.1:8080", &evil)),
        (
            "proxy",
            body.replacen(
                "\"services\"",
                &format!("\"configuration\":{{\"proxy_url\":\"{evil}\"}},\"services\""),
                1,
            ),
        ),
        (
            "tls",
            body.replacen(
                "\"services\"",
                "\"configuration\":{\"tls_insecure_skip_verify\":\"true\"},\"services\"",
                1,
            ),
        ),
    ];
    for (what, new_body) in tampered {
        assert_ne!(new_body, body, "{what}");
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE records SET body = ?1 WHERE id = 'model'",
            [&new_body],
        )
        .unwrap();
        let e = Registry::open(store.clone()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{what}: {e}");
        assert_eq!(e.context("record"), Some("model"), "{what}: {e}");
        assert!(e.message().contains("integrity check"), "{what}: {e}");
        conn.execute("UPDATE records SET body = ?1 WHERE id = 'model'", [&body])
            .unwrap();
    }
    for (what, tag) in [
        ("no tag", "NULL"),
        ("forged tag", "'inferlink:mac:v1:i-0000000000000000:AAAA'"),
    ] {
        let saved = query(&path, "SELECT mac FROM records WHERE id = 'model'");
        sql(
            &path,
            &format!(
                "UPDATE records SET mac = {tag}, body = replace(body, 'http://127.0.0.1:8080', '{evil}') WHERE id = 'model'"
            ),
        );
        let e = store.get("model").await.unwrap_err();
        assert_eq!(e.context("record"), Some("model"), "{what}: {e}");
        assert!(e.message().contains("integrity check"), "{what}: {e}");
        sql(
            &path,
            &format!(
                "UPDATE records SET mac = '{saved}', body = replace(body, '{evil}', 'http://127.0.0.1:8080') WHERE id = 'model'"
            ),
        );
    }
    // Authentic again: it resolves, to the original endpoint.
    let registry = Registry::open(store).await.unwrap();
    let found = registry
        .resolve(&Selector::resource("kserve-api"), &Consumer::anywhere())
        .unwrap();
    assert_eq!(found.endpoint().url, "http://127.0.0.1:8080");
    assert!(
        attacker.accept().is_err(),
        "nothing ever connected to the attacker's endpoint"
    );
}

#[tokio::test]
async fn an_invalid_row_is_refused_even_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let store = SqliteStore::open(&path).unwrap();
    store
        .put(plain_record("good"), PutMode::Create)
        .await
        .unwrap();
    // A row whose id (and body id) would escape an export directory, and a
    // row with a scheme no connector speaks: never valid through `register`.
    let bad_id =
        r#"{"id":"../../x","services":[{"id":"ui","endpoints":[{"url":"http://127.0.0.1:1"}]}]}"#;
    sql(
        &path,
        &format!(
            "INSERT INTO records (id, revision, body) VALUES ('../../x', 2, '{bad_id}');
             INSERT INTO changes (revision, record_id, deleted) VALUES (2, '../../x', 0);"
        ),
    );
    every_read_path_refuses(&store, "../../x", "fails validation at id").await;
    sql(
        &path,
        "DELETE FROM records WHERE id = '../../x'; DELETE FROM changes WHERE record_id = '../../x';
         UPDATE records SET body = replace(body, 'http://', 'gopher://') WHERE id = 'good'",
    );
    every_read_path_refuses(&store, "good", "scheme \"gopher\" is not allowed").await;
}

#[tokio::test]
async fn a_store_without_a_key_cannot_write_to_a_keyed_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let master = MasterKey::generate().unwrap();
    let keyed_store = SqliteStore::open_with(&path, keyed(&master)).unwrap();
    keyed_store
        .put(plain_record("a"), PutMode::Create)
        .await
        .unwrap();
    let keyless = SqliteStore::open(&path).unwrap();
    let e = keyless
        .put(plain_record("b"), PutMode::Create)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(
        e.message().contains("protected by an encryption key"),
        "{e}"
    );
    assert!(keyed_store.get("b").await.unwrap().is_none());
    // Reading records without credential values still works without the key.
    assert!(keyless.get("a").await.unwrap().is_some());
}

#[tokio::test]
async fn rotating_the_data_key_re_tags_every_record_and_never_launders_a_tampered_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let master = MasterKey::generate().unwrap();
    let store = SqliteStore::open_with(&path, keyed(&master)).unwrap();
    store
        .put(record("model", "http://127.0.0.1:8080"), PutMode::Create)
        .await
        .unwrap();
    store
        .put(plain_record("other"), PutMode::Create)
        .await
        .unwrap();
    let before = query(&path, "SELECT mac FROM records WHERE id = 'other'");
    let rotation = store.rotate_data_key().await.unwrap();
    assert!(rotation.new_key.starts_with(crypto::INTEGRITY_KEY_PREFIX));
    let after = query(&path, "SELECT mac FROM records WHERE id = 'other'");
    assert_ne!(before, after, "tags move to the new data key");
    assert!(after.contains(&rotation.new_key), "{after}");
    let fresh = SqliteStore::open_with(&path, keyed(&master)).unwrap();
    let stored = fresh.get("model").await.unwrap().unwrap();
    let creds = &stored.record.services[0].credentials[0].configuration;
    assert_eq!(creds["auth_bearer_token"].expose(), TOKEN);
    // A tampered record stops the rotation (naming it) and nothing changes.
    sql(
        &path,
        "UPDATE records SET body = replace(body, '127.0.0.1:5000', '127.0.0.1:9') WHERE id = 'other'",
    );
    let snapshot = query(
        &path,
        "SELECT group_concat(id || body || mac, '|') FROM (SELECT * FROM records ORDER BY id)",
    );
    let e = fresh.rotate_data_key().await.unwrap_err();
    assert_eq!(e.context("record"), Some("other"), "{e}");
    assert!(e.message().contains("integrity check"), "{e}");
    assert_eq!(
        query(
            &path,
            "SELECT group_concat(id || body || mac, '|') FROM (SELECT * FROM records ORDER BY id)"
        ),
        snapshot
    );
}

/// Writes a schema-2 file exactly as the release before integrity tags did:
/// a data key with a 16-hex-digit id wrapped by `master`, bodies sealed under
/// it, no `mac` column.
fn schema_2_file(path: &std::path::Path, master: &MasterKey, records: &[ExtensionRecord]) {
    let key_id = "0123456789abcdef";
    let key_bytes = [42u8; 32];
    let wrapped = master.wrap(&key_bytes, key_id).unwrap();
    let keys = Keyring::new(DataKey::from_bytes(key_id, &key_bytes).unwrap());
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE records (id TEXT PRIMARY KEY, revision INTEGER NOT NULL, body TEXT NOT NULL);
         CREATE TABLE changes (revision INTEGER PRIMARY KEY, record_id TEXT NOT NULL, deleted INTEGER NOT NULL);
         CREATE INDEX changes_record_id ON changes (record_id);
         CREATE TABLE data_keys (id TEXT PRIMARY KEY, kek_id TEXT NOT NULL, wrapped BLOB NOT NULL,
             created INTEGER NOT NULL, active INTEGER NOT NULL DEFAULT 0);
         CREATE UNIQUE INDEX data_keys_one_active ON data_keys (active) WHERE active = 1;
         CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         PRAGMA user_version = 2;",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO data_keys (id, kek_id, wrapped, created, active) VALUES (?1, ?2, ?3, 1, 1)",
        rusqlite::params![key_id, wrapped.kek_id, wrapped.bytes],
    )
    .unwrap();
    for (i, record) in records.iter().enumerate() {
        let body = crypto::seal_record_body(record, Some(&keys)).unwrap();
        let revision = i as i64 + 1;
        conn.execute(
            "INSERT INTO records (id, revision, body) VALUES (?1, ?2, ?3)",
            rusqlite::params![record.id, revision, body],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO changes (revision, record_id, deleted) VALUES (?1, ?2, 0)",
            rusqlite::params![revision, record.id],
        )
        .unwrap();
    }
}

#[tokio::test]
async fn a_store_written_before_integrity_tags_migrates_on_the_first_keyed_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let master = MasterKey::generate().unwrap();
    schema_2_file(
        &path,
        &master,
        &[
            record("model", "http://127.0.0.1:8080"),
            plain_record("other"),
        ],
    );
    // Without the key: readable where no credential value is involved, but not writable.
    let keyless = SqliteStore::open(&path).unwrap();
    assert!(keyless.get("other").await.unwrap().is_some());
    assert_eq!(
        keyless
            .put(plain_record("new"), PutMode::Create)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Config
    );
    drop(keyless);
    // With the key: the first operation migrates.
    let store = SqliteStore::open_with(&path, keyed(&master)).unwrap();
    let listing = store.list(&ListFilter::all()).await.unwrap();
    assert_eq!(listing.records.len(), 2);
    assert_eq!(listing.records[0].revision, 1, "revisions do not change");
    let model = &listing.records[0].record;
    assert_eq!(
        model.services[0].credentials[0].configuration["auth_bearer_token"].expose(),
        TOKEN
    );
    let keys = store.data_keys().await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].id.starts_with(crypto::INTEGRITY_KEY_PREFIX),
        "{keys:?}"
    );
    assert_eq!(
        query(
            &path,
            "SELECT count(*) || '' FROM records WHERE mac IS NULL"
        ),
        "0"
    );
    assert_eq!(
        query(&path, "SELECT user_version || '' FROM pragma_user_version").as_str(),
        "3"
    );
    // From now on the store requires tags: a row stripped of its tag is refused.
    sql(
        &path,
        "UPDATE records SET mac = NULL, body = replace(body, '8080', '9') WHERE id = 'model'",
    );
    let fresh = SqliteStore::open_with(&path, keyed(&master)).unwrap();
    every_read_path_refuses(&fresh, "model", "has no integrity tag").await;
}
