//! The plain C API (`sim/include/vdisim.h`): for languages that can call C but not C++ or COM
//! (Go's cgo, Python's ctypes, C#'s P/Invoke, Rust through bindgen...).
//!
//! Same semantics as the VDI calls of SPEC §1.2/§1.3; return values are the Linux ints
//! (`NOERROR` 0, `VD_E_*` negative). Timeouts are milliseconds, `VDISIM_INFINITE`
//! (0xFFFFFFFF) waits for ever. Handles: a `vdisim_set*` from [`vdisim_set_new`] until
//! [`vdisim_set_free`]; a `vdisim_device*` from [`vdisim_set_open_device`] stays valid until
//! the set's next create/open-in-secondary or its free (Close only invalidates it: calls then
//! return VD_E_PROTOCOL). A `VDC_Command*` is valid until it is completed.

use crate::objects::{DeviceObject, SetObject};
use crate::{c_name, guard};
use std::ffi::{c_char, c_int};
use std::sync::Arc;
use vdisim::vdi::{VDC_Command, VdError};
use vdisim::VDConfig;

/// Opaque `vdisim_set`.
pub type VdisimSet = SetObject;
/// Opaque `vdisim_device`.
pub type VdisimDevice = DeviceObject;

/// # Safety
/// `p` is null or a live `vdisim_set*`.
unsafe fn set<'a>(p: *mut VdisimSet) -> Result<&'a SetObject, VdError> {
    // SAFETY: caller contract: null or a pointer from vdisim_set_new not yet freed.
    unsafe { p.as_ref() }.ok_or(VdError::Invalid)
}

/// # Safety
/// `p` is null or a live `vdisim_device*`.
unsafe fn device<'a>(p: *mut VdisimDevice) -> Result<&'a DeviceObject, VdError> {
    // SAFETY: caller contract: null or a device handle still valid (see module docs).
    unsafe { p.as_ref() }.ok_or(VdError::Invalid)
}

/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn optional_name<'a>(p: *const c_char) -> Result<Option<&'a str>, VdError> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: non-null NUL-terminated by contract.
        unsafe { c_name(p) }.map(Some)
    }
}

/// `vdisim_set* vdisim_set_new(void)`: a new set object (state DNE). NULL only on panic.
#[no_mangle]
pub extern "C" fn vdisim_set_new() -> *mut VdisimSet {
    std::panic::catch_unwind(|| Box::into_raw(Box::new(SetObject::new()))).unwrap_or(std::ptr::null_mut())
}

/// `void vdisim_set_free(vdisim_set*)`: closes the set if open and frees it with its devices.
///
/// # Safety
/// `p` is null or a set from [`vdisim_set_new`], freed once; no call on it or its devices runs
/// concurrently or afterwards.
#[no_mangle]
pub unsafe extern "C" fn vdisim_set_free(p: *mut VdisimSet) {
    if !p.is_null() {
        // SAFETY: from Box::into_raw in vdisim_set_new, freed once by contract.
        let object = unsafe { Box::from_raw(p) };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(object)));
    }
}

/// `int vdisim_set_create(vdisim_set*, const char* name, const VDConfig* cfg)`: Create
/// (instance from `_VIRTUAL_SERVER_NAME_`, like the deprecated Windows Create).
///
/// # Safety
/// `s` a live set; `name` NUL-terminated; `cfg` a readable VDConfig.
#[no_mangle]
pub unsafe extern "C" fn vdisim_set_create(s: *mut VdisimSet, name: *const c_char, cfg: *const VDConfig) -> c_int {
    let instance = std::env::var("_VIRTUAL_SERVER_NAME_").ok();
    guard("vdisim_set_create", || {
        // SAFETY: caller contract.
        let (set, name) = unsafe { (set(s)?, c_name(name)?) };
        if cfg.is_null() {
            return Err(VdError::Invalid);
        }
        // SAFETY: non-null readable by contract.
        let config = unsafe { std::ptr::read_unaligned(cfg) };
        set.create(instance.as_deref(), name, &config)
    })
}

/// `int vdisim_set_create_ex(vdisim_set*, const char* instance, const char* name, const VDConfig*)`:
/// CreateEx; `instance` NULL is the default instance.
///
/// # Safety
/// As [`vdisim_set_create`]; `instance` null or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn vdisim_set_create_ex(
    s: *mut VdisimSet,
    instance: *const c_char,
    name: *const c_char,
    cfg: *const VDConfig,
) -> c_int {
    guard("vdisim_set_create_ex", || {
        // SAFETY: caller contract.
        let (set, instance, name) = unsafe { (set(s)?, optional_name(instance)?, c_name(name)?) };
        if cfg.is_null() {
            return Err(VdError::Invalid);
        }
        // SAFETY: non-null readable by contract.
        let config = unsafe { std::ptr::read_unaligned(cfg) };
        set.create(instance, name, &config)
    })
}

