//! The Windows `vdi.h` COM-style interface (SPEC §1.1), for C (and C++) code written against
//! `IClientVirtualDeviceSet2` / `IClientVirtualDevice`. Header: `sim/include/vdi_com.h`.
//!
//! An object is a pointer to a vtable pointer, IUnknown's three slots first, then the
//! interface's methods in `vdi.h` order:
//! - `IClientVirtualDeviceSet2`: QueryInterface, AddRef, Release, Create, GetConfiguration,
//!   OpenDevice, Close, SignalAbort, OpenInSecondary, GetBufferHandle, MapBufferHandle,
//!   CreateEx, OpenInSecondaryEx (it derives from `IClientVirtualDeviceSet`, so the same object
//!   answers both IIDs).
//! - `IClientVirtualDevice`: QueryInterface, AddRef, Release, GetCommand, CompleteCommand.
//!
//! There is no COM runtime: [`vdisim_CreateClientVirtualDeviceSet2`] is the factory, and
//! [`vdisim_CoCreateInstance`] mimics `CoCreateInstance(CLSID_MSSQL_ClientVirtualDeviceSet, ...)`.
//! Methods use the platform's COM calling convention (`extern "system"`: stdcall on 32-bit
//! Windows, the C convention elsewhere). Names are `LPCWSTR`, i.e. `wchar_t` strings: UTF-16 on
//! Windows, UTF-32 on Linux (so `L"..."` literals work unchanged; do not build clients with
//! `-fshort-wchar`). Timeouts are DWORD milliseconds, INFINITE = 0xFFFFFFFF.
//!
//! Lifetimes follow COM: the set lives until its last Release. Device interfaces belong to the
//! set (Close invalidates them, SPEC §1.2: their calls then return VD_E_PROTOCOL); their memory
//! is kept until the set's final Release, or a later Create once they were Released.

use crate::guard;
use crate::objects::{DeviceObject, SetObject};
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use vdisim::vdi::{VDC_Command, VdError, VdResult};
use vdisim::VDConfig;

/// `HRESULT`.
pub type HResult = i32;

/// A `wchar_t` (`WCHAR` in `vdi_com.h`).
#[cfg(windows)]
pub type WChar = u16;
/// A `wchar_t` (`WCHAR` in `vdi_com.h`).
#[cfg(not(windows))]
pub type WChar = libc::wchar_t;

pub const S_OK: HResult = 0;
pub const E_NOINTERFACE: HResult = 0x8000_4002_u32 as i32;
pub const E_POINTER: HResult = 0x8000_4003_u32 as i32;
pub const E_INVALIDARG: HResult = 0x8007_0057_u32 as i32;
pub const E_OUTOFMEMORY: HResult = 0x8007_000E_u32 as i32;
pub const CLASS_E_NOAGGREGATION: HResult = 0x8004_0110_u32 as i32;
pub const REGDB_E_CLASSNOTREG: HResult = 0x8004_0154_u32 as i32;

/// A COM `GUID`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guid {
    pub data1: u32,
    pub data2: u16,
    pub data3: u16,
    pub data4: [u8; 8],
}

/// `IID_IUnknown` {00000000-0000-0000-C000-000000000046}.
pub const IID_IUNKNOWN: Guid = Guid {
    data1: 0,
    data2: 0,
    data3: 0,
    data4: [0xC0, 0, 0, 0, 0, 0, 0, 0x46],
};
/// `IID_IClientVirtualDevice` {40700424-0080-11d2-851f-00c04fc21759} (SPEC §1.1).
pub const IID_ICLIENT_VIRTUAL_DEVICE: Guid = Guid {
    data1: 0x4070_0424,
    data2: 0x0080,
    data3: 0x11d2,
    data4: [0x85, 0x1f, 0x00, 0xc0, 0x4f, 0xc2, 0x17, 0x59],
};
/// `IID_IClientVirtualDeviceSet` {40700425-0080-11d2-851f-00c04fc21759}; also
/// `CLSID_MSSQL_ClientVirtualDeviceSet` (SPEC §1.1).
pub const IID_ICLIENT_VIRTUAL_DEVICE_SET: Guid = Guid {
    data1: 0x4070_0425,
    data2: 0x0080,
    data3: 0x11d2,
    data4: [0x85, 0x1f, 0x00, 0xc0, 0x4f, 0xc2, 0x17, 0x59],
};
/// `IID_IClientVirtualDeviceSet2` {d0e6eb07-7a62-11d2-8573-00c04fc21759} (SPEC §1.1).
pub const IID_ICLIENT_VIRTUAL_DEVICE_SET2: Guid = Guid {
    data1: 0xd0e6_eb07,
    data2: 0x7a62,
    data3: 0x11d2,
    data4: [0x85, 0x73, 0x00, 0xc0, 0x4f, 0xc2, 0x17, 0x59],
};

