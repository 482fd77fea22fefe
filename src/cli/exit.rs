//! Exit codes, distinct per kind of failure (clap itself exits 2 on bad usage).

/// Success.
pub const OK: u8 = 0;
/// An operational error: I/O, a port in use, a runtime failure.
pub const ERROR: u8 = 1;
/// Policies, designations or geo databases are invalid.
pub const INVALID: u8 = 3;
/// Policy test cases failed.
pub const TESTS_FAILED: u8 = 4;
/// `records verify`: a record or file was edited, reordered, removed or inserted.
pub const RECORDS_BROKEN: u8 = 5;
/// `records verify`: intact but for a torn final record (a crash mid-write).
pub const RECORDS_TORN: u8 = 6;
/// `fmt --check`: some file would change (1, as `cargo fmt --check` and `cedar format --check`).
pub const NOT_FORMATTED: u8 = 1;
/// `test --min-coverage`: the cases pass but cover less than asked.
pub const COVERAGE_LOW: u8 = 1;
/// `impact --fail-on`: a listed transition occurred (1, as a failed check).
pub const TRANSITION_FOUND: u8 = 1;
/// `impact --strict`: a line is not a valid request.
pub const REQUEST_REJECTED: u8 = 7;
/// `bundle verify`, `bundle pull`: unsigned, signed by a key not trusted,
/// or a file that does not match the manifest.
pub const BUNDLE_REFUSED: u8 = 8;
/// `prove --fail-on`: a listed kind of finding occurred (1, as a failed check).
pub const PROOF_FAILED: u8 = 1;
/// `prove DIR`, `check --prove`: an invariant does not hold.
pub const INVARIANT_VIOLATED: u8 = 9;
/// `prove`: the solver (cvc5) cannot be run.
pub const NO_SOLVER: u8 = 10;
/// `records verify --trust-key`/`--checkpoints`: a checkpoint not signed by
/// a trusted key, or one of the copy missing from the directory.
pub const CHECKPOINT_FAILED: u8 = 11;
/// `records check-export`: the export does not check out (altered, or not
/// signed by a trusted key).
pub const EXPORT_REFUSED: u8 = 12;
/// Stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
pub const INTERRUPTED: u8 = 130;
