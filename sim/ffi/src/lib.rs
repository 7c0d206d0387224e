//! The C ABIs of vdisim, built as `libsqlvdi.so` (a cdylib) so that a real Linux VDI client
//! runs against the emulator without changing a line:
//!
//! - [`cxx`]: the Linux C++ ABI of Microsoft's `libsqlvdi.so` (SPEC §4): the
//!   `ClientVirtualDeviceSet` and `ClientVirtualDevice` classes, exported under their
//!   Itanium-mangled names. Header: `sim/include/vdi.h` + `vdierror.h`.
//! - [`capi`]: a plain C API (`vdisim_*`, header `sim/include/vdisim.h`) for other languages.
//! - [`com`]: the Windows `vdi.h` COM-style interface (`IClientVirtualDeviceSet2`,
//!   `IClientVirtualDevice` vtables, SPEC §1.1), from a factory function (header
//!   `sim/include/vdi_com.h`), so C code written against the Windows interface runs too.
//!
//! All three sit on [`objects`]: one set object and one device object shared by every ABI,
//! which own the core [`vdisim::ClientVirtualDeviceSet`] and keep every `VDC_Command*` handed
//! to C valid until CompleteCommand (and readable after it, see [`objects`]).
//!
//! Timeouts: see [`timeout`] (the Linux GetCommand unit question of SPEC §4).
//!
//! Every entry point catches panics (a panic never unwinds into C) and checks its pointers for
//! null; every `unsafe` block states what the caller must uphold.

pub mod capi;
pub mod com;
pub mod cxx;
pub mod objects;
pub mod timeout;

use std::ffi::{c_char, c_int, CStr};
use vdisim::vdi::{VdError, VdResult};

/// The library's version, as reported by `vdisim_version()`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// Whether `VDISIM_FFI_TRACE` asked for a line on stderr per call.
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("VDISIM_FFI_TRACE").is_some_and(|v| !v.is_empty() && v != "0"))
}

/// Prints one trace line (`VDISIM_FFI_TRACE=1`).
pub(crate) fn trace(call: &str, detail: std::fmt::Arguments<'_>, result: c_int) {
    if tracing() {
        let name = if result == 0 {
            "NOERROR"
        } else {
            VdError::from_hresult(result as u32).map_or("?", |e| e.name())
        };
        eprintln!("vdisim-ffi[{}]: {call}({detail}) = {name}", std::process::id());
    }
}

/// Runs one entry point: converts the result to the Linux `int` code (NOERROR 0, VD_E_* as
/// negative ints) and turns a panic into VD_E_UNEXPECTED instead of unwinding into C.
pub(crate) fn guard(call: &'static str, f: impl FnOnce() -> VdResult<()>) -> c_int {
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => e.as_linux_int(),
        Err(_) => {
            eprintln!("vdisim-ffi: internal panic in {call}; returning VD_E_UNEXPECTED");
            VdError::Unexpected.as_linux_int()
        }
    };
    trace(call, format_args!(""), code);
    code
}

/// Reads a NUL-terminated name from C. Null or non-UTF-8 is VD_E_INVALID.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that stays valid during the call.
pub(crate) unsafe fn c_name<'a>(p: *const c_char) -> VdResult<&'a str> {
    if p.is_null() {
        return Err(VdError::Invalid);
    }
    // SAFETY: non-null, and the caller guarantees a NUL-terminated string valid for the call.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| VdError::Invalid)
}