/// The `IClientVirtualDeviceSet2Vtbl` layout.
#[repr(C)]
pub struct SetVtbl {
    pub query_interface: unsafe extern "system" fn(*mut ComSet, *const Guid, *mut *mut c_void) -> HResult,
    pub add_ref: unsafe extern "system" fn(*mut ComSet) -> u32,
    pub release: unsafe extern "system" fn(*mut ComSet) -> u32,
    pub create: unsafe extern "system" fn(*mut ComSet, *const WChar, *mut VDConfig) -> HResult,
    pub get_configuration: unsafe extern "system" fn(*mut ComSet, u32, *mut VDConfig) -> HResult,
    pub open_device: unsafe extern "system" fn(*mut ComSet, *const WChar, *mut *mut ComDevice) -> HResult,
    pub close: unsafe extern "system" fn(*mut ComSet) -> HResult,
    pub signal_abort: unsafe extern "system" fn(*mut ComSet) -> HResult,
    pub open_in_secondary: unsafe extern "system" fn(*mut ComSet, *const WChar) -> HResult,
    pub get_buffer_handle: unsafe extern "system" fn(*mut ComSet, *mut u8, *mut u32) -> HResult,
    pub map_buffer_handle: unsafe extern "system" fn(*mut ComSet, u32, *mut *mut u8) -> HResult,
    pub create_ex: unsafe extern "system" fn(*mut ComSet, *const WChar, *const WChar, *mut VDConfig) -> HResult,
    pub open_in_secondary_ex: unsafe extern "system" fn(*mut ComSet, *const WChar, *const WChar) -> HResult,
}

/// The `IClientVirtualDeviceVtbl` layout.
#[repr(C)]
pub struct DeviceVtbl {
    pub query_interface: unsafe extern "system" fn(*mut ComDevice, *const Guid, *mut *mut c_void) -> HResult,
    pub add_ref: unsafe extern "system" fn(*mut ComDevice) -> u32,
    pub release: unsafe extern "system" fn(*mut ComDevice) -> u32,
    pub get_command: unsafe extern "system" fn(*mut ComDevice, u32, *mut *mut VDC_Command) -> HResult,
    pub complete_command: unsafe extern "system" fn(*mut ComDevice, *mut VDC_Command, u32, u32, u64) -> HResult,
}

/// An `IClientVirtualDeviceSet2` object.
#[repr(C)]
pub struct ComSet {
    vtbl: &'static SetVtbl,
    refs: AtomicU32,
    object: SetObject,
    /// Boxed: C holds pointers to the devices, so their addresses must not move.
    #[allow(clippy::vec_box)]
    devices: Mutex<Vec<Box<ComDevice>>>,
}

/// An `IClientVirtualDevice` object.
#[repr(C)]
pub struct ComDevice {
    vtbl: &'static DeviceVtbl,
    refs: AtomicU32,
    object: Arc<DeviceObject>,
}

static SET_VTBL: SetVtbl = SetVtbl {
    query_interface: set_query_interface,
    add_ref: set_add_ref,
    release: set_release,
    create: set_create,
    get_configuration: set_get_configuration,
    open_device: set_open_device,
    close: set_close,
    signal_abort: set_signal_abort,
    open_in_secondary: set_open_in_secondary,
    get_buffer_handle: set_get_buffer_handle,
    map_buffer_handle: set_map_buffer_handle,
    create_ex: set_create_ex,
    open_in_secondary_ex: set_open_in_secondary_ex,
};

static DEVICE_VTBL: DeviceVtbl = DeviceVtbl {
    query_interface: device_query_interface,
    add_ref: device_add_ref,
    release: device_release,
    get_command: device_get_command,
    complete_command: device_complete_command,
};

/// Longest name accepted, in characters (a braced GUID is 38; names are bounded so a missing
/// terminator cannot make us read forever).
const MAX_NAME: usize = 4096;

