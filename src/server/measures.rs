//! Measures starting and ending while the service runs: the decision path
//! needs nothing from here (each decision judges every window at its own
//! instant); this task only says so in the log, at info, when it happens.

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::lifecycle::{Instant, MeasureState};

use crate::server::state::AppState;

/// How often the task looks at least: a reload may bring new windows.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Logs each policy that starts or stops applying, until the task is dropped.
pub async fn log_transitions(state: Arc<AppState>) {
    let mut seen: Option<(Arc<str>, Vec<MeasureState>)> = None;
    loop {
        let snapshot = state.snapshot();
        let now = Instant::now();
        let states: Vec<MeasureState> = snapshot
            .policies
            .metas()
            .map(|m| m.window().state(now))
            .collect();
        if let Some((revision, before)) = &seen {
            // Compared within one snapshot only: a reload brings its own set.
            if *revision == snapshot.revision {
                let changes = snapshot.policies.metas().zip(before.iter().zip(&states));
                for (meta, (was, is)) in changes.filter(|(_, (was, is))| was != is) {
                    let measure = meta.measure().map_or("", |m| m);
                    match is {
                        MeasureState::InForce => tracing::info!(
                            policy = %meta.id(), measure, was = was.as_str(),
                            "measure started: the policy applies from now"
                        ),
                        MeasureState::Expired | MeasureState::Scheduled => tracing::info!(
                            policy = %meta.id(), measure, now = is.as_str(),
                            "measure ended: the policy no longer applies"
                        ),
                    }
                }
            }
        }
        let wait = snapshot.policies.next_change(now).map_or(LOOK_EVERY, |at| {
            let millis = at.0.duration_since(now.0).as_millis().max(0);
            Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX)).min(LOOK_EVERY)
        });
        seen = Some((snapshot.revision.clone(), states));
        drop(snapshot);
        // A hair past the instant, so that the window has turned when it looks.
        tokio::time::sleep(wait + Duration::from_millis(1)).await;
    }
}
