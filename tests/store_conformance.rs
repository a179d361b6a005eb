//! Every shipped store passes the conformance suite of `inferlink-testkit`.

use inferlink::{ErrorKind, ListFilter, MemoryStore, PutMode, RegistryStore};
use inferlink_testkit::store::{
    check_concurrent_compare_and_set_across, check_reopen_durability, check_watch_burst_across,
    run_store_conformance,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    run_store_conformance(&MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms_when_shared_by_two_runs() {
    let store = MemoryStore::new();
    run_store_conformance(&store).await;
    run_store_conformance(&store).await;
}

#[cfg(feature = "store-sqlite")]
mod sqlite {
    use super::*;
    use inferlink::SqliteStore;
    use inferlink::store::SqliteOptions;
    use inferlink_testkit::keys::{keyed_sqlite_options, open_keyed_sqlite};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_keyed_sqlite(dir.path().join("registry.db")).unwrap();
        run_store_conformance(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_store_conforms_in_memory() {
        run_store_conformance(&SqliteStore::open_in_memory().unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        check_reopen_durability(|| std::future::ready(open_keyed_sqlite(&path))).await;
        // Again on the same file, now with history and normal sync.
        check_reopen_durability(|| {
            std::future::ready(SqliteStore::open_with(
                &path,
                SqliteOptions {
                    synchronous_full: false,
                    ..keyed_sqlite_options()
                },
            ))
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_instances_on_one_file_see_each_others_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let one = open_keyed_sqlite(&path).unwrap();
        let two = open_keyed_sqlite(&path).unwrap();

        let record = |id: &str, description: &str| {
            let mut r = inferlink::format::parse_records(&format!(
                "id: {id}\nproduct: mlflow\nservices:\n  - id: api\n    resource: mlflow-tracking\n    endpoints:\n      - url: http://mlflow:5000\n    credentials:\n      - id: c\n        configuration:\n          TOKEN: t-{id}\n"
            ))
            .unwrap()
            .remove(0);
            r.description = description.into();
            r
        };

        let r1 = one
            .put(record("a", "by one"), PutMode::Create)
            .await
            .unwrap();
        let seen = two.get("a").await.unwrap().unwrap();
        assert_eq!(seen.revision, r1);
        assert_eq!(seen.record.description, "by one");
        assert_eq!(
            seen.record.services[0].credentials[0].configuration["TOKEN"].expose(),
            "t-a"
        );

        // Revisions come from the shared file, so they keep increasing across instances.
        let r2 = two
            .put(record("b", "by two"), PutMode::Create)
            .await
            .unwrap();
        assert!(r2 > r1);
        let listing = one.list(&ListFilter::all()).await.unwrap();
        let ids: Vec<_> = listing
            .records
            .iter()
            .map(|r| r.record.id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(listing.revision, r2);

        // Compare-and-set holds across instances.
        let r3 = two
            .put(record("a", "edited by two"), PutMode::Update(r1))
            .await
            .unwrap();
        let e = one
            .put(record("a", "stale edit by one"), PutMode::Update(r1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert_eq!(one.get("a").await.unwrap().unwrap().revision, r3);
        let e = one
            .put(record("b", "x"), PutMode::Create)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");

        // Deletes too.
        let e = two.delete("a", Some(r1)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        one.delete("a", Some(r3)).await.unwrap();
        assert!(two.get("a").await.unwrap().is_none());
        let listing = two.list(&ListFilter::all()).await.unwrap();
        assert_eq!(listing.records.len(), 1);
        assert!(listing.revision > r3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn compare_and_set_holds_across_eight_instances_on_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let stores: Vec<SqliteStore> = (0..8).map(|_| open_keyed_sqlite(&path).unwrap()).collect();
        let handles: Vec<&dyn RegistryStore> =
            stores.iter().map(|s| s as &dyn RegistryStore).collect();
        let report = check_concurrent_compare_and_set_across(&handles).await;
        eprintln!("sqlite, separate instances: compare-and-set: {report}");
        assert_eq!(report.handles, 8);
        assert_eq!(report.updates, 1600);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_watch_sees_a_burst_written_through_other_instances() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let watcher = SqliteStore::open_with(
            &path,
            SqliteOptions {
                poll_interval: std::time::Duration::from_millis(20),
                ..keyed_sqlite_options()
            },
        )
        .unwrap();
        let others = [
            open_keyed_sqlite(&path).unwrap(),
            open_keyed_sqlite(&path).unwrap(),
        ];
        // Only other instances write; then the watcher's own instance joins in.
        check_watch_burst_across(&watcher, &[&others[0], &others[1]]).await;
        check_watch_burst_across(&watcher, &[&others[0], &watcher, &others[1]]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_on_two_instances_lose_no_update() {
        use inferlink::RegistryStoreExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let one = open_keyed_sqlite(&path).unwrap();
        let two = open_keyed_sqlite(&path).unwrap();
        let mut r = inferlink::format::parse_records("id: n\nconfiguration:\n  N: 0\n")
            .unwrap()
            .remove(0);
        r.configuration.insert("N".into(), "0".into());
        one.put(r, PutMode::Create).await.unwrap();
        let bump = |store: SqliteStore| async move {
            for _ in 0..20 {
                store
                    .update_with("n", 1000, |rec| {
                        let n: u32 = rec.configuration["N"].parse().unwrap();
                        rec.configuration.insert("N".into(), (n + 1).to_string());
                        Ok(())
                    })
                    .await
                    .unwrap();
            }
        };
        let a = tokio::spawn(bump(one.clone()));
        let b = tokio::spawn(bump(two.clone()));
        a.await.unwrap();
        b.await.unwrap();
        let n = one.get("n").await.unwrap().unwrap();
        assert_eq!(n.record.configuration["N"], "40");
    }
}