/// Reads a `wchar_t` string. Null, unterminated within [`MAX_NAME`], or invalid characters
/// are VD_E_INVALID.
///
/// # Safety
/// `p` is null or a NUL-terminated wide string valid for the call.
pub unsafe fn wide_name(p: *const WChar) -> VdResult<String> {
    if p.is_null() {
        return Err(VdError::Invalid);
    }
    let mut units = Vec::new();
    for i in 0..=MAX_NAME {
        // SAFETY: the caller guarantees a terminated string; we stop at the terminator.
        let u = unsafe { p.add(i).read() };
        if u == 0 {
            return decode(&units);
        }
        units.push(u);
    }
    Err(VdError::Invalid)
}

#[cfg(windows)]
fn decode(units: &[WChar]) -> VdResult<String> {
    String::from_utf16(units).map_err(|_| VdError::Invalid)
}

#[cfg(not(windows))]
fn decode(units: &[WChar]) -> VdResult<String> {
    units
        .iter()
        .map(|&u| char::from_u32(u as u32).ok_or(VdError::Invalid))
        .collect()
}

/// # Safety
/// `p` is null or an optional wide name.
unsafe fn optional_wide(p: *const WChar) -> VdResult<Option<String>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded caller contract.
        unsafe { wide_name(p) }.map(Some)
    }
}

/// # Safety
/// `this` is null or a live ComSet.
unsafe fn com_set<'a>(this: *mut ComSet) -> VdResult<&'a ComSet> {
    // SAFETY: caller contract: null or a live object (its refcount keeps it).
    unsafe { this.as_ref() }.ok_or(VdError::Invalid)
}

/// # Safety
/// `this` is null or a live ComDevice.
unsafe fn com_device<'a>(this: *mut ComDevice) -> VdResult<&'a ComDevice> {
    // SAFETY: caller contract: null or a device whose set is still alive.
    unsafe { this.as_ref() }.ok_or(VdError::Invalid)
}

fn new_com_set() -> *mut ComSet {
    Box::into_raw(Box::new(ComSet {
        vtbl: &SET_VTBL,
        refs: AtomicU32::new(1),
        object: SetObject::new(),
        devices: Mutex::new(Vec::new()),
    }))
}

impl ComSet {
    /// Drops device interfaces the client released (they belong to earlier operations).
    fn prune_devices(&self) {
        self.devices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|d| d.refs.load(Ordering::Acquire) > 0);
    }
}

unsafe extern "system" fn set_query_interface(this: *mut ComSet, riid: *const Guid, out: *mut *mut c_void) -> HResult {
    if out.is_null() {
        return E_POINTER;
    }
    // SAFETY: non-null writable slot by COM contract.
    unsafe { out.write(std::ptr::null_mut()) };
    if this.is_null() || riid.is_null() {
        return E_INVALIDARG;
    }
    // SAFETY: non-null IID pointer by COM contract.
    let iid = unsafe { riid.read_unaligned() };
    if iid == IID_IUNKNOWN || iid == IID_ICLIENT_VIRTUAL_DEVICE_SET || iid == IID_ICLIENT_VIRTUAL_DEVICE_SET2 {
        // SAFETY: `this` is live by COM contract.
        unsafe { set_add_ref(this) };
        // SAFETY: as above.
        unsafe { out.write(this.cast()) };
        S_OK
    } else {
        E_NOINTERFACE
    }
}

unsafe extern "system" fn set_add_ref(this: *mut ComSet) -> u32 {
    // SAFETY: caller contract (a live object).
    match unsafe { this.as_ref() } {
        Some(s) => s.refs.fetch_add(1, Ordering::AcqRel).saturating_add(1),
        None => 0,
    }
}

unsafe extern "system" fn set_release(this: *mut ComSet) -> u32 {
    // SAFETY: caller contract (a live object).
    let Some(s) = (unsafe { this.as_ref() }) else {
        return 0;
    };
    let before = s.refs.fetch_sub(1, Ordering::AcqRel);
    if before == 1 {
        // SAFETY: the last reference: `this` came from Box::into_raw in the factory and no
        // one may use it any more (COM rule).
        let object = unsafe { Box::from_raw(this) };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(object)));
        0
    } else {
        before.saturating_sub(1)
    }
}

