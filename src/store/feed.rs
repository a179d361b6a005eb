//! The change feed shared by every store: a compacted change log plus an
//! in-process broadcast of new commits, merged into one gap-free stream.
//!
//! # How a watcher stays gap-free
//!
//! The feed broadcasts [`Signal`]s. A store that committed a change it can
//! describe (its own write) publishes it as an event; a store that only knows
//! *that* something was committed up to some revision (another process wrote
//! to a shared file, or a write skipped over revisions nobody announced yet)
//! announces a resync instead, and every watcher behind that revision re-reads
//! the change log. The feed remembers the highest revision announced so far
//! and sends events only in strictly increasing, gap-free order; anything
//! else becomes a resync. A watcher therefore never skips a revision: it
//! either receives the event or re-reads a log that contains it (or the later
//! state of the same record).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::{ChangeEvent, ChangeStream, Revision};
use crate::error::Result;

/// Read access to a store's change log, used to (re)synchronise a watch.
#[async_trait]
pub trait ChangeLog: Send + Sync + 'static {
    /// The latest change of every record changed after `since`, in increasing revision order.
    async fn changes_since(&self, since: Revision) -> Result<Vec<ChangeEvent>>;
}

/// What the feed broadcasts.
#[derive(Debug, Clone)]
enum Signal {
    /// A committed change, the next one after every earlier signal.
    Event(ChangeEvent),
    /// Changes up to this revision were committed: re-read the log if behind it.
    Resync(Revision),
}

/// Live broadcast of committed changes.
///
/// Stores publish after each commit, in revision order for their own writes
/// (the memory store under its lock, SQLite while holding its connection).
#[derive(Debug)]
pub(crate) struct Feed {
    tx: broadcast::Sender<Signal>,
    /// Every commit up to this revision has been broadcast, as an event or
    /// covered by a resync sent after it committed.
    announced: Mutex<Revision>,
}

impl Feed {
    /// Signals a slow watcher may fall behind by before it resynchronises from the log.
    const CAPACITY: usize = 1024;

    pub(crate) fn new() -> Self {
        Feed {
            tx: broadcast::channel(Self::CAPACITY).0,
            announced: Mutex::new(0),
        }
    }

    /// Broadcasts a change that has just been committed.
    ///
    /// The change goes out as an event when it directly follows the last
    /// announced revision; when revisions in between were never announced
    /// (written by someone else), watchers are told to re-read the log
    /// instead; when a resync already covered it, nothing is sent.
    pub(crate) fn publish(&self, event: ChangeEvent) {
        let mut announced = self
            .announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let revision = event.revision;
        if revision <= *announced {
            return;
        }
        let signal = if revision == *announced + 1 {
            Signal::Event(event)
        } else {
            Signal::Resync(revision)
        };
        *announced = revision;
        // No receiver is fine: nobody is watching, and a new watcher reads the log first.
        let _ = self.tx.send(signal);
    }

    /// Announces that every change up to `head` is committed (found by
    /// polling shared storage): watchers behind it re-read the log.
    #[cfg_attr(
        not(any(feature = "store-sqlite", feature = "store-postgres")),
        allow(dead_code)
    )]
    pub(crate) fn announce_head(&self, head: Revision) {
        let mut announced = self
            .announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if head > *announced {
            *announced = head;
            let _ = self.tx.send(Signal::Resync(head));
        }
    }

    /// How many watch streams are open.
    #[cfg_attr(
        not(any(feature = "store-sqlite", feature = "store-postgres")),
        allow(dead_code)
    )]
    pub(crate) fn watchers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// A stream of every change after `since`: first from the log, then live.
    ///
    /// The subscription is taken before the log is read (synchronously, in
    /// this call), so no commit falls in between; events already covered by a
    /// log read are skipped by revision. A watcher that lags behind the
    /// broadcast, or receives a resync beyond what it has seen, reads the log
    /// again.
    pub(crate) fn watch(&self, log: Arc<dyn ChangeLog>, since: Revision) -> ChangeStream {
        struct State {
            log: Arc<dyn ChangeLog>,
            rx: broadcast::Receiver<Signal>,
            last: Revision,
            backlog: VecDeque<ChangeEvent>,
            resync: bool,
        }
        let state = State {
            log,
            rx: self.tx.subscribe(),
            last: since,
            backlog: VecDeque::new(),
            resync: true,
        };
        Box::pin(futures_util::stream::unfold(state, |mut s| async move {
            loop {
                if let Some(event) = s.backlog.pop_front() {
                    if event.revision > s.last {
                        s.last = event.revision;
                        return Some((Ok(event), s));
                    }
                    continue;
                }
                if s.resync {
                    match s.log.changes_since(s.last).await {
                        Ok(events) => {
                            s.resync = false;
                            s.backlog = events.into();
                            continue;
                        }
                        Err(e) => return Some((Err(e), s)),
                    }
                }
                match s.rx.recv().await {
                    Ok(Signal::Event(event)) if event.revision > s.last => {
                        s.last = event.revision;
                        return Some((Ok(event), s));
                    }
                    Ok(Signal::Event(_)) => continue,
                    Ok(Signal::Resync(head)) => s.resync = head > s.last,
                    Err(broadcast::error::RecvError::Lagged(_)) => s.resync = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }
}
