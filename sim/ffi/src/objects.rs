//! The objects behind every C ABI: [`SetObject`] (what a `ClientVirtualDeviceSet`'s pimpl
//! pointer, a `vdisim_set*` or a COM set points at) and [`DeviceObject`].
//!
//! Lifetimes, chosen so that no sequence of calls a C client can make turns into a
//! use-after-free inside the library:
//! - A `VDC_Command*` from GetCommand points into a slot owned by its device object. It is
//!   valid until CompleteCommand and stays *readable* afterwards: Microsoft's own sample prints
//!   `cmd->commandCode` right after CompleteCommand. A completed slot is reused only once at
//!   least two other free slots exist, so the last completed command stays intact until later
//!   GetCommands.
//! - Close (SPEC §1.2: "All virtual device interfaces returned by OpenDevice are invalidated")
//!   drops every device's core handle and outstanding commands, releasing the shared memory,
//!   but keeps the small device object alive: later calls on it return VD_E_PROTOCOL instead
//!   of crashing. The set keeps its device objects until it is destroyed, except that a new
//!   Create prunes the ones nobody else references.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use vdisim::vdi::{VDC_Command, VdError, VdResult};
use vdisim::{ClientVirtualDevice, ClientVirtualDeviceSet, Command, VDConfig};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a few plain updates, so the data is consistent even if
    // a panic (caught at the ABI boundary) poisoned the lock.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A client-side virtual device set, shared by the three ABIs.
pub struct SetObject {
    /// Read lock for the calls that take `&self` (GetConfiguration may block in it); write
    /// lock for Create, Close and OpenInSecondary.
    set: RwLock<ClientVirtualDeviceSet>,
    devices: Mutex<Vec<Arc<DeviceObject>>>,
}

impl Default for SetObject {
    fn default() -> Self {
        Self::new()
    }
}

