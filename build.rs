//! Compiles `proto/portcullis/v1/decisions.proto` with a pure-Rust protobuf
//! compiler (no `protoc` needed): the gRPC service's code, and its encoded
//! descriptors for server reflection and the load generator.

use std::path::PathBuf;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["portcullis/v1/decisions.proto"], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("portcullis_descriptors.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Strict decoding: unknown or repeated fields refused (`server::grpc::codec`).
        .codec_path("crate::server::grpc::codec::CheckedCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
