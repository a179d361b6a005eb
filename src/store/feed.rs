//! The change feed shared by every store: a compacted change log plus an
//! in-process broadcast of new commits, merged into one gap-free stream.

use std::collections::VecDeque;
use std::sync::Arc;

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

/// Live broadcast of committed changes.
///
/// Stores publish while still holding their write lock, so events arrive in
/// revision order.
#[derive(Debug)]
pub(crate) struct Feed {
    tx: broadcast::Sender<ChangeEvent>,
}

impl Feed {
    /// Events a slow watcher may fall behind by before it resynchronises from the log.
    const CAPACITY: usize = 1024;

    pub(crate) fn new() -> Self {
        Feed {
            tx: broadcast::channel(Self::CAPACITY).0,
        }
    }

    pub(crate) fn publish(&self, event: ChangeEvent) {
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    /// A stream of every change after `since`: first from the log, then live.
    ///
    /// The subscription is taken before the log is read, so no commit falls in
    /// between; events already covered by the log read are skipped by revision.
    /// A watcher that lags behind the broadcast reads the log again.
    pub(crate) fn watch(&self, log: Arc<dyn ChangeLog>, since: Revision) -> ChangeStream {
        struct State {
            log: Arc<dyn ChangeLog>,
            rx: broadcast::Receiver<ChangeEvent>,
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
                    Ok(event) if event.revision > s.last => {
                        s.last = event.revision;
                        return Some((Ok(event), s));
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => s.resync = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }
}