/// `int vdisim_set_get_configuration(vdisim_set*, uint32_t timeout_ms, VDConfig* out)`.
///
/// # Safety
/// `s` a live set; `out` a writable VDConfig.
#[no_mangle]
pub unsafe extern "C" fn vdisim_set_get_configuration(s: *mut VdisimSet, timeout_ms: u32, out: *mut VDConfig) -> c_int {
    guard("vdisim_set_get_configuration", || {
        // SAFETY: caller contract.
        let set = unsafe { set(s) }?;
        if out.is_null() {
            return Err(VdError::Invalid);
        }
        let cfg = set.get_configuration(timeout_ms)?;
        // SAFETY: non-null writable by contract.
        unsafe { std::ptr::write_unaligned(out, cfg) };
        Ok(())
    })
}

/// `int vdisim_set_open_device(vdisim_set*, const char* name, vdisim_device** out)`; `*out`
/// is NULL on failure.
///
/// # Safety
/// `s` a live set; `name` NUL-terminated; `out` a writable pointer slot.
#[no_mangle]
pub unsafe extern "C" fn vdisim_set_open_device(
    s: *mut VdisimSet,
    name: *const c_char,
    out: *mut *mut VdisimDevice,
) -> c_int {
    guard("vdisim_set_open_device", || {
        if out.is_null() {
            return Err(VdError::Invalid);
        }
        // SAFETY: non-null writable by contract.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: caller contract.
        let (set, name) = unsafe { (set(s)?, c_name(name)?) };
        let device = set.open_device(name)?;
        // The set keeps its own reference, which keeps this pointer valid (module docs).
        // SAFETY: as above.
        unsafe { out.write(Arc::as_ptr(&device).cast_mut()) };
        Ok(())
    })
}

/// `int vdisim_set_signal_abort(vdisim_set*)`.
///
/// # Safety
/// `s` a live set.
#[no_mangle]
pub unsafe extern "C" fn vdisim_set_signal_abort(s: *mut VdisimSet) -> c_int {
    // SAFETY: caller contract.
    guard("vdisim_set_signal_abort", || unsafe { set(s) }?.signal_abort())
}

/// `int vdisim_set_close(vdisim_set*)`: VD_E_OPEN if devices are still open (the set is then
/// aborted and freed anyway); the object can be created again afterwards.
///
/// # Safety
/// `s` a live set.
#[no_mangle]
pub unsafe extern "C" fn vdisim_set_close(s: *mut VdisimSet) -> c_int {
    // SAFETY: caller contract.
    guard("vdisim_set_close", || unsafe { set(s) }?.close())
}

/// `int vdisim_set_open_in_secondary(vdisim_set*, const char* instance, const char* name)`.
///
/// # Safety
/// `s` a live set; `instance` null or NUL-terminated; `name` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn vdisim_set_open_in_secondary(
    s: *mut VdisimSet,
    instance: *const c_char,
    name: *const c_char,
) -> c_int {
    guard("vdisim_set_open_in_secondary", || {
        // SAFETY: caller contract.
        let (set, instance, name) = unsafe { (set(s)?, optional_name(instance)?, c_name(name)?) };
        set.open_in_secondary(instance, name)
    })
}

/// `int vdisim_set_get_buffer_handle(vdisim_set*, const uint8_t* buffer, uint32_t* handle)`.
///
/// # Safety
/// `s` a live set; `handle` writable.
#[no_mangle]
pub unsafe extern "C" fn vdisim_set_get_buffer_handle(s: *mut VdisimSet, buffer: *const u8, handle: *mut u32) -> c_int {
    guard("vdisim_set_get_buffer_handle", || {
        // SAFETY: caller contract.
        let set = unsafe { set(s) }?;
        if handle.is_null() {
            return Err(VdError::Invalid);
        }
        let h = set.get_buffer_handle(buffer)?;
        // SAFETY: non-null writable by contract.
        unsafe { handle.write(h) };
        Ok(())
    })
}

/// `int vdisim_set_map_buffer_handle(vdisim_set*, uint32_t handle, uint8_t** buffer)`.
///
/// # Safety
/// `s` a live set; `buffer` writable.
#[no_mangle]
pub unsafe extern "C" fn vdisim_set_map_buffer_handle(s: *mut VdisimSet, handle: u32, buffer: *mut *mut u8) -> c_int {
    guard("vdisim_set_map_buffer_handle", || {
        // SAFETY: caller contract.
        let set = unsafe { set(s) }?;
        if buffer.is_null() {
            return Err(VdError::Invalid);
        }
        let p = set.map_buffer_handle(handle)?;
        // SAFETY: non-null writable by contract.
        unsafe { buffer.write(p) };
        Ok(())
    })
}

