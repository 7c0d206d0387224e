//! The Linux C++ ABI of `libsqlvdi.so` (SPEC §4), exported under Itanium-mangled names.
//!
//! The header is `sim/include/vdi.h` (declarations identical to Microsoft's Linux `vdi.h`).
//! Names were checked by compiling a C++ file against that header with g++ and reading
//! `nm` of the object (the `cxx_header` test does it again on every run):
//!
//! | C++ | symbol |
//! |---|---|
//! | `ClientVirtualDeviceSet::ClientVirtualDeviceSet()` | `_ZN22ClientVirtualDeviceSetC1Ev`, `C2Ev` |
//! | `ClientVirtualDeviceSet::~ClientVirtualDeviceSet()` | `_ZN22ClientVirtualDeviceSetD1Ev`, `D2Ev` |
//! | `Create(char*, VDConfig*)` | `_ZN22ClientVirtualDeviceSet6CreateEPcP8VDConfig` |
//! | `GetConfiguration(long, VDConfig*)` | `_ZN22ClientVirtualDeviceSet16GetConfigurationElP8VDConfig` |
//! | `OpenDevice(char*, ClientVirtualDevice**)` | `_ZN22ClientVirtualDeviceSet10OpenDeviceEPcPP19ClientVirtualDevice` |
//! | `Close()` | `_ZN22ClientVirtualDeviceSet5CloseEv` |
//! | `SignalAbort()` | `_ZN22ClientVirtualDeviceSet11SignalAbortEv` |
//! | `OpenInSecondary(char*)` | `_ZN22ClientVirtualDeviceSet15OpenInSecondaryEPc` |
//! | `GetBufferHandle(unsigned char*, unsigned int*)` | `_ZN22ClientVirtualDeviceSet15GetBufferHandleEPhPj` |
//! | `MapBufferHandle(int, unsigned char**)` | `_ZN22ClientVirtualDeviceSet15MapBufferHandleEiPPh` |
//! | `RegisterDeviceClosed()` | `_ZN22ClientVirtualDeviceSet20RegisterDeviceClosedEv` |
//! | `ClientVirtualDevice::GetCommand(long, VDC_Command**)` | `_ZN19ClientVirtualDevice10GetCommandElPP11VDC_Command` |
//! | `CompleteCommand(VDC_Command*, int, unsigned long, long)` | `_ZN19ClientVirtualDevice15CompleteCommandEP11VDC_Commandiml` |
//! | `ClientVirtualDevice()` / `~ClientVirtualDevice()` | `_ZN19ClientVirtualDeviceC1Ev`, `C2Ev`, `D1Ev`, `D2Ev` |
//!
//! Member functions take `this` as a hidden first argument, so each is an `extern "C"` function
//! with `this` first. Constructors and destructors return nothing (x86-64 Itanium ABI).
//!
//! Objects: the client allocates the set (`new ClientVirtualDeviceSet()`, 8 bytes: one
//! pimpl pointer, here a `Box<SetObject>`). Device objects come from OpenDevice; they are
//! 8 bytes from `malloc` (so a client's `delete vd` — our destructor, then `operator delete`,
//! which is `free` in libstdc++ — is fine) holding an `Arc<DeviceObject>`. Close invalidates
//! devices (later calls return VD_E_PROTOCOL) but does not free the 8 bytes, because the client
//! may still `delete` them; a client that never deletes its devices leaks a few dozen bytes per
//! device per operation.

use crate::objects::{DeviceObject, SetObject};
use crate::timeout::{command_unit, config_unit, to_millis};
use crate::{c_name, guard, trace};
use std::ffi::{c_char, c_int, c_uint, c_ulong};
use std::sync::Arc;
use vdisim::vdi::{VDC_Command, VdError, VdResult};
use vdisim::VDConfig;

/// The C++ `ClientVirtualDeviceSet` object: one pointer (`CVDS* cvds`).
#[repr(C)]
pub struct CxxSet {
    cvds: *mut SetObject,
}

/// The C++ `ClientVirtualDevice` object: one pointer (`CVD* cvd`).
#[repr(C)]
pub struct CxxDevice {
    cvd: *const DeviceObject,
}

const _: () = assert!(std::mem::size_of::<CxxSet>() == std::mem::size_of::<*const u8>());
const _: () = assert!(std::mem::size_of::<CxxDevice>() == std::mem::size_of::<*const u8>());