unsafe extern "system" fn set_create(this: *mut ComSet, name: *const WChar, cfg: *mut VDConfig) -> HResult {
    let instance = std::env::var("_VIRTUAL_SERVER_NAME_").ok();
    guard("IClientVirtualDeviceSet2::Create", || {
        // SAFETY: COM caller contract.
        let (set, name) = unsafe { (com_set(this)?, wide_name(name)?) };
        create(set, instance.as_deref(), &name, cfg)
    })
}

fn create(set: &ComSet, instance: Option<&str>, name: &str, cfg: *mut VDConfig) -> VdResult<()> {
    if cfg.is_null() {
        return Err(VdError::Invalid);
    }
    // SAFETY: non-null; the COM caller passes a readable VDConfig.
    let config = unsafe { cfg.read_unaligned() };
    set.object.create(instance, name, &config)?;
    set.prune_devices();
    Ok(())
}

unsafe extern "system" fn set_create_ex(
    this: *mut ComSet,
    instance: *const WChar,
    name: *const WChar,
    cfg: *mut VDConfig,
) -> HResult {
    guard("IClientVirtualDeviceSet2::CreateEx", || {
        // SAFETY: COM caller contract.
        let (set, instance, name) = unsafe { (com_set(this)?, optional_wide(instance)?, wide_name(name)?) };
        create(set, instance.as_deref(), &name, cfg)
    })
}

unsafe extern "system" fn set_get_configuration(this: *mut ComSet, timeout_ms: u32, cfg: *mut VDConfig) -> HResult {
    guard("IClientVirtualDeviceSet2::GetConfiguration", || {
        // SAFETY: COM caller contract.
        let set = unsafe { com_set(this) }?;
        if cfg.is_null() {
            return Err(VdError::Invalid);
        }
        let answer = set.object.get_configuration(timeout_ms)?;
        // SAFETY: non-null writable by COM contract.
        unsafe { cfg.write_unaligned(answer) };
        Ok(())
    })
}

unsafe extern "system" fn set_open_device(this: *mut ComSet, name: *const WChar, out: *mut *mut ComDevice) -> HResult {
    guard("IClientVirtualDeviceSet2::OpenDevice", || {
        if out.is_null() {
            return Err(VdError::Invalid);
        }
        // SAFETY: non-null writable slot by COM contract.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: COM caller contract.
        let (set, name) = unsafe { (com_set(this)?, wide_name(name)?) };
        let object = set.object.open_device(&name)?;
        let mut device = Box::new(ComDevice {
            vtbl: &DEVICE_VTBL,
            refs: AtomicU32::new(1),
            object,
        });
        let ptr: *mut ComDevice = &mut *device;
        set.devices.lock().unwrap_or_else(|p| p.into_inner()).push(device);
        // SAFETY: the Box's heap address is stable while the set keeps it in its list.
        unsafe { out.write(ptr) };
        Ok(())
    })
}

unsafe extern "system" fn set_close(this: *mut ComSet) -> HResult {
    guard("IClientVirtualDeviceSet2::Close", || {
        // SAFETY: COM caller contract: `this` is a live set.
        unsafe { com_set(this) }?.object.close()
    })
}

unsafe extern "system" fn set_signal_abort(this: *mut ComSet) -> HResult {
    guard("IClientVirtualDeviceSet2::SignalAbort", || {
        // SAFETY: COM caller contract: `this` is a live set.
        unsafe { com_set(this) }?.object.signal_abort()
    })
}

unsafe extern "system" fn set_open_in_secondary(this: *mut ComSet, name: *const WChar) -> HResult {
    let instance = std::env::var("_VIRTUAL_SERVER_NAME_").ok();
    guard("IClientVirtualDeviceSet2::OpenInSecondary", || {
        // SAFETY: COM caller contract.
        let (set, name) = unsafe { (com_set(this)?, wide_name(name)?) };
        set.object.open_in_secondary(instance.as_deref(), &name)
    })
}

unsafe extern "system" fn set_open_in_secondary_ex(
    this: *mut ComSet,
    instance: *const WChar,
    name: *const WChar,
) -> HResult {
    guard("IClientVirtualDeviceSet2::OpenInSecondaryEx", || {
        // SAFETY: COM caller contract.
        let (set, instance, name) = unsafe { (com_set(this)?, optional_wide(instance)?, wide_name(name)?) };
        set.object.open_in_secondary(instance.as_deref(), &name)
    })
}