/// `int vdisim_device_get_command(vdisim_device*, uint32_t timeout_ms, VDC_Command** out)`.
///
/// # Safety
/// `d` a valid device handle; `out` a writable pointer slot.
#[no_mangle]
pub unsafe extern "C" fn vdisim_device_get_command(
    d: *mut VdisimDevice,
    timeout_ms: u32,
    out: *mut *mut VDC_Command,
) -> c_int {
    guard("vdisim_device_get_command", || {
        if out.is_null() {
            return Err(VdError::Invalid);
        }
        // SAFETY: non-null writable by contract.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: caller contract.
        let cmd = unsafe { device(d) }?.get_command(timeout_ms)?;
        // SAFETY: as above.
        unsafe { out.write(cmd) };
        Ok(())
    })
}

/// `int vdisim_device_complete_command(vdisim_device*, VDC_Command* cmd, uint32_t completion_code,
/// uint32_t bytes_transferred, uint64_t position)`.
///
/// # Safety
/// `d` a valid device handle; `cmd` is only compared, never dereferenced.
#[no_mangle]
pub unsafe extern "C" fn vdisim_device_complete_command(
    d: *mut VdisimDevice,
    cmd: *mut VDC_Command,
    completion_code: u32,
    bytes: u32,
    position: u64,
) -> c_int {
    guard("vdisim_device_complete_command", || {
        // SAFETY: caller contract.
        unsafe { device(d) }?.complete_command(cmd, completion_code, u64::from(bytes), position)
    })
}

/// `const char* vdisim_error_name(int code)`: "NOERROR", "VD_E_ABORT"..., or "VD_E_?" for
/// anything else. The string is static.
#[no_mangle]
pub extern "C" fn vdisim_error_name(code: c_int) -> *const c_char {
    let name: &'static str = if code == 0 {
        "NOERROR\0"
    } else {
        match VdError::from_hresult(code as u32) {
            Some(VdError::NotOpen) => "VD_E_NOTOPEN\0",
            Some(VdError::Timeout) => "VD_E_TIMEOUT\0",
            Some(VdError::Abort) => "VD_E_ABORT\0",
            Some(VdError::Security) => "VD_E_SECURITY\0",
            Some(VdError::Invalid) => "VD_E_INVALID\0",
            Some(VdError::InstanceName) => "VD_E_INSTANCE_NAME\0",
            Some(VdError::NotSupported) => "VD_E_NOTSUPPORTED\0",
            Some(VdError::Memory) => "VD_E_MEMORY\0",
            Some(VdError::Unexpected) => "VD_E_UNEXPECTED\0",
            Some(VdError::Protocol) => "VD_E_PROTOCOL\0",
            Some(VdError::Open) => "VD_E_OPEN\0",
            Some(VdError::Close) => "VD_E_CLOSE\0",
            Some(VdError::Busy) => "VD_E_BUSY\0",
            Some(VdError::QueueFull) => "VD_E_QUEUE_FULL\0",
            Some(VdError::IoError) => "VD_E_IO_ERROR\0",
            None => "VD_E_?\0",
        }
    };
    name.as_ptr().cast()
}

/// `const char* vdisim_version(void)`: the library version (static string).
#[no_mangle]
pub extern "C" fn vdisim_version() -> *const c_char {
    crate::VERSION.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn error_names_cover_every_code() {
        for e in VdError::ALL {
            // SAFETY: vdisim_error_name returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(vdisim_error_name(e.as_linux_int())) };
            assert_eq!(name.to_str().ok(), Some(e.name()));
        }
        // SAFETY: as above.
        let ok = unsafe { CStr::from_ptr(vdisim_error_name(0)) };
        assert_eq!(ok.to_str().ok(), Some("NOERROR"));
    }

    #[test]
    fn null_handles_are_invalid_not_crashes() {
        let invalid = VdError::Invalid.as_linux_int();
        // SAFETY: null handles are part of the contract (answered with VD_E_INVALID).
        unsafe {
            assert_eq!(vdisim_set_close(std::ptr::null_mut()), invalid);
            assert_eq!(vdisim_set_signal_abort(std::ptr::null_mut()), invalid);
            let mut cmd = std::ptr::null_mut();
            assert_eq!(vdisim_device_get_command(std::ptr::null_mut(), 0, &mut cmd), invalid);
            vdisim_set_free(std::ptr::null_mut());
        }
    }

    #[test]
    fn state_table_before_create() {
        let s = vdisim_set_new();
        assert!(!s.is_null());
        let protocol = VdError::Protocol.as_linux_int();
        // SAFETY: `s` is live until vdisim_set_free below.
        unsafe {
            // §1.5: every call but Create is VD_E_PROTOCOL in DNE.
            assert_eq!(vdisim_set_close(s), protocol);
            assert_eq!(vdisim_set_signal_abort(s), protocol);
            let mut cfg = VDConfig::request(1, 0);
            assert_eq!(vdisim_set_get_configuration(s, 0, &mut cfg), protocol);
            vdisim_set_free(s);
        }
    }
}
