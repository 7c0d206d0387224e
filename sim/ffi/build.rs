//! Gives the cdylib the SONAME `libsqlvdi.so`, so a client linked against it records the same
//! DT_NEEDED entry as one linked against /opt/mssql/lib/libsqlvdi.so, and the loader finds
//! either through LD_LIBRARY_PATH.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsqlvdi.so");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