/// `time_t` is 64-bit on x86-64 Linux but 32-bit on some targets; widen portably.
#[allow(clippy::useless_conversion)]
fn widen_time(t: libc::time_t) -> i64 {
    i64::from(t)
}

/// `unsigned long` is 64-bit on LP64 Linux, 32-bit elsewhere; widen portably.
#[allow(clippy::useless_conversion)]
fn widen_ulong(v: c_ulong) -> u64 {
    u64::from(v)
}

/// # Safety
/// `this` is null or points to a `ClientVirtualDeviceSet` object (constructed or not).
unsafe fn set_of<'a>(this: *mut CxxSet) -> VdResult<&'a SetObject> {
    if this.is_null() {
        return Err(VdError::Invalid);
    }
    // SAFETY: the caller passes a pointer to the 8-byte object.
    let p = unsafe { (*this).cvds };
    if p.is_null() {
        return Err(VdError::Protocol);
    }
    // SAFETY: non-null `cvds` was written by our constructor (Box::into_raw) and is freed
    // only by our destructor, after which the C++ object no longer exists.
    Ok(unsafe { &*p })
}

/// # Safety
/// `this` is null or points to a `ClientVirtualDevice` object from OpenDevice or our constructor.
unsafe fn device_of<'a>(this: *mut CxxDevice) -> VdResult<&'a DeviceObject> {
    if this.is_null() {
        return Err(VdError::Invalid);
    }
    // SAFETY: the caller passes a pointer to the 8-byte object.
    let p = unsafe { (*this).cvd };
    if p.is_null() {
        return Err(VdError::Protocol);
    }
    // SAFETY: non-null `cvd` is an `Arc::into_raw` the object owns until our destructor.
    Ok(unsafe { &*p })
}

/// # Safety
/// `this` points to the object's storage (8 writable bytes).
unsafe fn construct_set(this: *mut CxxSet) {
    if this.is_null() {
        return;
    }
    let object = std::panic::catch_unwind(|| Box::into_raw(Box::new(SetObject::new()))).unwrap_or(std::ptr::null_mut());
    // SAFETY: the caller (the C++ `new` expression) hands us the object's storage.
    unsafe { (*this).cvds = object };
    trace("ClientVirtualDeviceSet::ClientVirtualDeviceSet", format_args!(""), 0);
}

/// # Safety
/// `this` points to a set object built by [`construct_set`].
unsafe fn destroy_set(this: *mut CxxSet) {
    if this.is_null() {
        return;
    }
    // SAFETY: the caller passes the object; we take the pimpl out and null it.
    let p = unsafe { std::mem::replace(&mut (*this).cvds, std::ptr::null_mut()) };
    if !p.is_null() {
        // SAFETY: `p` came from Box::into_raw in the constructor and is dropped once.
        let object = unsafe { Box::from_raw(p) };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(object)));
    }
    trace("ClientVirtualDeviceSet::~ClientVirtualDeviceSet", format_args!(""), 0);
}

/// `ClientVirtualDeviceSet::ClientVirtualDeviceSet()` (complete-object constructor).
///
/// # Safety
/// `this` points to 8 writable bytes (the C++ object's storage).
#[export_name = "_ZN22ClientVirtualDeviceSetC1Ev"]
pub unsafe extern "C" fn client_virtual_device_set_ctor_c1(this: *mut CxxSet) {
    // SAFETY: forwarded caller contract.
    unsafe { construct_set(this) }
}

/// `ClientVirtualDeviceSet::ClientVirtualDeviceSet()` (base-object constructor).
///
/// # Safety
/// As for the C1 constructor.
#[export_name = "_ZN22ClientVirtualDeviceSetC2Ev"]
pub unsafe extern "C" fn client_virtual_device_set_ctor_c2(this: *mut CxxSet) {
    // SAFETY: forwarded caller contract.
    unsafe { construct_set(this) }
}

/// `ClientVirtualDeviceSet::~ClientVirtualDeviceSet()`: closes the set if still open.
///
/// # Safety
/// `this` points to a constructed set object, destroyed once.
#[export_name = "_ZN22ClientVirtualDeviceSetD1Ev"]
pub unsafe extern "C" fn client_virtual_device_set_dtor_d1(this: *mut CxxSet) {
    // SAFETY: forwarded caller contract.
    unsafe { destroy_set(this) }
}