unsafe extern "system" fn set_get_buffer_handle(this: *mut ComSet, buffer: *mut u8, handle: *mut u32) -> HResult {
    guard("IClientVirtualDeviceSet2::GetBufferHandle", || {
        // SAFETY: COM caller contract.
        let set = unsafe { com_set(this) }?;
        if handle.is_null() {
            return Err(VdError::Invalid);
        }
        let h = set.object.get_buffer_handle(buffer)?;
        // SAFETY: non-null writable by COM contract.
        unsafe { handle.write(h) };
        Ok(())
    })
}

unsafe extern "system" fn set_map_buffer_handle(this: *mut ComSet, handle: u32, out: *mut *mut u8) -> HResult {
    guard("IClientVirtualDeviceSet2::MapBufferHandle", || {
        // SAFETY: COM caller contract.
        let set = unsafe { com_set(this) }?;
        if out.is_null() {
            return Err(VdError::Invalid);
        }
        let p = set.object.map_buffer_handle(handle)?;
        // SAFETY: non-null writable by COM contract.
        unsafe { out.write(p) };
        Ok(())
    })
}

unsafe extern "system" fn device_query_interface(
    this: *mut ComDevice,
    riid: *const Guid,
    out: *mut *mut c_void,
) -> HResult {
    if out.is_null() {
        return E_POINTER;
    }
    // SAFETY: non-null writable slot by COM contract.
    unsafe { out.write(std::ptr::null_mut()) };
    if this.is_null() || riid.is_null() {
        return E_INVALIDARG;
    }
    // SAFETY: non-null IID pointer by COM contract.
    let iid = unsafe { riid.read_unaligned() };
    if iid == IID_IUNKNOWN || iid == IID_ICLIENT_VIRTUAL_DEVICE {
        // SAFETY: `this` is live by COM contract.
        unsafe { device_add_ref(this) };
        // SAFETY: as above.
        unsafe { out.write(this.cast()) };
        S_OK
    } else {
        E_NOINTERFACE
    }
}

unsafe extern "system" fn device_add_ref(this: *mut ComDevice) -> u32 {
    // SAFETY: caller contract (a live device).
    match unsafe { this.as_ref() } {
        Some(d) => d.refs.fetch_add(1, Ordering::AcqRel).saturating_add(1),
        None => 0,
    }
}

unsafe extern "system" fn device_release(this: *mut ComDevice) -> u32 {
    // SAFETY: caller contract (a live device). The memory belongs to the set (module docs),
    // so reaching zero frees nothing here.
    match unsafe { this.as_ref() } {
        Some(d) => {
            let r = d
                .refs
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| Some(r.saturating_sub(1)));
            r.unwrap_or(0).saturating_sub(1)
        }
        None => 0,
    }
}

unsafe extern "system" fn device_get_command(
    this: *mut ComDevice,
    timeout_ms: u32,
    out: *mut *mut VDC_Command,
) -> HResult {
    guard("IClientVirtualDevice::GetCommand", || {
        if out.is_null() {
            return Err(VdError::Invalid);
        }
        // SAFETY: non-null writable slot by COM contract.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: COM caller contract.
        let cmd = unsafe { com_device(this) }?.object.get_command(timeout_ms)?;
        // SAFETY: as above.
        unsafe { out.write(cmd) };
        Ok(())
    })
}

unsafe extern "system" fn device_complete_command(
    this: *mut ComDevice,
    cmd: *mut VDC_Command,
    code: u32,
    bytes: u32,
    position: u64,
) -> HResult {
    guard("IClientVirtualDevice::CompleteCommand", || {
        // SAFETY: COM caller contract; `cmd` is only compared.
        unsafe { com_device(this) }?
            .object
            .complete_command(cmd, code, u64::from(bytes), position)
    })
}

/// `HRESULT vdisim_CreateClientVirtualDeviceSet2(void** out)`: a new `IClientVirtualDeviceSet2`
/// with one reference (release it with `Release`).
///
/// # Safety
/// `out` is null (E_POINTER) or a writable pointer slot.
#[no_mangle]
pub unsafe extern "C" fn vdisim_CreateClientVirtualDeviceSet2(out: *mut *mut c_void) -> c_int {
    if out.is_null() {
        return E_POINTER;
    }
    match std::panic::catch_unwind(new_com_set) {
        Ok(p) => {
            // SAFETY: non-null writable by contract.
            unsafe { out.write(p.cast()) };
            S_OK
        }
        Err(_) => {
            // SAFETY: as above.
            unsafe { out.write(std::ptr::null_mut()) };
            E_OUTOFMEMORY
        }
    }
}

