//! `decide`: one request in, one decision out, on one snapshot.
//!
//! Synchronous and free of I/O: it reads only the snapshot it is given.

use crate::cedar_input;
use crate::decision::{Decision, Verdict, resolve};
use crate::enrich::enrich;
use crate::request::DecideRequest;
use crate::snapshot::Snapshot;

/// Decides one request on `snapshot`.
pub fn decide(snapshot: &Snapshot, req: &DecideRequest) -> Decision {
    let facts = enrich(
        req,
        &snapshot.geo,
        &snapshot.designations,
        snapshot.sources.settings,
    );
    let verdict = if let Some(first) = facts.errors.first() {
        Verdict::fail_closed(first.clone())
    } else {
        match cedar_input::build(&snapshot.names, req, &facts) {
            Ok((request, entities)) => {
                let response = snapshot.authorizer.is_authorized(
                    &request,
                    &snapshot.policies.evaluation,
                    &entities,
                );
                resolve(
                    &snapshot.policies.meta,
                    &response,
                    &req.satisfied_conditions,
                )
            }
            Err(e) => Verdict::fail_closed(e.to_string()),
        }
    };
    Decision {
        request_id: req.request_id.clone(),
        decision: verdict.outcome,
        decision_id: ulid::Ulid::generate().to_string(),
        policy_revision: snapshot.revision.clone(),
        reasons: verdict.reasons,
        conditions: verdict.conditions,
        obligations: verdict.obligations,
        facts,
        errors: verdict.errors,
    }
}
