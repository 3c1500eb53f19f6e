//! Compiles every proto under `<workspace>/proto` into OUT_DIR, with a file
//! descriptor set for server reflection.
use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // tonic-prost-build finds protoc through PROTOC; use the vendored one so no
    // system protoc is needed.
    set_env("PROTOC", protoc.as_os_str());
    let include = protoc_bin_vendored::include_path()?;

    let mut protos = Vec::new();
    collect(&root, &mut protos)?;
    protos.sort();

    let out = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("crm_descriptor.bin"))
        .compile_protos(&protos, &[root.clone(), include])?;

    println!("cargo:rerun-if-changed={}", root.display());
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    Ok(())
}

fn collect(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn set_env(key: &str, value: &std::ffi::OsStr) {
    // Edition 2024 marks set_var unsafe because other threads may read the
    // environment; a build script has no other threads.
    unsafe { env::set_var(key, value) };
}