/// `ClientVirtualDeviceSet::~ClientVirtualDeviceSet()` (base-object destructor).
///
/// # Safety
/// As for the D1 destructor.
#[export_name = "_ZN22ClientVirtualDeviceSetD2Ev"]
pub unsafe extern "C" fn client_virtual_device_set_dtor_d2(this: *mut CxxSet) {
    // SAFETY: forwarded caller contract.
    unsafe { destroy_set(this) }
}

/// `int ClientVirtualDeviceSet::Create(char* name, VDConfig* cfg)` (SPEC §1.2, §4). The
/// instance comes from `_VIRTUAL_SERVER_NAME_` when set, as for the deprecated Windows Create.
///
/// # Safety
/// `this` is a constructed set; `name` a NUL-terminated string; `cfg` a readable VDConfig.
#[export_name = "_ZN22ClientVirtualDeviceSet6CreateEPcP8VDConfig"]
pub unsafe extern "C" fn client_virtual_device_set_create(
    this: *mut CxxSet,
    name: *mut c_char,
    cfg: *mut VDConfig,
) -> c_int {
    guard("ClientVirtualDeviceSet::Create", || {
        // SAFETY: caller contract.
        let set = unsafe { set_of(this) }?;
        // SAFETY: caller contract.
        let name = unsafe { c_name(name) }?;
        if cfg.is_null() {
            return Err(VdError::Invalid);
        }
        // SAFETY: non-null and, by contract, a readable VDConfig.
        let config = unsafe { std::ptr::read_unaligned(cfg) };
        let instance = std::env::var("_VIRTUAL_SERVER_NAME_").ok();
        set.create(instance.as_deref(), name, &config)
    })
}

/// `int ClientVirtualDeviceSet::GetConfiguration(time_t timeout, VDConfig* cfg)`: timeout in
/// milliseconds unless `VDISIM_CONFIG_TIMEOUT_UNIT=s`; negative or INFINITE waits for ever.
///
/// # Safety
/// `this` is a constructed set; `cfg` a writable VDConfig.
#[export_name = "_ZN22ClientVirtualDeviceSet16GetConfigurationElP8VDConfig"]
pub unsafe extern "C" fn client_virtual_device_set_get_configuration(
    this: *mut CxxSet,
    timeout: libc::time_t,
    cfg: *mut VDConfig,
) -> c_int {
    guard("ClientVirtualDeviceSet::GetConfiguration", || {
        // SAFETY: caller contract.
        let set = unsafe { set_of(this) }?;
        if cfg.is_null() {
            return Err(VdError::Invalid);
        }
        let answer = set.get_configuration(to_millis(widen_time(timeout), config_unit()))?;
        // SAFETY: non-null and, by contract, a writable VDConfig.
        unsafe { std::ptr::write_unaligned(cfg, answer) };
        Ok(())
    })
}

/// `int ClientVirtualDeviceSet::OpenDevice(char* name, ClientVirtualDevice** ppVirtualDevice)`.
/// On failure `*ppVirtualDevice` is NULL (SPEC §1.2).
///
/// # Safety
/// `this` is a constructed set; `name` a NUL-terminated string; `pp` a writable pointer slot.
#[export_name = "_ZN22ClientVirtualDeviceSet10OpenDeviceEPcPP19ClientVirtualDevice"]
pub unsafe extern "C" fn client_virtual_device_set_open_device(
    this: *mut CxxSet,
    name: *mut c_char,
    pp: *mut *mut CxxDevice,
) -> c_int {
    guard("ClientVirtualDeviceSet::OpenDevice", || {
        if pp.is_null() {
            return Err(VdError::Invalid);
        }
        // SAFETY: non-null writable slot by contract.
        unsafe { pp.write(std::ptr::null_mut()) };
        // SAFETY: caller contract.
        let set = unsafe { set_of(this) }?;
        // SAFETY: caller contract.
        let name = unsafe { c_name(name) }?;
        let device = set.open_device(name)?;
        // SAFETY: plain allocation of the 8-byte C++ object; malloc so that `delete` (free) works.
        let object = unsafe { libc::malloc(std::mem::size_of::<CxxDevice>()) }.cast::<CxxDevice>();
        if object.is_null() {
            return Err(VdError::Memory);
        }
        // SAFETY: `object` is a fresh allocation of the right size and alignment (malloc
        // aligns for any fundamental type); `pp` is writable by contract.
        unsafe {
            object.write(CxxDevice {
                cvd: Arc::into_raw(device),
            });
            pp.write(object);
        }
        Ok(())
    })
}

