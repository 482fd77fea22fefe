//! `portcullis schema`: prints the built-in Cedar schema policies are validated against.

use super::exit;

pub fn run() -> anyhow::Result<u8> {
    print!("{}", portcullis_core::cedar_input::SCHEMA);
    Ok(exit::OK)
}
