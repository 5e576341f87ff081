//! Generates Rust bindings for the system's UCX (found by pkg-config), so that sites can link
//! their own tuned UCX build: point PKG_CONFIG_PATH at it.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ucx/wrapper.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let ucx = pkg_config::Config::new().atleast_version("1.11").probe("ucx").unwrap_or_else(|e| {
        panic!("UCX (>= 1.11) not found by pkg-config: {e}\nInstall libucx-dev or set PKG_CONFIG_PATH to your UCX build's lib/pkgconfig.")
    });
    // ucx.pc names only -lucp on some builds; ucs is needed for ucs_status_string.
    println!("cargo:rustc-link-lib=ucs");

    let mut builder = bindgen::Builder::default()
        .header("src/ucx/wrapper.h")
        .allowlist_function("ucp_.*")
        .allowlist_function("ucs_status_string")
        .allowlist_type("ucp_.*")
        .allowlist_type("ucs_status_t")
        .allowlist_var("UCP_.*")
        .allowlist_var("UCS_.*")
        .prepend_enum_name(false)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false);
    for dir in &ucx.include_paths {
        builder = builder.clang_arg(format!("-I{}", dir.display()));
    }
    let bindings = builder.generate().expect("bindgen failed on the UCX headers");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("ucx_bindings.rs");
    bindings.write_to_file(out).expect("cannot write UCX bindings");
}