/// `int ClientVirtualDeviceSet::Close()` (SPEC §1.2): invalidates every device object.
///
/// # Safety
/// `this` is a constructed set.
#[export_name = "_ZN22ClientVirtualDeviceSet5CloseEv"]
pub unsafe extern "C" fn client_virtual_device_set_close(this: *mut CxxSet) -> c_int {
    guard("ClientVirtualDeviceSet::Close", || {
        // SAFETY: caller contract.
        unsafe { set_of(this) }?.close()
    })
}

/// `int ClientVirtualDeviceSet::SignalAbort()` (SPEC §1.2, §3.6).
///
/// # Safety
/// `this` is a constructed set.
#[export_name = "_ZN22ClientVirtualDeviceSet11SignalAbortEv"]
pub unsafe extern "C" fn client_virtual_device_set_signal_abort(this: *mut CxxSet) -> c_int {
    guard("ClientVirtualDeviceSet::SignalAbort", || {
        // SAFETY: caller contract.
        unsafe { set_of(this) }?.signal_abort()
    })
}

/// `int ClientVirtualDeviceSet::OpenInSecondary(char* setName)` (SPEC §1.2).
///
/// # Safety
/// `this` is a constructed set; `name` a NUL-terminated string.
#[export_name = "_ZN22ClientVirtualDeviceSet15OpenInSecondaryEPc"]
pub unsafe extern "C" fn client_virtual_device_set_open_in_secondary(this: *mut CxxSet, name: *mut c_char) -> c_int {
    guard("ClientVirtualDeviceSet::OpenInSecondary", || {
        // SAFETY: caller contract.
        let set = unsafe { set_of(this) }?;
        // SAFETY: caller contract.
        let name = unsafe { c_name(name) }?;
        set.open_in_secondary(None, name)
    })
}

/// `int ClientVirtualDeviceSet::GetBufferHandle(uint8_t* pBuffer, unsigned int* pBufferHandle)`.
///
/// # Safety
/// `this` is a constructed set; `handle` a writable unsigned int.
#[export_name = "_ZN22ClientVirtualDeviceSet15GetBufferHandleEPhPj"]
pub unsafe extern "C" fn client_virtual_device_set_get_buffer_handle(
    this: *mut CxxSet,
    buffer: *mut u8,
    handle: *mut c_uint,
) -> c_int {
    guard("ClientVirtualDeviceSet::GetBufferHandle", || {
        // SAFETY: caller contract.
        let set = unsafe { set_of(this) }?;
        if handle.is_null() {
            return Err(VdError::Invalid);
        }
        let h = set.get_buffer_handle(buffer)?;
        // SAFETY: non-null writable by contract.
        unsafe { handle.write(h) };
        Ok(())
    })
}

/// `int ClientVirtualDeviceSet::MapBufferHandle(int dwBuffer, uint8_t** ppBuffer)`.
///
/// # Safety
/// `this` is a constructed set; `pp` a writable pointer slot.
#[export_name = "_ZN22ClientVirtualDeviceSet15MapBufferHandleEiPPh"]
pub unsafe extern "C" fn client_virtual_device_set_map_buffer_handle(
    this: *mut CxxSet,
    handle: c_int,
    pp: *mut *mut u8,
) -> c_int {
    guard("ClientVirtualDeviceSet::MapBufferHandle", || {
        // SAFETY: caller contract.
        let set = unsafe { set_of(this) }?;
        if pp.is_null() {
            return Err(VdError::Invalid);
        }
        let p = set.map_buffer_handle(handle as u32)?;
        // SAFETY: non-null writable by contract.
        unsafe { pp.write(p) };
        Ok(())
    })
}

/// `void ClientVirtualDeviceSet::RegisterDeviceClosed()`: undocumented in Microsoft's header
/// (SPEC §4); vdisim tracks device closure itself, so this does nothing.
///
/// # Safety
/// None needed: `this` is not dereferenced.
#[export_name = "_ZN22ClientVirtualDeviceSet20RegisterDeviceClosedEv"]
pub unsafe extern "C" fn client_virtual_device_set_register_device_closed(_this: *mut CxxSet) {
    trace("ClientVirtualDeviceSet::RegisterDeviceClosed", format_args!(""), 0);
}

/// # Safety
/// `this` points to 8 writable bytes.
unsafe fn construct_device(this: *mut CxxDevice) {
    if !this.is_null() {
        // SAFETY: caller contract: the object's storage.
        unsafe { (*this).cvd = std::ptr::null() };
    }
}

