//! Clean-up work a dropped call leaves behind (releasing its call slot and its spend holds, deleting
//! its disposable deployments): spawned from `drop`, tracked here so a server that is shutting down
//! can wait for it instead of exiting with a reservation still open.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;
use tokio_util::task::TaskTracker;

static TRACKER: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// Spawns `cleanup` on the current runtime (none, as in a runtime's own teardown: nothing runs, and
/// what it would have released expires with its TTL).
pub fn spawn(cleanup: impl Future<Output = ()> + Send + 'static) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        TRACKER.spawn_on(cleanup, &handle);
    }
}

/// Waits until every clean-up spawned so far has finished, at most `limit`. True if they all did.
pub async fn drain(limit: Duration) -> bool {
    // Closing only makes `wait` able to return; later spawns are still tracked (and a later drain
    // waits for them too).
    TRACKER.close();
    let done = tokio::time::timeout(limit, TRACKER.wait()).await.is_ok();
    TRACKER.reopen();
    done
}
