//! Generates the `vrs.federation.v2` code with a vendored `protoc`: no system install needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    println!("cargo:rerun-if-changed=proto");
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("vrs_federation_v2_descriptor.bin"))
        .build_server(true)
        .build_client(true)
        .compile_with_config(
            config,
            &["proto/vrs/federation/v2/federation.proto"],
            &["proto"],
        )?;
    Ok(())
}