/// # Safety
/// `this` points to a device object, destroyed once.
unsafe fn destroy_device(this: *mut CxxDevice) {
    if this.is_null() {
        return;
    }
    // SAFETY: caller contract; we take the Arc out and null it.
    let p = unsafe { std::mem::replace(&mut (*this).cvd, std::ptr::null()) };
    if !p.is_null() {
        // SAFETY: `p` came from Arc::into_raw in OpenDevice and is released once.
        drop(unsafe { Arc::from_raw(p) });
    }
    trace("ClientVirtualDevice::~ClientVirtualDevice", format_args!(""), 0);
}

/// `ClientVirtualDevice::ClientVirtualDevice()`: a device not obtained from OpenDevice; every
/// call on it returns VD_E_PROTOCOL.
///
/// # Safety
/// `this` points to 8 writable bytes.
#[export_name = "_ZN19ClientVirtualDeviceC1Ev"]
pub unsafe extern "C" fn client_virtual_device_ctor_c1(this: *mut CxxDevice) {
    // SAFETY: forwarded caller contract.
    unsafe { construct_device(this) }
}

/// Base-object constructor of `ClientVirtualDevice`.
///
/// # Safety
/// As for C1.
#[export_name = "_ZN19ClientVirtualDeviceC2Ev"]
pub unsafe extern "C" fn client_virtual_device_ctor_c2(this: *mut CxxDevice) {
    // SAFETY: forwarded caller contract.
    unsafe { construct_device(this) }
}

/// `ClientVirtualDevice::~ClientVirtualDevice()`.
///
/// # Safety
/// `this` points to a device object, destroyed once.
#[export_name = "_ZN19ClientVirtualDeviceD1Ev"]
pub unsafe extern "C" fn client_virtual_device_dtor_d1(this: *mut CxxDevice) {
    // SAFETY: forwarded caller contract.
    unsafe { destroy_device(this) }
}

/// Base-object destructor of `ClientVirtualDevice`.
///
/// # Safety
/// As for D1.
#[export_name = "_ZN19ClientVirtualDeviceD2Ev"]
pub unsafe extern "C" fn client_virtual_device_dtor_d2(this: *mut CxxDevice) {
    // SAFETY: forwarded caller contract.
    unsafe { destroy_device(this) }
}

/// `int ClientVirtualDevice::GetCommand(time_t timeOut, VDC_Command** ppCmd)` (SPEC §1.3):
/// timeout in milliseconds unless `VDISIM_TIMEOUT_UNIT=s` (see [`crate::timeout`]); negative
/// or INFINITE waits for ever. The command stays valid until CompleteCommand.
///
/// # Safety
/// `this` is a device from OpenDevice; `pp` a writable pointer slot.
#[export_name = "_ZN19ClientVirtualDevice10GetCommandElPP11VDC_Command"]
pub unsafe extern "C" fn client_virtual_device_get_command(
    this: *mut CxxDevice,
    timeout: libc::time_t,
    pp: *mut *mut VDC_Command,
) -> c_int {
    guard("ClientVirtualDevice::GetCommand", || {
        if pp.is_null() {
            return Err(VdError::Invalid);
        }
        // SAFETY: non-null writable slot by contract.
        unsafe { pp.write(std::ptr::null_mut()) };
        // SAFETY: caller contract.
        let device = unsafe { device_of(this) }?;
        let cmd = device.get_command(to_millis(widen_time(timeout), command_unit()))?;
        // SAFETY: as above.
        unsafe { pp.write(cmd) };
        Ok(())
    })
}

/// `int ClientVirtualDevice::CompleteCommand(VDC_Command* pCmd, int completionCode,
/// unsigned long bytesTransferred, int64_t position)` (SPEC §1.3).
///
/// # Safety
/// `this` is a device from OpenDevice. `cmd` is only compared, never dereferenced.
#[export_name = "_ZN19ClientVirtualDevice15CompleteCommandEP11VDC_Commandiml"]
pub unsafe extern "C" fn client_virtual_device_complete_command(
    this: *mut CxxDevice,
    cmd: *mut VDC_Command,
    completion_code: c_int,
    bytes: c_ulong,
    position: i64,
) -> c_int {
    guard("ClientVirtualDevice::CompleteCommand", || {
        // SAFETY: caller contract.
        let device = unsafe { device_of(this) }?;
        device.complete_command(cmd, completion_code as u32, widen_ulong(bytes), position as u64)
    })
}