/// `HRESULT vdisim_CoCreateInstance(const GUID* clsid, void* outer, DWORD context, const GUID* iid,
/// void** out)`: what `CoCreateInstance(CLSID_MSSQL_ClientVirtualDeviceSet, NULL,
/// CLSCTX_INPROC_SERVER, IID_IClientVirtualDeviceSet2, &vds)` does on Windows (SPEC §1.1).
///
/// # Safety
/// `clsid`/`iid` null or readable GUIDs; `out` null or a writable pointer slot.
#[no_mangle]
pub unsafe extern "C" fn vdisim_CoCreateInstance(
    clsid: *const Guid,
    outer: *mut c_void,
    _context: u32,
    iid: *const Guid,
    out: *mut *mut c_void,
) -> c_int {
    if out.is_null() {
        return E_POINTER;
    }
    // SAFETY: non-null writable by contract.
    unsafe { out.write(std::ptr::null_mut()) };
    if clsid.is_null() || iid.is_null() {
        return E_INVALIDARG;
    }
    // SAFETY: non-null readable by contract.
    if unsafe { clsid.read_unaligned() } != IID_ICLIENT_VIRTUAL_DEVICE_SET {
        return REGDB_E_CLASSNOTREG;
    }
    if !outer.is_null() {
        return CLASS_E_NOAGGREGATION;
    }
    let Ok(set) = std::panic::catch_unwind(new_com_set) else {
        return E_OUTOFMEMORY;
    };
    // SAFETY: `set` is a fresh live object; QueryInterface adds the caller's reference, and
    // our Release drops the factory's.
    unsafe {
        let hr = set_query_interface(set, iid, out);
        set_release(set);
        hr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_interface_and_refcount() {
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: exercising the factory and vtable as a C caller would.
        unsafe {
            assert_eq!(vdisim_CreateClientVirtualDeviceSet2(&mut p), S_OK);
            let set = p.cast::<ComSet>();
            let vt = (*set).vtbl;
            let mut q: *mut c_void = std::ptr::null_mut();
            assert_eq!((vt.query_interface)(set, &IID_ICLIENT_VIRTUAL_DEVICE_SET, &mut q), S_OK);
            assert_eq!(q, p);
            assert_eq!(
                (vt.query_interface)(set, &IID_ICLIENT_VIRTUAL_DEVICE, &mut q),
                E_NOINTERFACE
            );
            assert!(q.is_null());
            assert_eq!((vt.release)(set), 1);
            // §1.5: Close in DNE is VD_E_PROTOCOL.
            assert_eq!((vt.close)(set), VdError::Protocol.as_linux_int());
            assert_eq!((vt.release)(set), 0);
        }
    }

    #[test]
    fn co_create_instance_checks_the_class() {
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: as a C caller would.
        unsafe {
            let bad = IID_ICLIENT_VIRTUAL_DEVICE;
            let iid = IID_ICLIENT_VIRTUAL_DEVICE_SET2;
            assert_eq!(
                vdisim_CoCreateInstance(&bad, std::ptr::null_mut(), 1, &iid, &mut p),
                REGDB_E_CLASSNOTREG
            );
            let clsid = IID_ICLIENT_VIRTUAL_DEVICE_SET;
            assert_eq!(
                vdisim_CoCreateInstance(&clsid, std::ptr::null_mut(), 1, &iid, &mut p),
                S_OK
            );
            let set = p.cast::<ComSet>();
            assert_eq!(((*set).vtbl.release)(set), 0);
        }
    }

    #[test]
    fn wide_names_decode_and_are_bounded() {
        let name: Vec<WChar> = "set-é\0".chars().map(|c| c as WChar).collect();
        // SAFETY: a terminated buffer.
        assert_eq!(unsafe { wide_name(name.as_ptr()) }, Ok("set-é".to_string()));
        let long: Vec<WChar> = vec![b'a' as WChar; MAX_NAME + 10];
        // SAFETY: unterminated but longer than MAX_NAME, so the read stops in bounds.
        assert_eq!(unsafe { wide_name(long.as_ptr()) }, Err(VdError::Invalid));
    }
}