impl SetObject {
    pub fn new() -> SetObject {
        SetObject {
            set: RwLock::new(ClientVirtualDeviceSet::new()),
            devices: Mutex::new(Vec::new()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ClientVirtualDeviceSet> {
        self.set.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ClientVirtualDeviceSet> {
        self.set.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops device objects only the set still references (their C handles are gone, or the
    /// C API's documented validity ended with a new operation).
    fn prune_devices(&self) {
        lock(&self.devices).retain(|d| Arc::strong_count(d) > 1);
    }

    /// Create / CreateEx (SPEC §1.2).
    pub fn create(&self, instance: Option<&str>, name: &str, config: &VDConfig) -> VdResult<()> {
        let mut set = self.write();
        let result = set.create_ex(instance, name, config);
        if result.is_ok() {
            drop(set);
            self.prune_devices();
        }
        result
    }

    /// GetConfiguration (SPEC §1.2), `timeout_ms` in the core's milliseconds.
    pub fn get_configuration(&self, timeout_ms: u32) -> VdResult<VDConfig> {
        self.read().get_configuration(timeout_ms)
    }

    /// OpenDevice (SPEC §1.2).
    pub fn open_device(&self, name: &str) -> VdResult<Arc<DeviceObject>> {
        let device = self.read().open_device(name)?;
        let object = Arc::new(DeviceObject::new(device));
        lock(&self.devices).push(object.clone());
        Ok(object)
    }

    /// SignalAbort (SPEC §1.2, §3.6).
    pub fn signal_abort(&self) -> VdResult<()> {
        self.read().signal_abort()
    }

    /// Close (SPEC §1.2): invalidates every device object of the set.
    pub fn close(&self) -> VdResult<()> {
        let result = self.write().close();
        self.invalidate_devices();
        result
    }

    /// OpenInSecondary(Ex) (SPEC §1.2).
    pub fn open_in_secondary(&self, instance: Option<&str>, name: &str) -> VdResult<()> {
        let mut set = self.write();
        let result = set.open_in_secondary(instance, name);
        if result.is_ok() {
            drop(set);
            self.prune_devices();
        }
        result
    }

    /// GetBufferHandle (SPEC §1.2).
    pub fn get_buffer_handle(&self, buffer: *const u8) -> VdResult<u32> {
        self.read().get_buffer_handle(buffer)
    }

    /// MapBufferHandle (SPEC §1.2).
    pub fn map_buffer_handle(&self, handle: u32) -> VdResult<*mut u8> {
        self.read().map_buffer_handle(handle)
    }

    fn invalidate_devices(&self) {
        for d in lock(&self.devices).iter() {
            d.invalidate();
        }
    }
}

impl Drop for SetObject {
    fn drop(&mut self) {
        // Destroying a set without Close still frees it (the core's Drop closes), and the
        // device objects that outlive it must not keep its shared memory mapped.
        self.invalidate_devices();
    }
}

/// The memory a C caller reads through the `VDC_Command*` GetCommand returned.
struct CommandCell(UnsafeCell<VDC_Command>);

// SAFETY: the cell is written only while the device mutex is held and only when no active
// command uses it (before its pointer is handed out, or when a completed slot is reused);
// C readers only read it. The raw buffer pointer inside is an address, never dereferenced here.
unsafe impl Sync for CommandCell {}
// SAFETY: as above; the cell is plain data whose pointer field is only an address.
unsafe impl Send for CommandCell {}

struct Slot {
    cell: Arc<CommandCell>,
    /// The active command, `None` once completed (or invalidated by Close).
    command: Option<Command>,
}

struct DeviceState {
    device: Option<ClientVirtualDevice>,
    slots: Vec<Slot>,
    /// Indices of free slots, oldest first.
    free: VecDeque<usize>,
}

/// One open virtual device, shared by the three ABIs.
pub struct DeviceObject {
    state: Mutex<DeviceState>,
}

/// Free slots kept before one is reused, so a just-completed command stays readable.
const KEEP_FREE: usize = 2;

impl DeviceObject {
    fn new(device: ClientVirtualDevice) -> DeviceObject {
        DeviceObject {
            state: Mutex::new(DeviceState {
                device: Some(device),
                slots: Vec::new(),
                free: VecDeque::new(),
            }),
        }
    }

    /// Close invalidated the device: drop the core handle and every active command.
    fn invalidate(&self) {
        let mut st = lock(&self.state);
        st.device = None;
        let DeviceState { slots, free, .. } = &mut *st;
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.command.take().is_some() {
                free.push_back(i);
            }
        }
    }

    /// Whether Close invalidated this device.
    pub fn is_invalidated(&self) -> bool {
        lock(&self.state).device.is_none()
    }

    /// GetCommand (SPEC §1.3): blocks up to `timeout_ms` without holding the device lock,
    /// then parks the command in a slot and returns the address of its `VDC_Command`.
    pub fn get_command(&self, timeout_ms: u32) -> VdResult<*mut VDC_Command> {
        let device = lock(&self.state).device.clone().ok_or(VdError::Protocol)?;
        let command = device.get_command(timeout_ms)?;
        let mut st = lock(&self.state);
        if st.device.is_none() {
            // Close ran while we waited; the command dies with the set.
            return Err(VdError::Abort);
        }
        let vdc = VDC_Command {
            commandCode: command.code(),
            size: command.size(),
            position: command.position(),
            buffer: command.buffer_ptr(),
        };
        let index = if st.free.len() > KEEP_FREE {
            st.free.pop_front().ok_or(VdError::Unexpected)?
        } else {
            st.slots.push(Slot {
                cell: Arc::new(CommandCell(UnsafeCell::new(vdc))),
                command: None,
            });
            st.slots.len() - 1
        };
        let slot = &mut st.slots[index];
        let ptr = slot.cell.0.get();
        // SAFETY: the slot is free (no active command), so no C caller may legitimately be
        // reading it as an active command, and we hold the device lock, the only writer.
        unsafe { ptr.write(vdc) };
        slot.command = Some(command);
        Ok(ptr)
    }

    /// CompleteCommand (SPEC §1.3). VD_E_INVALID if `cmd` is not an active command of this
    /// device (never handed out, already completed, or another device's).
    pub fn complete_command(&self, cmd: *const VDC_Command, code: u32, bytes: u64, position: u64) -> VdResult<()> {
        let mut st = lock(&self.state);
        let device = st.device.clone().ok_or(VdError::Protocol)?;
        let index = st
            .slots
            .iter()
            .position(|s| std::ptr::eq(s.cell.0.get(), cmd) && s.command.is_some())
            .ok_or(VdError::Invalid)?;
        let command = st.slots[index].command.as_ref().ok_or(VdError::Invalid)?;
        // Passed through unchanged: judging the count is the server's business (SPEC §1.3).
        let bytes = u32::try_from(bytes).map_err(|_| VdError::Invalid)?;
        device.complete_command(command, code, bytes, position)?;
        st.slots[index].command = None;
        st.free.push_back(index);
        Ok(())
    }

    /// Commands handed out and not yet completed.
    pub fn outstanding(&self) -> usize {
        lock(&self.state).slots.iter().filter(|s| s.command.is_some()).count()
    }
}
