//! The `portcullis` binary: see `portcullis --help`.

// glibc's allocator costs about a tenth of a decision's CPU under load
// (docs/performance.md); mimalloc's thread-local free lists do not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    portcullis::cli::main()
}
